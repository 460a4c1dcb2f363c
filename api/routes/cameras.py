"""Cameras: configuration (credentials redacted), health and the latest analysed frame."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from api.auth import AnyRoleDep, IntegratorDep, Principal, audit, may_see, visible_cameras
from api.deps import ApiContext, ContextDep
from api.schemas import (
    CameraHealthOut,
    CameraOut,
    GeometryCheckOut,
    GeometryOut,
    GeometrySavedOut,
    HealthHistoryOut,
)
from pipeline.config import CameraConfig, FacadeConfig
from pipeline.errors import ConfigError
from pipeline.ops.config_edit import CameraFileEditor
from pipeline.rules.camera_model import fit_summary

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/cameras", tags=["cameras"])


def _camera(ctx: ApiContext, camera_id: str, who: Principal) -> CameraConfig:
    """The camera, or 404, also for one outside ``who``'s scope (its existence is not told)."""
    cam = ctx.cameras.get(camera_id)
    if cam is None or not may_see(ctx, who, camera_id):
        raise HTTPException(404, f"camera {camera_id!r} not found")
    return cam


@router.get("", response_model=list[CameraOut])
def list_cameras(ctx: ContextDep, who: AnyRoleDep) -> list[CameraOut]:
    rt = ctx.runtime
    seen = visible_cameras(ctx, who)
    return [
        CameraOut.from_config(
            c,
            rt.health(c.id) if rt else None,
            rt.view_state(c.id) if rt else None,
            rt.sway_px(c.id) if rt else None,
        )
        for c in ctx.cameras
        if seen is None or c.id in seen
    ]


@router.get(
    "/{camera_id}/live.mp4",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/mp4": {}}}},
)
def camera_live(camera_id: str, ctx: ContextDep, who: AnyRoleDep) -> StreamingResponse:
    """The camera now as fragmented MP4 for Media Source Extensions (its own H.264, remuxed,
    never decoded; one remux per camera for all viewers). ``X-Codec`` names the MSE codec."""
    _camera(ctx, camera_id, who)
    live = ctx.runtime.live_view(camera_id) if ctx.runtime else None
    if live is None:
        raise HTTPException(503, f"camera {camera_id!r} has no live stream in this process")
    codec, body = live
    audit(ctx, who, "view_live_video", camera_id)
    return StreamingResponse(_until_disconnect(body), media_type="video/mp4",
                             headers={"X-Codec": codec, "Cache-Control": "no-store"})  # fmt: skip


async def _until_disconnect(body: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The fragments, each waited for in a worker thread; a viewer who leaves is cancelled
    here, and closing ``body`` then tells the camera's remux at once (a plain iterator would
    stay parked in its thread until the next fragment, and its viewer counted)."""
    try:
        while (chunk := await anyio.to_thread.run_sync(next, body, None)) is not None:
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


class ViewConfirmedOut(BaseModel):
    camera_id: str
    view: str


@router.post("/{camera_id}/view/confirm", response_model=ViewConfirmedOut)
def confirm_view(camera_id: str, ctx: ContextDep, who: IntegratorDep) -> ViewConfirmedOut:
    """The camera's view now becomes its integrity reference: an open camera_tamper event
    ends ("confirmed") and the camera's rules start again. For a camera that moved for good,
    redraw its zones first."""
    _camera(ctx, camera_id, who)
    rt = ctx.runtime
    if rt is None or rt.view_state(camera_id) is None:
        raise HTTPException(409, f"camera {camera_id!r} has no integrity check running here")
    view = rt.confirm_view(camera_id)
    audit(ctx, who, "confirm_camera_view", camera_id)
    return ViewConfirmedOut(camera_id=camera_id, view=view)


@router.get("/{camera_id}/health", response_model=CameraHealthOut)
def camera_health(camera_id: str, ctx: ContextDep, who: AnyRoleDep) -> CameraHealthOut:
    _camera(ctx, camera_id, who)
    health = ctx.runtime.health(camera_id) if ctx.runtime else None
    if health is None:
        raise HTTPException(503, f"camera {camera_id!r} is not running in this process")
    return CameraHealthOut.from_health(health)


@router.get("/{camera_id}/health/history", response_model=HealthHistoryOut)
def camera_health_history(camera_id: str, ctx: ContextDep, who: AnyRoleDep) -> dict[str, Any]:
    """State changes since this process started (outages longer than
    ``ingest.offline_event_after_s`` are also kept as camera_offline events) and uptime."""
    _camera(ctx, camera_id, who)
    if ctx.runtime is None:
        raise HTTPException(503, f"camera {camera_id!r} is not running in this process")
    changes, uptime = ctx.runtime.health_history(camera_id)
    return {
        "camera_id": camera_id,
        "uptime_24h": uptime,
        "changes": [{"at": c.at, "state": c.state.value, "reason": c.reason} for c in changes],
    }


@router.get(
    "/{camera_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def camera_snapshot(camera_id: str, ctx: ContextDep, who: AnyRoleDep) -> Response:
    _camera(ctx, camera_id, who)
    jpeg = ctx.runtime.snapshot_jpeg(camera_id) if ctx.runtime else None
    return _live_jpeg(ctx, who, camera_id, jpeg, "view_live_snapshot", "no frame")


def _live_jpeg(
    ctx: ApiContext, who: Principal, camera_id: str, jpeg: bytes | None, action: str, none: str
) -> Response:
    """A picture of the camera's scene now: audited (residents' privacy), never cached."""
    if jpeg is None:
        raise HTTPException(503, f"{none} from camera {camera_id!r} yet")
    audit(ctx, who, action, f"camera:{camera_id}")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/{camera_id}/activity.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def camera_activity(camera_id: str, ctx: ContextDep, who: IntegratorDep) -> Response:
    """Where motion is normal in this camera's façade zones (learned over minutes): trees
    and flags to leave out of the zone. Only cameras with a 高空抛物 rule learn one."""
    _camera(ctx, camera_id, who)
    jpeg = ctx.runtime.activity_jpeg(camera_id) if ctx.runtime else None
    return _live_jpeg(ctx, who, camera_id, jpeg, "view_activity_map", "no activity map")


# -- zone editor ------------------------------------------------------------------------------


class GeometryIn(BaseModel):
    """A camera's zones and façades as the editor draws them (relative 0-1 coordinates).
    Entries are validated by the same models as ``cameras.toml`` (``gridsight check``)."""

    model_config = ConfigDict(extra="forbid")
    zones: list[dict[str, Any]]
    facades: list[dict[str, Any]] = []


def _editor(ctx: ApiContext) -> CameraFileEditor:
    if ctx.editor is None:
        raise HTTPException(409, "this server was started without a cameras.toml to edit")
    return ctx.editor


def _facade_fits(
    ctx: ApiContext, camera_id: str, facades: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each façade: does a real camera fit its calibration (see pipeline.rules.camera_model)?
    Judged on the camera's own frame size where a frame has arrived."""
    size = ctx.runtime.frame_size(camera_id) if ctx.runtime else None
    out = []
    for raw in facades:
        try:
            cfg = FacadeConfig.model_validate(raw)
        except ValueError:
            continue  # reported among the issues
        ok, text = fit_summary(cfg, *(size or cfg.image_size))
        out.append({"id": cfg.id, "ok": ok, "message": text})
    return out


