"""Per-camera health: counters written by the source thread, snapshots read by everyone else.

``HealthTracker`` only *reports*. Recovery happens in the source thread (read timeouts and
reconnects), because closing a container from another thread is unsafe.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from pipeline.types import CameraHealth, DecodeMode, HealthChange, HealthState

Clock = Callable[[], float]
_RATE_WINDOW_S = 5.0
HISTORY_LEN = 500


class _Rate:
    """Events per second over a sliding window of wall-clock time."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        return len(self._times) / _RATE_WINDOW_S

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - _RATE_WINDOW_S:
            self._times.popleft()


class HealthTracker:
    def __init__(
        self,
        camera_id: str,
        decode_mode: DecodeMode,
        clock: Clock,
        stall_after_s: float,
        drops: Callable[[], int] = lambda: 0,
        still_interval_s: float = 0.0,
    ) -> None:
        self.camera_id = camera_id
        self._decode_mode = decode_mode
        self._clock = clock
        self._stall_after_s = stall_after_s
        self._still_interval_s = still_interval_s  # a still scene's keyframes come this far apart
        self._drops = drops
        self._lock = threading.Lock()
        self._state = HealthState.CONNECTING
        self._since = clock()
        self._epoch = 0
        self._packets = _Rate()
        self._frames = _Rate()
        self._decoded = 0
        self._out = 0
        self._reconnects = 0
        self._last_frame_wall: float | None = None
        self._last_frame_time: float | None = None
        self._last_key_time: float | None = None
        self._key_interval: float | None = None
        self._error: str | None = None
        self._decoder = "cpu"
        # state changes since start, for the cameras screen (long outages are also stored as
        # camera_offline events)
        self._history: deque[HealthChange] = deque(maxlen=HISTORY_LEN)
        self._history.append(HealthChange(self._since, self._state, None))

    def _changed(self, state: HealthState, at: float, reason: str | None) -> None:
        self._state = state
        self._since = at
        self._history.append(HealthChange(at, state, reason))

    def set_state(self, state: HealthState, error: str | None = None) -> None:
        with self._lock:
            if state != self._state:
                self._changed(state, self._clock(), error)
            if error is not None:
                self._error = error

    def history(self) -> tuple[HealthChange, ...]:
        with self._lock:
            return tuple(self._history)

    def uptime(self, window_s: float) -> float | None:
        """Fraction of the last ``window_s`` (or of the time since start) spent online."""
        now = self._clock()
        with self._lock:
            changes = list(self._history)
        return uptime_fraction(changes, now - window_s, now)

    def set_decoder(self, decoder: str) -> None:
        """Where the pictures are decoded (``pipeline.ingest.hwdecode.HwDecode.describe``)."""
        with self._lock:
            self._decoder = decoder

    def connected(self, epoch: int) -> None:
        with self._lock:
            if epoch > 1:
                self._reconnects += 1
            self._epoch = epoch
            self._last_frame_wall = None
            self._last_key_time = None

    def packet(self, is_keyframe: bool, time_s: float) -> None:
        """Count a demuxed packet; ``time_s`` is its stream-derived time (GOP measurement)."""
        now = self._clock()
        with self._lock:
            self._packets.tick(now)
            if is_keyframe:
                if self._last_key_time is not None and time_s > self._last_key_time:
                    self._key_interval = time_s - self._last_key_time
                self._last_key_time = time_s

    def decoded(self) -> None:
        with self._lock:
            self._decoded += 1

    def frame_out(self, time_s: float) -> None:
        now = self._clock()
        with self._lock:
            self._frames.tick(now)
            self._out += 1
            self._last_frame_wall = now
            self._last_frame_time = time_s
            if self._state != HealthState.ONLINE or self._history[-1].state != self._state:
                self._changed(HealthState.ONLINE, now, None)  # connected, or a stall ended
                self._error = None

    def snapshot(self) -> CameraHealth:
        now = self._clock()
        with self._lock:
            state = self._state
            if state == HealthState.ONLINE and self._last_frame_wall is not None:
                limit = self._stall_after_s
                if self._key_interval is not None and self._decode_mode == DecodeMode.KEYFRAMES:
                    limit = max(
                        limit,
                        3 * self._key_interval,
                        self._still_interval_s + 2 * self._key_interval,
                    )
                if now - self._last_frame_wall > limit:
                    state = HealthState.STALLED
                    if self._history[-1].state != HealthState.STALLED:
                        self._history.append(
                            HealthChange(self._last_frame_wall + limit, state, "no frames")
                        )
            return CameraHealth(
                camera_id=self.camera_id,
                state=state,
                epoch=self._epoch,
                decode_mode=self._decode_mode,
                fps_in=round(self._packets.rate(now), 2),
                fps_out=round(self._frames.rate(now), 2),
                frames_decoded=self._decoded,
                frames_out=self._out,
                drops=self._drops(),
                reconnects=self._reconnects,
                keyframe_interval_s=(
                    None if self._key_interval is None else round(self._key_interval, 3)
                ),
                last_frame_time_s=self._last_frame_time,
                state_since_s=self._since,
                last_error=self._error,
                decoder=self._decoder,
            )


def uptime_fraction(changes: list[HealthChange], start: float, end: float) -> float | None:
    """Online share of [start, end) from a list of state changes (None: nothing known)."""
    if not changes or end <= start:
        return None
    start = max(start, changes[0].at)
    if end <= start:
        return None
    online = 0.0
    for i, ch in enumerate(changes):
        a = max(ch.at, start)
        b = min(changes[i + 1].at if i + 1 < len(changes) else end, end)
        if b > a and ch.state == HealthState.ONLINE:
            online += b - a
    return round(online / (end - start), 4)
