"""Cases: the review queue, lifecycle actions, reviewer precision, platform status callbacks."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import (
    AnalystDep,
    Principal,
    ReviewerDep,
    Role,
    ViewerDep,
    audit,
    client_of,
    count_refusal,
    may_see,
    still_valid,
    visible_cameras,
)
from api.deps import MAX_OFFSET, ApiContext, ContextDep
from api.routes.events import served_file
from api.schemas import CallbackOut, CaseOut, CasePage, ExportOut, ReviewStatsOut
from pipeline.casework.cases import REJECT_REASONS, Case, CaseError, ReviewStats, case_json
from pipeline.casework.outbox import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
    was_pushed,
)
from pipeline.casework.package import PackageError
from pipeline.store.access import callback_answer, record_callback

router = APIRouter(prefix="/cases", tags=["cases"])
callbacks = APIRouter(prefix="/callbacks", tags=["callbacks"])


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="accept, reject, dispatch, respond, dispose, return, "
                        "suspend, resume, close")  # fmt: skip
    reason_code: str | None = Field(
        default=None, description=f"reject: one of {', '.join(sorted(REJECT_REASONS))}"
    )
    reason: str | None = Field(default=None, max_length=500)
    unit: str | None = Field(default=None, description="dispatch/return: responsible unit id")


class CallbackIn(ActionIn):
    case_id: str
    actor: str = Field(min_length=1, max_length=100)


def _json(ctx: ApiContext, case: Case) -> dict[str, Any]:
    out = case_json(case, ctx.cases.history(case.case_id), ZoneInfo(ctx.site.timezone))
    out |= {
        "camera_id": case.camera_id,
        "zone_id": case.zone_id,
        "event_type": case.event_type,
        "severity": case.severity,
        "event_ids": ctx.cases.events_of(case.case_id),
        "after_snapshot": f"/cases/{case.case_id}/after.jpg" if case.after_relpath else None,
    }
    return out


@router.get("", response_model=CasePage)
def list_cases(
    ctx: ContextDep,
    who: ViewerDep,
    state: str | None = None,
    camera_id: str | None = None,
    event_type: str | None = None,
    open_only: bool = False,
    event_id: Annotated[str | None, Query(description="the case of this event")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Cases, urgent first, newest first (the review queue: ``state=pending_review``)."""
    if event_id is not None:
        case_id = ctx.cases.case_of_event(event_id)
        found = None if case_id is None else ctx.cases.get(case_id)
        if found is not None and not may_see(ctx, who, found.camera_id):
            found = None
        return {"items": [] if found is None else [_json(ctx, found)], "total": int(bool(found))}
    cases, total = ctx.cases.query(
        state=state, camera_id=camera_id, event_type=event_type, open_only=open_only,
        limit=limit, offset=offset, cameras=visible_cameras(ctx, who),
    )  # fmt: skip
    return {"items": [_json(ctx, c) for c in cases], "total": total}


_RECHECK_TOKEN_S = 5.0
_KEEP_ALIVE_S = 15.0


@router.get("/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    ctx: ContextDep,
    who: ViewerDep,
    timeout_s: Annotated[float, Query(ge=0, le=3600)] = 300,
) -> StreamingResponse:
    """Server-sent events: ``data: {"cases": N, "updated_at": T}`` whenever cases change
    (pushed by the change feed, not polled per client).

    The UI reads it with ``fetch`` (so the bearer token stays in a header, not in a URL);
    a comment line every 15 s keeps proxies from closing an idle stream. The stream ends after
    ``timeout_s`` (the client reconnects), so a forgotten tab does not hold a worker forever,
    and as soon as the caller's token is revoked or expires (checked every few seconds).
    """

    seen = visible_cameras(ctx, who)

    async def changes() -> AsyncIterator[str]:
        deadline = time.monotonic() + timeout_s
        last: tuple[int, float] | None = None
        sent = time.monotonic()
        while not await request.is_disconnected():
            if not await run_in_threadpool(still_valid, ctx.store, who, ctx.clock()):
                yield "event: end\ndata: token revoked or expired\n\n"
                return
            version = ctx.feed.version
            # a scoped reader counts (and hears of) the cases of its own cameras only
            now = await run_in_threadpool(ctx.cases.counter, seen)
            if now != last:
                last, sent = now, time.monotonic()
                yield f"data: {json.dumps({'cases': now[0], 'updated_at': now[1]})}\n\n"
            elif time.monotonic() - sent >= _KEEP_ALIVE_S:
                sent = time.monotonic()
                yield ": keep-alive\n\n"
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ctx.feed.watch(ctx.cases.counter)  # changes made by other processes
            await ctx.feed.wait(version, min(_RECHECK_TOKEN_S, left))

    return StreamingResponse(changes(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})  # fmt: skip


