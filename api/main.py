"""FastAPI app factory. No module-level app: callers build one per runtime (tests: per test)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from api.deps import ApiContext, RuntimeView
from api.routes import cameras as camera_routes
from api.routes import events as event_routes
from api.routes import system as system_routes
from pipeline.config import CameraConfig, SiteConfig
from pipeline.store import EventStore


def create_app(
    *,
    store: EventStore,
    evidence_root: Path,
    cameras: list[CameraConfig],
    site: SiteConfig,
    runtime: RuntimeView | None = None,
) -> FastAPI:
    app = FastAPI(
        title="gridsight API",
        version="0.1.0",
        description=(
            "社区网格视频事件 · Community grid video events "
            "(违章停车, 高空抛物, 占道经营, 垃圾满溢)"
        ),
    )
    app.state.ctx = ApiContext(
        runtime=runtime,
        store=store,
        evidence_root=evidence_root,
        cameras=tuple(cameras),
        site=site,
    )
    app.include_router(system_routes.router)
    app.include_router(camera_routes.router)
    app.include_router(event_routes.router)
    return app
