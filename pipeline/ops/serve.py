"""Running a pipeline and its API until SIGINT/SIGTERM: in this process (``gridsight run
--workers 1``, ``gridsight demo``) or in worker processes placed by a coordinator here
(``gridsight run``'s default, one per core; ``--cluster``: Ray actors)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import threads
from pipeline.config import AppConfig, CameraConfig
from pipeline.ops.watch import ConfigWatcher

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pipeline.ops.cluster import Coordinator
    from pipeline.ops.compose import Gridsight
    from pipeline.types import CameraChanges

logger = logging.getLogger("gridsight")


def serve_until(app: FastAPI, host: str, port: int, stop: threading.Event) -> None:
    """Serve ``app`` until ``stop`` is set."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    # Off the main thread uvicorn leaves signals alone; ours stop the pipeline and then the API.
    thread = threads.start("gridsight-api", server.run)
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
    faulted = running.runtime.faulted

    def on_fault() -> None:
        faulted.wait()
        stop.set()

    threads.start("gridsight-fault", on_fault)
    app = None
    if api:
        app = compose.api(running.site, runtime=running.runtime, config_path=config_path,
                          reconfigure=running.runtime.reconfigure)  # fmt: skip
    watcher = _watch(config_path, running.site.cfg, running.runtime.reconfigure, app)
    try:
        _serve_or_wait(app, running.site.cfg, host, port, stop)
    finally:
        logger.info("stopping…")
        if watcher is not None:
            watcher.stop()
        running.stop()
    if faulted.is_set():  # the service manager restarts it (systemd Restart=on-failure)
        logger.error("stopped on a fault: %s", running.runtime.fault)
        return 70  # EX_SOFTWARE
    return 0


def run_coordinated(
    cfg: AppConfig, coord: Coordinator, host: str, port: int, *, api: bool = True,
    config_path: Path | None = None,
) -> int:  # fmt: skip
    """Start ``coord``'s workers, and here the API and the site's casework; run until
    SIGINT/SIGTERM, replacing workers that die."""
    from pipeline.ops import compose
    from pipeline.ops.cluster import ClusterView

    stop = stop_on_signals()
    view = ClusterView(coord)
    site, cases = compose.coordinating(cfg, view, coord.store)
    watcher = None
    try:
        coord.start()
        cases.start()
        logger.info("%d camera(s) on %d worker(s)", len(coord.cameras), len(coord.workers))
        app = None
        if api:
            app = compose.api(site, runtime=view, config_path=config_path,
                              reconfigure=coord.reconfigure)  # fmt: skip
        watcher = _watch(config_path, cfg, coord.reconfigure, app)
        threads.start("gridsight-workers", partial(coord.run_forever, stop.is_set))
        _serve_or_wait(app, cfg, host, port, stop)
    finally:
        logger.info("stopping…")
        if watcher is not None:
            watcher.stop()
        coord.stop()  # the workers' last events still become cases
        cases.stop()
    return 0


def _serve_or_wait(
    app: FastAPI | None, cfg: AppConfig, host: str, port: int, stop: threading.Event
) -> None:
    """Serve the API (if any) until ``stop``."""
    if app is None:
        stop.wait()
        return
    logger.info("API on http://%s:%d (docs: /docs)", host, port)
    warn_exposure(cfg, host)
    serve_until(app, host, port, stop)


def _watch(
    config_path: Path | None,
    cfg: AppConfig,
    reconfigure: Callable[[list[CameraConfig]], CameraChanges],
    app: FastAPI | None,
) -> ConfigWatcher | None:
    """Edits of cameras.toml on disk apply without a restart."""
    if config_path is None:
        return None

    def apply(cameras: list[CameraConfig]) -> CameraChanges:
        changes = reconfigure(cameras)
        if app is not None:  # the API serves the cameras the pipeline now runs
            app.state.ctx.cameras.replace(cameras)
        return changes

    watcher = ConfigWatcher(config_path, cfg, apply)
    watcher.start()
    return watcher