@router.get("/review-stats", response_model=list[ReviewStatsOut])
def review_stats(ctx: ContextDep, who: ViewerDep, min_reviews: int = 5) -> list[dict[str, Any]]:
    """Measured precision per camera/zone/rule from reviewer verdicts, with suggestions."""
    return [review_json(s) for s in scoped_review_stats(ctx, who, min_reviews)]


def scoped_review_stats(ctx: ApiContext, who: Principal, min_reviews: int) -> list[ReviewStats]:
    seen = visible_cameras(ctx, who)
    return [s for s in ctx.cases.review_stats(min_reviews) if seen is None or s.camera_id in seen]


def review_json(s: ReviewStats) -> dict[str, Any]:
    return {
        "camera_id": s.camera_id, "zone_id": s.zone_id, "rule_id": s.rule_id,
        "event_type": s.event_type, "accepted": s.accepted, "rejected": s.rejected,
        "reject_reasons": s.reject_reasons, "precision": s.precision, "suggestion": s.suggestion,
    }  # fmt: skip


def _case(ctx: ApiContext, case_id: str, who: Principal) -> Case:
    """The case, or 404, also for one of a camera outside ``who``'s scope."""
    try:
        case = ctx.cases.get(case_id)
    except CaseError as exc:
        raise HTTPException(404, str(exc)) from None
    if not may_see(ctx, who, case.camera_id):
        raise HTTPException(404, f"case {case_id!r} not found")
    return case


@router.get("/{case_id}", response_model=CaseOut)
def get_case(case_id: str, ctx: ContextDep, who: ViewerDep) -> dict[str, Any]:
    return _json(ctx, _case(ctx, case_id, who))


@router.get(
    "/{case_id}/after.jpg", response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)  # fmt: skip
def after_snapshot(case_id: str, ctx: ContextDep, who: ViewerDep) -> Response:
    """The re-check picture taken when the camera found the problem gone (自动核查)."""
    case = _case(ctx, case_id, who)
    if case.after_relpath is None:
        raise HTTPException(404, f"case {case_id!r} has no after picture")
    response = served_file(ctx, case.after_relpath, f"after picture of {case_id!r} is missing",
                           "image/jpeg")  # fmt: skip
    audit(ctx, who, "view_evidence", f"case:{case_id}/after")
    return response


@router.post("/{case_id}/actions", response_model=CaseOut)
def act(case_id: str, body: ActionIn, ctx: ContextDep, who: ReviewerDep) -> dict[str, Any]:
    _case(ctx, case_id, who)
    try:
        case = ctx.cases.act(
            case_id, body.action, who.name, reason_code=body.reason_code, reason=body.reason,
            unit=body.unit,
        )  # fmt: skip
    except CaseError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(ctx, who, f"case_{body.action}", f"case:{case_id}", reason_code=body.reason_code)
    return _json(ctx, case)


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(min_length=1, max_length=500, description="recorded in the custody log")
    shared: bool = Field(default=True, description="masked copy without originals")
    keep_plates: bool = Field(default=False, description="shared parking case for enforcement")


