"""Admin: the audit log (read only), the outbox and its dead letters, API tokens."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import AdminDep, Role, audit, create_token, revoke_token
from api.deps import ContextDep
from api.schemas import AuditOut, OutboxOut, RequeueOut, RevokedOut, TokenOut
from pipeline.store import access
from pipeline.store.access import TokenScope
from pipeline.store.db import StoreIntegrityError

router = APIRouter(tags=["admin"])


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    ctx: ContextDep,
    _who: AdminDep,
    actor: str | None = None,
    target_prefix: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Who saw or did what, newest first. There is no route that changes it."""
    return [asdict(e) for e in access.audit_log(ctx.store, actor, target_prefix, limit)]


@router.get("/outbox", response_model=OutboxOut)
def outbox(ctx: ContextDep, _who: AdminDep, state: str | None = None) -> dict[str, Any]:
    if ctx.outbox is None:
        return {"counts": {}, "rows": []}
    rows = ctx.outbox.rows(state=state)
    return {"counts": ctx.outbox.counts(), "rows": [asdict(r) for r in rows[-500:]]}


@router.post("/outbox/{seq}/requeue", response_model=RequeueOut)
def requeue(seq: int, ctx: ContextDep, who: AdminDep) -> dict[str, Any]:
    if ctx.outbox is None or not ctx.outbox.requeue(seq):
        raise HTTPException(404, f"no dead-lettered outbox row {seq}")
    audit(ctx, who, "outbox_requeue", f"outbox:{seq}")
    return {"seq": seq, "state": "pending"}


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    role: Role
    ttl_days: float | None = Field(
        default=None, gt=0.0, le=3650.0, allow_inf_nan=False,
        description="lifetime; default api.token_ttl_days",
    )  # fmt: skip
    grids: list[str] = Field(
        default_factory=list, max_length=200, description="limit it to these grids' cameras"
    )
    cameras: list[str] = Field(
        default_factory=list, max_length=1000, description="… and/or to these cameras"
    )


@router.post("/tokens", response_model=TokenOut)
def new_token(body: TokenIn, ctx: ContextDep, who: AdminDep) -> dict[str, Any]:
    """Create a token; it is shown in this response only."""
    try:
        ttl_s = body.ttl_days * 86400.0 if body.ttl_days else ctx.token_ttl_s
        scope = (TokenScope(tuple(body.grids), tuple(body.cameras))
                 if body.grids or body.cameras else None)  # fmt: skip
        token = create_token(ctx.store, body.name, body.role, ctx.clock(), ttl_s, scope)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except StoreIntegrityError as exc:
        raise HTTPException(
            409, f"an active token named {body.name!r} exists; revoke it first"
        ) from exc
    audit(ctx, who, "token_create", f"token:{body.name}", role=body.role.value, ttl_s=ttl_s,
          grids=body.grids, cameras=body.cameras)  # fmt: skip
    return {"name": body.name, "role": body.role.value, "token": token,
            "expires_at": ctx.clock() + ttl_s}  # fmt: skip


@router.post("/tokens/{name}/revoke", response_model=RevokedOut)
def revoke(name: str, ctx: ContextDep, who: AdminDep) -> dict[str, str]:
    if not revoke_token(ctx.store, name, ctx.clock()):
        raise HTTPException(404, f"no active token named {name!r}")
    audit(ctx, who, "token_revoke", f"token:{name}")
    return {"name": name, "state": "revoked"}