def _issues(exc: ConfigError, who: Principal, camera_id: str) -> JSONResponse:
    """The problems found; a scoped integrator sees those of this camera (and of no other
    camera of the file, whose ids and settings are not theirs to see)."""
    issues = exc.issues
    if who.scope is not None:
        issues = [i for i in issues if i.location.startswith(f"camera {camera_id!r}")]
    return JSONResponse(
        status_code=422,
        content={
            "ok": False,
            "issues": [{"location": i.location, "message": i.message} for i in issues],
        },
    )


@router.get("/{camera_id}/geometry", response_model=GeometryOut)
def get_geometry(camera_id: str, ctx: ContextDep, who: IntegratorDep) -> dict[str, Any]:
    cam = _camera(ctx, camera_id, who)
    if ctx.editor is not None:
        try:
            return {"editable": True, "live": ctx.reconfigure is not None,
                    **ctx.editor.camera_geometry(camera_id)}  # fmt: skip
        except ConfigError as exc:
            logger.warning("zone editor: %s", exc)
    dumped = cam.model_dump(mode="json", include={"zones", "facades"}, exclude_none=True)
    return {"editable": False, "live": False, **dumped}


@router.post("/{camera_id}/geometry/validate", response_model=GeometryCheckOut,
             responses={422: {"model": GeometryCheckOut}})  # fmt: skip
def validate_geometry(
    camera_id: str, body: GeometryIn, ctx: ContextDep, who: IntegratorDep
) -> dict[str, Any] | JSONResponse:
    _camera(ctx, camera_id, who)
    try:
        _editor(ctx).validate(camera_id, body.model_dump())
    except ConfigError as exc:
        return _issues(exc, who, camera_id)
    return {"ok": True, "issues": [], "facade_fits": _facade_fits(ctx, camera_id, body.facades)}


@router.put("/{camera_id}/geometry", response_model=GeometrySavedOut,
            responses={422: {"model": GeometryCheckOut}})  # fmt: skip
def save_geometry(
    camera_id: str, body: GeometryIn, ctx: ContextDep, who: IntegratorDep
) -> dict[str, Any] | JSONResponse:
    """Validate, write ``cameras.toml`` (previous kept as ``.bak``) and, when the pipeline
    runs in this process, restart only this camera with the new zones."""
    _camera(ctx, camera_id, who)
    try:
        saved = _editor(ctx).save(camera_id, body.model_dump())
    except ConfigError as exc:
        return _issues(exc, who, camera_id)
    applied: dict[str, Any] | None = None
    if saved.changed_fields:
        cameras = ctx.cameras.put(saved.camera)
        audit(ctx, who, "edit_geometry", f"camera:{camera_id}", fields=list(saved.changed_fields))
        if ctx.reconfigure is not None:
            try:
                changes = ctx.reconfigure(cameras)
            except ConfigError as exc:
                return _issues(exc, who, camera_id)
            applied = {"updated": list(changes.updated), "untouched": len(changes.unchanged)}
    return {
        "ok": True,
        "changed": list(saved.changed_fields),
        "backup": saved.backup.name if saved.backup else None,
        "applied": applied,
        "facade_fits": _facade_fits(ctx, camera_id, body.facades),
    }
