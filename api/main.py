"""FastAPI app factory. No module-level app: callers build one per runtime (tests: per test)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.deps import ApiContext, CameraBook, FailureGuard, RuntimeView
from api.middleware import FrontDoor
from api.routes import (
    admin as admin_routes,
    cameras as camera_routes,
    cases as case_routes,
    events as event_routes,
    session as session_routes,
    stats as stats_routes,
    system as system_routes,
)
from pipeline.casework.cases import CaseService
from pipeline.casework.feed import ChangeFeed
from pipeline.casework.outbox import Outbox
from pipeline.casework.package import Exporter
from pipeline.config import ApiConfig, AppConfig, CameraConfig, SiteConfig
from pipeline.evidence.storage import EvidenceStorage, LocalStorage
from pipeline.ops.config_edit import CameraFileEditor
from pipeline.store.repository import EventStore
from pipeline.types import CameraChanges

STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    *,
    store: EventStore,
    evidence_root: Path,
    cameras: list[CameraConfig],
    site: SiteConfig,
    runtime: RuntimeView | None = None,
    cases: CaseService,
    exporter: Exporter,
    feed: ChangeFeed,
    config: AppConfig | None = None,
    outbox: Outbox | None = None,
    secrets: Mapping[str, bytes] | None = None,
    auth_required: bool = True,
    clock: Callable[[], float] = time.time,
    config_path: Path | None = None,
    reconfigure: Callable[[list[CameraConfig]], CameraChanges] | None = None,
    storage: EvidenceStorage | None = None,
) -> FastAPI:
    """Built by ``pipeline.ops.compose.api`` (tests build their parts themselves).
    ``auth_required=False`` only for a local single-user demo: everyone is admin.
    ``storage``: where evidence files are read from (default: the evidence root)."""
    app = FastAPI(
        title="gridsight API",
        version="0.1.0",
        description=(
            "社区网格视频事件 · Community grid video events "
            "(违章停车, 高空抛物, 占道经营, 垃圾满溢)"
        ),
    )
    api = config.api if config else ApiConfig()
    app.state.ctx = ctx = ApiContext(
        runtime=runtime,
        store=store,
        evidence_root=evidence_root,
        storage=storage or LocalStorage(evidence_root),
        cameras=CameraBook(cameras),
        site=site,
        cases=cases,
        exporter=exporter,
        feed=feed,
        clock=clock,
        config=config,
        outbox=outbox,
        secrets=dict(secrets or {}),
        auth_required=auth_required,
        editor=None if config_path is None else CameraFileEditor(config_path),
        reconfigure=reconfigure,
        auth_guard=FailureGuard(api.max_auth_failures, api.lockout_s),
        token_ttl_s=api.token_ttl_days * 86400.0,
        max_body_bytes=api.max_body_bytes,
        session_ttl_s=api.session_ttl_h * 3600.0,
        trusted_proxies=frozenset(api.trusted_proxies),
        proxy_user_header=api.proxy_user_header.lower(),
    )
    app.add_middleware(FrontDoor, ctx=ctx)
    app.include_router(system_routes.router)
    app.include_router(camera_routes.router)
    app.include_router(event_routes.router)
    app.include_router(case_routes.router)
    app.include_router(case_routes.callbacks)
    app.include_router(admin_routes.router)
    app.include_router(stats_routes.router)
    app.include_router(session_routes.router)
    # The monitoring-center UI: static files, no build step; it calls the API like any client.
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app
