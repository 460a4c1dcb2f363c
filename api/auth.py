"""Roles, bearer tokens and the audit log.

Tokens are 256-bit random strings shown once at creation; the store keeps only their SHA-256.
A fast hash is enough here (unlike passwords): a random 256-bit secret cannot be guessed by
brute force, and the hash doubles as the lookup key. Every route states the roles it admits
through ``require(...)``; admin is admitted everywhere. Views of evidence and exports are
written to ``audit_log``, which SQLite triggers keep append-only and which no API route edits.

Tokens expire (``api.token_ttl_days``). Failed authentications are audited and counted per
client address; after ``api.max_auth_failures`` within ``api.lockout_s`` that address is
refused (429) until the window passes, so a stolen-token guesser or a misconfigured
integration is visible in the audit log and slowed down, not silently retried for ever.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ApiContext, ContextDep
from pipeline.store.access import (
    DEFAULT_TTL_S,
    TokenScope,
    User,
    active_session,
    active_token,
    active_user,
    add_token,
    audit as store_audit,
    revoke_tokens,
    token_hash,
)
from pipeline.store.repository import EventStore


class Role(StrEnum):
    OPERATOR = "operator"  # monitoring center: review, dispatch
    INTEGRATOR = "integrator"  # cameras, zones
    ANALYST = "analyst"  # replay, export
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    token_sha256: str | None = None  # None: not a token holder (local demo, platform callback)
    scope: TokenScope | None = None  # None: every camera
    session_sha256: str | None = None  # signed in with a name and password (browser session)


def visible_cameras(ctx: ApiContext, who: Principal) -> frozenset[str] | None:
    """The cameras ``who`` may see (None: all). Resolved now, from the configuration: a camera
    added to a grid is seen by that grid's tokens at once; events of a camera no longer
    configured are seen by unscoped tokens only."""
    if who.scope is None:
        return None
    grids, cams = set(who.scope.grids), set(who.scope.cameras)
    return frozenset(c.id for c in ctx.cameras if c.id in cams or (c.grid_code or "") in grids)


def may_see(ctx: ApiContext, who: Principal, camera_id: str) -> bool:
    seen = visible_cameras(ctx, who)
    return seen is None or camera_id in seen


def create_token(
    store: EventStore, name: str, role: Role | str, now: float, ttl_s: float = DEFAULT_TTL_S,
    scope: TokenScope | None = None,
) -> str:  # fmt: skip
    """A new token for ``name`` (shown once; only its hash is kept), valid for ``ttl_s``,
    limited to ``scope`` if given (not for admins, whose routes are the whole installation's).
    Fails (StoreIntegrityError) while another token of that name is active: revoke it first."""
    if scope is not None and Role(role) == Role.ADMIN:
        raise ValueError("an admin token cannot be scoped: admin routes see everything")
    if scope is not None and not (scope.grids or scope.cameras):
        raise ValueError("a scope needs at least one grid or camera")
    token = "gs_" + secrets.token_urlsafe(32)
    add_token(store, token_hash(token), name, Role(role).value, now, ttl_s, scope)
    return token


def revoke_token(store: EventStore, name: str, now: float) -> bool:
    return revoke_tokens(store, name, now)


def lookup(store: EventStore, token: str, now: float) -> Principal | None:
    """The holder of an active (not revoked, not expired) token."""
    digest = token_hash(token)
    found = active_token(store, digest, now)
    return None if found is None else Principal(found[0], Role(found[1]), digest, found[2])


def still_valid(store: EventStore, who: Principal, now: float) -> bool:
    """Whether ``who``'s token or session is still active (long-lived streams ask this)."""
    if who.session_sha256 is not None:
        return active_session(store, who.session_sha256, now) is not None
    return who.token_sha256 is None or active_token(store, who.token_sha256, now) is not None


# -- people: name + password, browser sessions, single sign-on ------------------------------

SESSION_COOKIE = "gs_session"
LOGIN_PATH = "/auth/login"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MIN_PASSWORD = 10
_HASHER = PasswordHasher()  # argon2id, the library's current parameters
# verified against when the name is unknown, so a wrong name costs what a wrong password does
_DUMMY_HASH = _HASHER.hash("gridsight-no-such-user")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def check_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is ``user``'s; an unknown user (None) costs the same time."""
    try:
        return _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password) and bool(user)
    except (VerifyMismatchError, InvalidHashError):
        return False


def identify(
    ctx: ApiContext, client: str, headers: Mapping[str, str], cookies: Mapping[str, str],
    method: str,
) -> Principal:  # fmt: skip
    """Who sends this request: a bearer token (machines), a session cookie (people; unsafe
    methods must echo the session's CSRF token), or a trusted login proxy's user header (safe
    methods only: a browser sends the proxy's cookie to any site's forms, so writes need the
    CSRF token of a session, which ``GET /auth/session`` gives). ``headers``: lower-case names.
    """
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return authenticate(ctx, client, token)
    if cookie := cookies.get(SESSION_COOKIE):
        refuse_if_locked(ctx, client, "failed authentications")
        digest = token_hash(cookie)
        found = active_session(ctx.store, digest, ctx.clock())
        if found is None:
            raise HTTPException(401, "session ended or unknown: sign in again")
        user, csrf = found
        if method in UNSAFE_METHODS and not secrets.compare_digest(
            headers.get(CSRF_HEADER.lower(), ""), csrf
        ):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")
        return Principal(user.name, Role(user.role), None, user.scope, digest)
    if (proxied := proxy_user(ctx, client, headers)) is not None:
        if method in UNSAFE_METHODS:
            raise HTTPException(403, f"open a session first (GET /auth/session) and send its "
                                     f"{CSRF_HEADER}")  # fmt: skip
        return Principal(proxied.name, Role(proxied.role), None, proxied.scope)
    return authenticate(ctx, client, None)


