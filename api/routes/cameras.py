"""Cameras: configuration (credentials redacted), health and the latest analysed frame."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from api.auth import AnyRoleDep, audit
from api.deps import ApiContext, ContextDep
from api.schemas import CameraHealthOut, CameraOut
from pipeline.config import CameraConfig

router = APIRouter(prefix="/cameras", tags=["cameras"])


def _camera(ctx: ApiContext, camera_id: str) -> CameraConfig:
    for cam in ctx.cameras:
        if cam.id == camera_id:
            return cam
    raise HTTPException(404, f"camera {camera_id!r} not found")


@router.get("", response_model=list[CameraOut])
def list_cameras(ctx: ContextDep, _who: AnyRoleDep) -> list[CameraOut]:
    rt = ctx.runtime
    return [CameraOut.from_config(c, rt.health(c.id) if rt else None) for c in ctx.cameras]


@router.get("/{camera_id}/health", response_model=CameraHealthOut)
def camera_health(camera_id: str, ctx: ContextDep, _who: AnyRoleDep) -> CameraHealthOut:
    _camera(ctx, camera_id)
    health = ctx.runtime.health(camera_id) if ctx.runtime else None
    if health is None:
        raise HTTPException(503, f"camera {camera_id!r} is not running in this process")
    return CameraHealthOut.from_health(health)


@router.get(
    "/{camera_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def camera_snapshot(camera_id: str, ctx: ContextDep, who: AnyRoleDep) -> Response:
    _camera(ctx, camera_id)
    jpeg = ctx.runtime.snapshot_jpeg(camera_id) if ctx.runtime else None
    if jpeg is None:
        raise HTTPException(503, f"no frame from camera {camera_id!r} yet")
    audit(ctx, who, "view_live_snapshot", f"camera:{camera_id}")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
