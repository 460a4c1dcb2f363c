"""Signing in as a person: name + password (argon2) → a session cookie (HttpOnly, SameSite=Strict)
and a CSRF token that every unsafe request of the session must echo in ``X-CSRF-Token``.
Machines keep their bearer tokens. Behind a trusted login proxy (single sign-on), ``GET
/auth/session`` opens the session for the user the proxy names."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import (
    LOGIN_PATH,
    SESSION_COOKIE,
    AnyRoleDep,
    Principal,
    Role,
    audit,
    check_password,
    client_of,
    count_refusal,
    refuse_if_locked,
)
from api.deps import ApiContext, ContextDep
from pipeline.store.access import (
    User,
    active_session,
    active_user,
    add_session,
    end_session,
    token_hash,
)

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    name: str
    role: str
    csrf_token: str | None  # None: a bearer token, which needs none
    expires_at: float | None


def _open(ctx: ApiContext, request: Request, response: Response, user: User) -> dict[str, Any]:
    session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = ctx.clock()
    add_session(ctx.store, token_hash(session), user.name, csrf, now, ctx.session_ttl_s)
    response.set_cookie(
        SESSION_COOKIE, session, max_age=int(ctx.session_ttl_s), path="/", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return {"name": user.name, "role": user.role, "csrf_token": csrf,
            "expires_at": now + ctx.session_ttl_s}  # fmt: skip


@router.post(LOGIN_PATH.removeprefix("/auth"), response_model=SessionOut)
def login(body: LoginIn, request: Request, response: Response, ctx: ContextDep) -> dict[str, Any]:
    """Sign in; wrong names and passwords are audited and count towards the lockout."""
    client = client_of(request)
    refuse_if_locked(ctx, client, "failed authentications")
    user = active_user(ctx.store, body.name)
    if user is None or not check_password(user, body.password):
        count_refusal(ctx, client, body.name[:64], "login_failed", "wrong name or password")
        raise HTTPException(401, "wrong name or password")
    out = _open(ctx, request, response, user)
    audit(ctx, Principal(user.name, Role(user.role)), "login", f"user:{user.name}")
    return out


@router.get("/session", response_model=SessionOut)
def session(request: Request, response: Response, ctx: ContextDep, who: AnyRoleDep) -> Any:
    """Who is signed in, with the session's CSRF token (a page reloaded needs it again). A
    user named by a trusted login proxy gets a session here."""
    if who.session_sha256 is not None:
        found = active_session(ctx.store, who.session_sha256, ctx.clock())
        if found is None:
            raise HTTPException(401, "session ended: sign in again")
        return {"name": who.name, "role": who.role.value, "csrf_token": found[1],
                "expires_at": None}  # fmt: skip
    if who.token_sha256 is None and (user := active_user(ctx.store, who.name)) is not None:
        out = _open(ctx, request, response, user)  # through the login proxy
        audit(ctx, who, "login", f"user:{user.name}", via="proxy")
        return out
    return {"name": who.name, "role": who.role.value, "csrf_token": None, "expires_at": None}


class LoggedOutOut(BaseModel):
    name: str


@router.post("/logout", response_model=LoggedOutOut)
def logout(response: Response, ctx: ContextDep, who: AnyRoleDep) -> dict[str, str]:
    if who.session_sha256 is not None:
        end_session(ctx.store, who.session_sha256, ctx.clock())
        audit(ctx, who, "logout", f"user:{who.name}")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"name": who.name}
