"""``cameras.toml`` edited on disk while ``gridsight run`` runs: cameras, zones and rules are
applied through the live reconfigure path (only changed cameras restart). A file that does not
validate changes nothing: its problems are logged and the running configuration stays. Other
sections (site, API, cases, …) need a restart, which the log says."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from pipeline import threads
from pipeline.config import AppConfig, CameraConfig, load_config
from pipeline.errors import ConfigError
from pipeline.types import CameraChanges

logger = logging.getLogger(__name__)


class ConfigWatcher:
    def __init__(
        self, path: Path, current: AppConfig,
        apply: Callable[[list[CameraConfig]], CameraChanges], every_s: float = 2.0,
    ) -> None:  # fmt: skip
        self.path = path
        self.current = current
        self.apply = apply
        self.every_s = every_s
        self._stamp = self._mtime()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except OSError:
            return None

    def check(self) -> CameraChanges | None:
        """Apply the file if it changed since the last look; the changes, or None."""
        stamp = self._mtime()
        if stamp is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            problems = "; ".join(map(str, exc.issues))
            logger.error("%s changed but does not validate; still running the previous "
                         "configuration: %s", self.path, problems)  # fmt: skip
            return None
        rest = new.model_dump(exclude={"cameras"}) != self.current.model_dump(exclude={"cameras"})
        if rest:
            logger.warning("%s: changes outside [[cameras]] apply at the next restart", self.path)
        try:
            changes = self.apply(list(new.cameras))
        except ConfigError as exc:
            logger.error("%s: cameras not applied: %s", self.path, exc)
            return None
        self.current = self.current.model_copy(update={"cameras": new.cameras})
        if changes.added or changes.removed or changes.updated:
            logger.info("%s applied: added %s, removed %s, restarted %s", self.path,
                        list(changes.added), list(changes.removed),
                        list(changes.updated))  # fmt: skip
        return changes

    def start(self) -> None:
        self._thread = threads.start("gridsight-config", self._run)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except Exception:  # the next look may succeed (file being written, disk)
                logger.exception("watching %s failed", self.path)
