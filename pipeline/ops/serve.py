"""Running a pipeline and its API in this process until SIGINT/SIGTERM (``gridsight run``,
``gridsight demo``, the cluster's API thread)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import AppConfig, CameraConfig
from pipeline.ops.watch import ConfigWatcher

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pipeline.ops.compose import Gridsight
    from pipeline.types import CameraChanges

logger = logging.getLogger("gridsight")


def serve_until(app: FastAPI, host: str, port: int, stop: threading.Event) -> None:
    """Serve ``app`` until ``stop`` is set."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    # Off the main thread uvicorn leaves signals alone; ours stop the pipeline and then the API.
    thread = threading.Thread(target=server.run, name="gridsight-api", daemon=True)
    thread.start()
    stop.wait()
    server.should_exit = True
    thread.join(10)


def warn_exposure(cfg: AppConfig, host: str) -> None:
    warning = cfg.api.model_copy(update={"host": host}).exposure_warning()
    if warning:
        logger.warning("%s", warning)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run(
    running: Gridsight, host: str, port: int, *, api: bool = True,
    config_path: Path | None = None,
) -> int:  # fmt: skip
    """Start ``running`` (and its API) and run until SIGINT/SIGTERM."""
    from pipeline.ops import compose
    from pipeline.runtime import tune_process

    stop = stop_on_signals()
    tune_process()
    running.start()
    app = None
    if api:
        app = compose.api(running.site, runtime=running.runtime, config_path=config_path,
                          reconfigure=running.runtime.reconfigure)  # fmt: skip
    watcher = None
    if config_path is not None:  # edits of cameras.toml on disk apply without a restart
        watcher = ConfigWatcher(config_path, running.site.cfg,
                                _apply_cameras(running, app))  # fmt: skip
        watcher.start()
    try:
        if app is not None:
            logger.info("API on http://%s:%d (docs: /docs)", host, port)
            warn_exposure(running.site.cfg, host)
            serve_until(app, host, port, stop)
        else:
            stop.wait()
    finally:
        logger.info("stopping…")
        if watcher is not None:
            watcher.stop()
        running.stop()
    return 0


def _apply_cameras(
    running: Gridsight, app: FastAPI | None
) -> Callable[[list[CameraConfig]], CameraChanges]:
    def apply(cameras: list[CameraConfig]) -> CameraChanges:
        changes = running.runtime.reconfigure(cameras)
        if app is not None:  # the API serves the cameras the pipeline now runs
            app.state.ctx.cameras.replace(cameras)
        return changes

    return apply
