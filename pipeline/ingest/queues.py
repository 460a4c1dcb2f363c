"""Bounded hand-over between camera threads and the single inference worker.

``FrameHub`` holds one short deque per camera. Live cameras *drop the oldest* frame when their
deque is full (the newest frame is always the one worth analysing; a recovered keyframe, which
dates a still scene's change, takes no place and is never dropped) and count the drop; replays
*block* instead, so that every sampled frame of a recording is analysed. The consumer takes a
batch round-robin across cameras and never waits for every camera (one stalled camera must not
stall the rest), running a partial batch after ``batch_wait_s``. Several workers may share one
hub: a camera with a frame in flight is skipped until that frame is ``release``d, so frames of
one camera are always analysed in order.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from pipeline.types import Frame


class FrameHub:
    def __init__(self, maxlen: int = 2, *, block: bool = False) -> None:
        self._maxlen = maxlen
        self._block = block
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Frame]] = {}
        self._drops: dict[str, int] = {}
        self._order: list[str] = []
        self._busy: set[str] = set()
        self._next = 0
        self._closed = False

    def register(self, camera_id: str) -> None:
        with self._cond:
            if camera_id not in self._queues:
                self._queues[camera_id] = deque()
                self._drops[camera_id] = 0
                self._order.append(camera_id)

    def unregister(self, camera_id: str) -> None:
        with self._cond:
            self._queues.pop(camera_id, None)
            self._drops.pop(camera_id, None)
            if camera_id in self._order:
                self._order.remove(camera_id)
            self._cond.notify_all()

    def put(self, frame: Frame) -> bool:
        """Hand over a frame. Returns False if it was not accepted (hub closed)."""
        with self._cond:
            q = self._queues.get(frame.camera_id)
            if q is None or self._closed:
                return False
            if self._block:
                while len(q) >= self._maxlen:
                    if self._is_closed():
                        return False
                    self._cond.wait(0.5)
            elif sum(not f.recovered for f in q) >= self._maxlen:
                # The oldest frame goes, but not a recovered keyframe: a still scene's change
                # comes as two frames at once (the keyframe where it began, recovered, and the
                # current one, pipeline.ingest.still), and with the keyframe after them that
                # was a drop of the one that dates the change whenever the detector was a GOP
                # behind. A recovered keyframe rides with the one after it.
                del q[next(i for i, f in enumerate(q) if not f.recovered)]
                self._drops[frame.camera_id] += 1
            q.append(frame)
            self._cond.notify_all()
            return True

    def release(self, camera_ids: list[str]) -> None:
        """The frames taken for these cameras have been handed on: they may be served again."""
        with self._cond:
            self._busy.difference_update(camera_ids)
            self._cond.notify_all()

    def drops(self, camera_id: str) -> int:
        with self._cond:
            return self._drops.get(camera_id, 0)

    def take_batch(
        self, max_batch: int, batch_wait_s: float, idle_wait_s: float = 0.5
    ) -> list[Frame] | None:
        """Up to ``max_batch`` frames, at most one per camera per round, fairly rotated.

        Waits up to ``idle_wait_s`` for a first frame (returns [] if none), then up to
        ``batch_wait_s`` more for other cameras. Returns None once closed and drained.
        """
        with self._cond:
            if not self._cond.wait_for(self._any_or_closed, timeout=idle_wait_s):
                return []
            if self._closed and not any(self._queues.values()):
                return None
            deadline = time.monotonic() + batch_wait_s
            batch = self._take_round(max_batch)
            while len(batch) < max_batch and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
                batch.extend(self._take_round(max_batch - len(batch)))
            self._cond.notify_all()  # blocked producers may proceed
            return batch

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())

    def _is_closed(self) -> bool:
        return self._closed

    def _any(self) -> bool:
        return any(q for cam, q in self._queues.items() if cam not in self._busy)

    def _any_or_closed(self) -> bool:
        return self._closed or self._any()

    def _take_round(self, limit: int) -> list[Frame]:
        taken: list[Frame] = []
        n = len(self._order)
        start = self._next
        for i in range(n):
            if len(taken) >= limit:
                break
            cam = self._order[(start + i) % n]
            q = self._queues[cam]
            if q and cam not in self._busy:
                taken.append(q.popleft())
                self._busy.add(cam)
                self._next = (start + i + 1) % n
        return taken


class Watermark:
    """How far analysis has got on one camera, so a replayed file cannot race ahead of it.

    A replay demuxes much faster than real time; if it ran unchecked, the packets an event's
    pre-roll needs would leave the packet ring before the event is raised. The source waits
    while it is more than ``lead_s`` of stream time ahead of the analysed frames, but only while
    frames are still in flight (otherwise nothing would ever advance the watermark).
    """

    def __init__(self, lead_s: float) -> None:
        self.lead_s = lead_s
        self._cond = threading.Condition()
        self._time: float | None = None
        self._emitted = 0
        self._processed = 0

    def emitted(self) -> None:
        with self._cond:
            self._emitted += 1

    def processed(self, time_s: float) -> None:
        with self._cond:
            self._processed += 1
            self._time = time_s if self._time is None else max(self._time, time_s)
            self._cond.notify_all()

    def wait(self, time_s: float, stop: threading.Event) -> None:
        with self._cond:
            while (
                not stop.is_set()
                and self._emitted > self._processed
                and self._time is not None
                and time_s > self._time + self.lead_s
            ):
                self._cond.wait(0.2)

    def release(self) -> None:
        """Wake a waiting source (shutdown)."""
        with self._cond:
            self._cond.notify_all()