def proxy_user(ctx: ApiContext, client: str, headers: Mapping[str, str]) -> User | None:
    """The user a trusted login proxy names (None: not from one, or no such header)."""
    if client not in ctx.trusted_proxies:
        return None
    name = headers.get(ctx.proxy_user_header, "").strip()
    if not name:
        return None
    user = active_user(ctx.store, name)
    if user is None:
        raise HTTPException(401, f"the login proxy's user {name!r} is not a gridsight user")
    return user


def audit(ctx: ApiContext, who: Principal, action: str, target: str, **detail: Any) -> None:
    store_audit(ctx.store, ctx.clock(), who.name, who.role.value, action, target, detail)


ANONYMOUS_ADMIN = Principal("local", Role.ADMIN)
# auto_error=False: we answer 401 ourselves (with a clear message); /docs gets "Authorize".
_bearer = HTTPBearer(auto_error=False, description="gridsight API token (gs_…)")


def require(*roles: Role) -> Callable[..., Principal]:
    """Dependency admitting the given roles (and admin)."""
    allowed = frozenset(roles) | {Role.ADMIN}

    def dependency(
        request: Request,
        ctx: ContextDep,
        # declared so that /docs offers "Authorize"; ``identify`` reads the header itself
        _cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if not ctx.auth_required:
            return ANONYMOUS_ADMIN
        who = getattr(request.state, PRINCIPAL_STATE, None)  # authenticated by the front door
        if not isinstance(who, Principal):
            headers = {k.lower(): v for k, v in request.headers.items()}
            who = identify(ctx, client_of(request), headers, request.cookies, request.method)
        if who.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"role {who.role.value} may not do this (needs {names})")
        return who

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]
    return dependency


def client_of(request: Request) -> str:
    """The peer address (behind a reverse proxy: the proxy's; see docs/security.md)."""
    return request.client.host if request.client else "unknown"


_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# where api.middleware leaves the principal it authenticated before reading a body
PRINCIPAL_STATE = "gridsight_principal"


def refuse_if_locked(ctx: ApiContext, client: str, what: str) -> None:
    """429 while ``client`` is locked out for repeated ``what``."""
    wait = ctx.auth_guard.locked_for(client, ctx.clock())
    if wait > 0:
        raise HTTPException(
            429, f"too many {what} from {client}; try again in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )  # fmt: skip


def authenticate(ctx: ApiContext, client: str, token: str | None) -> Principal:
    """The principal of ``token``, or an HTTPException (401, or 429 while locked out).

    A wrong token is audited and counted against the client; a missing one is neither (no
    guess was made: a UI before login). While locked out a client is refused without another
    audit row, so a flood cannot bury the log."""
    refuse_if_locked(ctx, client, "failed authentications")
    now = ctx.clock()
    token = (token or "").strip()
    if not token:
        raise HTTPException(401, "missing bearer token", headers=_CHALLENGE)
    who = lookup(ctx.store, token, now)
    if who is not None:
        return who
    reason = "unknown, revoked or expired token"
    # the hash prefix matches a leaked token later and is useless for logging in
    count_refusal(ctx, client, "anonymous", "auth_failed", reason,
                  token_sha256_prefix=token_hash(token)[:12])  # fmt: skip
    raise HTTPException(401, reason, headers=_CHALLENGE)


def count_refusal(
    ctx: ApiContext, address: str, actor: str, action: str, reason: str, **detail: Any
) -> None:
    """A failed credential (token, callback signature): counted towards the lockout of the
    client at ``address`` and audited."""
    now = ctx.clock()
    detail = {"reason": reason, "failures": ctx.auth_guard.fail(address, now), **detail}
    store_audit(ctx.store, now, actor, "none", action, f"client:{address}", detail)


def principal(*roles: Role) -> Any:
    """``who: Annotated[Principal, principal(Role.OPERATOR)]`` in a route signature."""
    return Depends(require(*roles))


ReviewerDep = Annotated[Principal, principal(Role.OPERATOR)]
ViewerDep = Annotated[Principal, principal(Role.OPERATOR, Role.ANALYST)]
AnyRoleDep = Annotated[Principal, principal(Role.OPERATOR, Role.ANALYST, Role.INTEGRATOR)]
AnalystDep = Annotated[Principal, principal(Role.ANALYST)]
IntegratorDep = Annotated[Principal, principal(Role.INTEGRATOR)]
AdminDep = Annotated[Principal, principal()]
