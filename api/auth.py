"""Roles, bearer tokens and the audit log.

Tokens are 256-bit random strings shown once at creation; the store keeps only their SHA-256.
A fast hash is enough here (unlike passwords): a random 256-bit secret cannot be guessed by
brute force, and the hash doubles as the lookup key. Every route states the roles it admits
through ``require(...)``; admin is admitted everywhere. Views of evidence and exports are
written to ``audit_log``, which SQLite triggers keep append-only and which no API route edits.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ApiContext, ContextDep
from pipeline.store import EventStore, append_audit


class Role(StrEnum):
    OPERATOR = "operator"  # monitoring center: review, dispatch
    INTEGRATOR = "integrator"  # cameras, zones
    ANALYST = "analyst"  # replay, export
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: EventStore, name: str, role: Role | str, now: float) -> str:
    """A new token for ``name`` (shown once; only its hash is kept)."""
    token = "gs_" + secrets.token_urlsafe(32)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO api_tokens (token_sha256, name, role, created_at) VALUES (?, ?, ?, ?)",
            (_hash(token), name, Role(role).value, now),
        )
    return token


def revoke_token(store: EventStore, name: str, now: float) -> bool:
    with store.transaction() as db:
        cur = db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (now, name),
        )
        return cur.rowcount > 0


def lookup(store: EventStore, token: str) -> Principal | None:
    with store.reader() as db:
        row = db.execute(
            "SELECT name, role FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
            (_hash(token),),
        ).fetchone()
    return None if row is None else Principal(str(row[0]), Role(row[1]))


def audit(ctx: ApiContext, who: Principal, action: str, target: str, **detail: Any) -> None:
    with ctx.store.transaction() as db:
        append_audit(db, ctx.clock(), who.name, who.role.value, action, target, detail)


ANONYMOUS_ADMIN = Principal("local", Role.ADMIN)
# auto_error=False: we answer 401 ourselves (with a clear message); /docs gets "Authorize".
_bearer = HTTPBearer(auto_error=False, description="gridsight API token (gs_…)")


def require(*roles: Role) -> Callable[..., Principal]:
    """Dependency admitting the given roles (and admin)."""
    allowed = frozenset(roles) | {Role.ADMIN}

    def dependency(
        ctx: ContextDep,
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if not ctx.auth_required:
            return ANONYMOUS_ADMIN
        if cred is None or not cred.credentials:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        who = lookup(ctx.store, cred.credentials.strip())
        if who is None:
            raise HTTPException(
                401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"}
            )
        if who.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"role {who.role.value} may not do this (needs {names})")
        return who

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]
    return dependency


def principal(*roles: Role) -> Any:
    """``who: Annotated[Principal, principal(Role.OPERATOR)]`` in a route signature."""
    return Depends(require(*roles))


ReviewerDep = Annotated[Principal, principal(Role.OPERATOR)]
ViewerDep = Annotated[Principal, principal(Role.OPERATOR, Role.ANALYST)]
AnyRoleDep = Annotated[Principal, principal(Role.OPERATOR, Role.ANALYST, Role.INTEGRATOR)]
AnalystDep = Annotated[Principal, principal(Role.ANALYST)]
IntegratorDep = Annotated[Principal, principal(Role.INTEGRATOR)]
AdminDep = Annotated[Principal, principal()]