@router.post("/{case_id}/export", response_model=ExportOut)
def export(case_id: str, body: ExportIn, ctx: ContextDep, who: AnalystDep) -> dict[str, Any]:
    """Write an evidence package under ``<evidence root>/exports/``
    (see pipeline.casework.package)."""
    _case(ctx, case_id, who)
    kind = "shared" if body.shared else "full"
    out = ctx.evidence_root / "exports" / f"{case_id}-{kind}-{int(ctx.clock() * 1000)}"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = ctx.exporter.export(case_id, out, actor=who.name, purpose=body.purpose,
                                 shared=body.shared, keep_plates=body.keep_plates)  # fmt: skip
    except PackageError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(ctx, who, f"export_{kind}", f"case:{case_id}", purpose=body.purpose,
          manifest_sha256=result.manifest_sha256, package=out.name)  # fmt: skip
    return {"package": out.relative_to(ctx.evidence_root).as_posix(), "kind": kind,
            "manifest_sha256": result.manifest_sha256, "files": result.files,
            "masked_regions": result.masked_regions}  # fmt: skip


@callbacks.post("/{subscriber_id}", response_model=CallbackOut)
async def platform_callback(subscriber_id: str, request: Request, ctx: ContextDep) -> JSONResponse:
    """Status callback from a receiving platform (HMAC-signed like our pushes).

    The platform drives the case it was sent (派遣, 处置, 退回, 核查结案): only cases pushed to
    this subscriber, only platform actions, only where the case's state allows them. The
    signature covers the ``Idempotency-Key``; a key repeated with the same body returns the
    first answer without acting again, with another body it is refused (422).
    """
    body = await request.body()
    # the rest reads and writes the store: off the event loop
    return await run_in_threadpool(_callback, ctx, request, subscriber_id, body)


def _callback(ctx: ApiContext, request: Request, subscriber_id: str, body: bytes) -> JSONResponse:
    secret = ctx.secrets.get(subscriber_id)
    if secret is None:
        raise HTTPException(404, f"unknown subscriber {subscriber_id!r}")
    key = request.headers.get(IDEMPOTENCY_HEADER)
    bad = verify_signature(
        secret, request.headers.get(TIMESTAMP_HEADER), key, body,
        request.headers.get(SIGNATURE_HEADER), ctx.clock(),
    )  # fmt: skip
    if bad or key is None:
        _callback_refused(ctx, request, subscriber_id, bad or "no key")
        raise HTTPException(401, bad)
    digest = hashlib.sha256(body).hexdigest()
    seen = callback_answer(ctx.store, subscriber_id, key)
    if seen is not None:
        if seen[2] != digest:
            raise HTTPException(422, f"{IDEMPOTENCY_HEADER} {key!r} was used for another body")
        return JSONResponse(seen[1], status_code=seen[0])
    try:
        cb = CallbackIn.model_validate_json(body)
    except ValueError as exc:
        raise HTTPException(422, f"bad callback body: {exc}") from None
    actor = f"{subscriber_id}:{cb.actor}"
    sent = was_pushed(ctx.store, subscriber_id, cb.case_id)
    try:
        if not sent:  # unknown, never pushed, or pushed to someone else: all look the same
            raise CaseError(f"case {cb.case_id!r} was not sent to subscriber {subscriber_id!r}")
        case = ctx.cases.act(
            cb.case_id, cb.action, actor, actor_type="platform", reason_code=cb.reason_code,
            reason=cb.reason, unit=cb.unit,
        )  # fmt: skip
        status, result = 200, {"case_id": case.case_id, "state": case.state}
    except CaseError as exc:
        status, result = (409 if sent else 403), {"detail": str(exc)}
    record_callback(ctx.store, subscriber_id, key, digest, ctx.clock(), status, result)
    # the platform acts as a reviewer would; the audit row names it
    audit(ctx, Principal(actor, Role.OPERATOR), f"callback_{cb.action}", f"case:{cb.case_id}",
          status=status)  # fmt: skip
    return JSONResponse(result, status_code=status)


def _callback_refused(ctx: ApiContext, request: Request, subscriber_id: str, why: str) -> None:
    """A forged or stale callback: audited and counted like a wrong token."""
    client = client_of(request)
    count_refusal(ctx, client, f"subscriber:{subscriber_id}", "callback_refused", why,
                  client=client)  # fmt: skip
