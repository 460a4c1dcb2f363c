"""Admin: the audit log (read only), the outbox and its dead letters, API tokens."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import AdminDep, Role, audit, create_token, revoke_token
from api.deps import ContextDep
from pipeline.store.db import StoreIntegrityError

router = APIRouter(tags=["admin"])


@router.get("/audit")
def audit_log(
    ctx: ContextDep,
    _who: AdminDep,
    actor: str | None = None,
    target_prefix: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Who saw or did what, newest first. There is no route that changes it."""
    clauses, args = [], []
    if actor is not None:
        clauses.append("actor = ?")
        args.append(actor)
    if target_prefix is not None:
        clauses.append("target LIKE ? ESCAPE '\\'")
        args.append(like_prefix(target_prefix))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with ctx.store.reader() as db:
        rows = db.execute(
            f"SELECT seq, at, actor, role, action, target, detail_json FROM audit_log {where} "
            "ORDER BY seq DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
    return [
        {
            "seq": r[0],
            "at": r[1],
            "actor": r[2],
            "role": r[3],
            "action": r[4],
            "target": r[5],
            "detail": json.loads(r[6]),
        }
        for r in rows
    ]


@router.get("/outbox")
def outbox(ctx: ContextDep, _who: AdminDep, state: str | None = None) -> dict[str, Any]:
    if ctx.outbox is None:
        return {"counts": {}, "rows": []}
    rows = ctx.outbox.rows("state = ?", (state,)) if state else ctx.outbox.rows()
    return {"counts": ctx.outbox.counts(), "rows": [asdict(r) for r in rows[-500:]]}


@router.post("/outbox/{seq}/requeue")
def requeue(seq: int, ctx: ContextDep, who: AdminDep) -> dict[str, Any]:
    if ctx.outbox is None or not ctx.outbox.requeue(seq):
        raise HTTPException(404, f"no dead-lettered outbox row {seq}")
    audit(ctx, who, "outbox_requeue", f"outbox:{seq}")
    return {"seq": seq, "state": "pending"}


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) matching strings that start with ``prefix``."""
    for ch in ("\\", "%", "_"):
        prefix = prefix.replace(ch, "\\" + ch)
    return prefix + "%"


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    role: Role
    ttl_days: float | None = Field(
        default=None, gt=0.0, le=3650.0, allow_inf_nan=False,
        description="lifetime; default api.token_ttl_days",
    )  # fmt: skip


@router.post("/tokens")
def new_token(body: TokenIn, ctx: ContextDep, who: AdminDep) -> dict[str, Any]:
    """Create a token; it is shown in this response only."""
    try:
        ttl_s = body.ttl_days * 86400.0 if body.ttl_days else ctx.token_ttl_s
        token = create_token(ctx.store, body.name, body.role, ctx.clock(), ttl_s)
    except StoreIntegrityError as exc:
        raise HTTPException(
            409, f"an active token named {body.name!r} exists; revoke it first"
        ) from exc
    audit(ctx, who, "token_create", f"token:{body.name}", role=body.role.value, ttl_s=ttl_s)
    return {"name": body.name, "role": body.role.value, "token": token,
            "expires_at": ctx.clock() + ttl_s}  # fmt: skip


@router.post("/tokens/{name}/revoke")
def revoke(name: str, ctx: ContextDep, who: AdminDep) -> dict[str, str]:
    if not revoke_token(ctx.store, name, ctx.clock()):
        raise HTTPException(404, f"no active token named {name!r}")
    audit(ctx, who, "token_revoke", f"token:{name}")
    return {"name": name, "state": "revoked"}
