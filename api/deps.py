"""Typed dependencies: routes get the runtime view, the store and settings through these."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Depends, Request

from pipeline.casework.cases import CaseService
from pipeline.casework.feed import ChangeFeed
from pipeline.casework.outbox import Outbox
from pipeline.casework.package import Exporter
from pipeline.config import AppConfig, CameraConfig, SiteConfig
from pipeline.detect.inference import InferenceStats
from pipeline.evidence.storage import EvidenceStorage
from pipeline.evidence.writer import WriterStats
from pipeline.ops.config_edit import CameraFileEditor
from pipeline.store.repository import EventStore
from pipeline.types import CameraChanges, CameraHealth, HealthChange

# Paging beyond this is a malformed request, not a page (SQLite's integers stop at 2**63).
MAX_OFFSET = 1_000_000_000


class RuntimeView(Protocol):
    """What the API may ask of a running pipeline (``pipeline.runtime.Runtime`` fits)."""

    def camera_configs(self) -> list[CameraConfig]: ...
    def health(self, camera_id: str) -> CameraHealth | None: ...
    def online(self, camera_id: str) -> bool: ...
    def snapshot_jpeg(self, camera_id: str) -> bytes | None: ...

    def activity_jpeg(self, camera_id: str) -> bytes | None: ...

    def frame_size(self, camera_id: str) -> tuple[int, int] | None: ...
    def health_history(self, camera_id: str) -> tuple[tuple[HealthChange, ...], float | None]: ...
    def writer_stats(self) -> WriterStats: ...
    def inference_stats(self) -> InferenceStats: ...
    def view_state(self, camera_id: str) -> str | None: ...
    def sway_px(self, camera_id: str) -> float | None: ...
    def live_view(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None: ...
    def confirm_view(self, camera_id: str, timeout: float = 10.0) -> str: ...


class CameraBook:
    """The cameras the API serves; replaced as a whole when the zone editor saves one."""

    def __init__(self, cameras: list[CameraConfig]) -> None:
        self._cameras = tuple(cameras)
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[CameraConfig]:
        return iter(self._cameras)

    def __len__(self) -> int:
        return len(self._cameras)

    def get(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self._cameras if c.id == camera_id), None)

    def replace(self, cameras: list[CameraConfig]) -> None:
        """The whole list (cameras.toml edited on disk)."""
        with self._lock:
            self._cameras = tuple(cameras)

    def put(self, camera: CameraConfig) -> list[CameraConfig]:
        """Replace (or add) one camera; returns the new list."""
        with self._lock:
            others = [c for c in self._cameras if c.id != camera.id]
            order = [c.id for c in self._cameras]
            new = sorted(
                [*others, camera], key=lambda c: order.index(c.id) if c.id in order else len(order)
            )
            self._cameras = tuple(new)
            return new


class FailureGuard:
    """Failed authentications per client address in a sliding window (one per API app)."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def locked_for(self, client: str, now: float) -> float:
        """Seconds until ``client`` may try again (0: not locked)."""
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.max_failures:
                if not times:
                    self._failures.pop(client, None)  # keep memory bounded by live offenders
                return 0.0
            return times[-self.max_failures] + self.window_s - now

    def fail(self, client: str, now: float) -> int:
        """Record a failure; returns the failures in the window, this one included."""
        with self._lock:
            times = self._recent(client, now)
            times.append(now)
            while len(times) > self.max_failures:
                times.popleft()
            return len(times)


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Everything routes need; put on ``app.state`` in exactly one place (``create_app``)."""

    runtime: RuntimeView | None
    store: EventStore
    evidence_root: Path  # exported packages (and, on local storage, the evidence files)
    storage: EvidenceStorage
    cameras: CameraBook
    site: SiteConfig
    cases: CaseService
    exporter: Exporter
    feed: ChangeFeed  # "cases changed", for live views
    clock: Callable[[], float]
    config: AppConfig | None = None
    outbox: Outbox | None = None
    # HMAC keys of subscribers, for their status callbacks
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    auth_required: bool = True
    editor: CameraFileEditor | None = None  # cameras.toml, for the zone editor
    # applies a camera list to the running pipeline (only changed cameras restart)
    reconfigure: Callable[[list[CameraConfig]], CameraChanges] | None = None
    auth_guard: FailureGuard = field(default_factory=lambda: FailureGuard(10, 300.0))
    token_ttl_s: float = 90 * 86400.0
    max_body_bytes: int = 1_000_000
    session_ttl_s: float = 12 * 3600.0
    trusted_proxies: frozenset[str] = frozenset()
    proxy_user_header: str = "x-forwarded-user"  # lower case


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]
