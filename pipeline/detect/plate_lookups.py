"""How the parking rule gets plates read without waiting for them.

A plate read costs ~70-100 ms of CPU (a 640² detector pass and a text recogniser). Cars reach
half their dwell together (a street at rush hour, a burst after an outage), and read on the
analysis thread those reads held up every camera's analysis behind them: measured with 64
parking cameras, 64 reads in one burst pushed event latency p50 to 9 s. So a live pipeline
reads plates on a thread of its own (``PlateWorker``); the analyzer asks (``ask``) and picks up
the answers at a later frame (``answers``), and the worker's queue is bounded: when it is full
the ask is refused and made again at a later frame, so a burst costs plate reads time, never
analysis.

Replays and tests read inline (``InlinePlates``): the answer is there in the same ``observe``,
so results do not depend on thread timing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from pipeline import threads
from pipeline.detect.plates import PlateRead, PlateSighting, PlateSource, around

logger = logging.getLogger(__name__)

Region = tuple[float, float, float, float]
Answer = tuple[int, list[PlateRead]]  # (the asker's key, what was read)


class PlateLookups(Protocol):
    """One camera's access to plate reading."""

    def ask(
        self, key: int, image: NDArray[np.uint8], region: Region, hint: PlateSighting | None = None
    ) -> bool:
        """Read the plates in ``region`` of ``image`` (``hint``: where one was read before);
        False: busy, ask again later."""
        ...

    def answers(self) -> list[Answer]:
        """The reads finished since the last call (each ask is answered exactly once)."""
        ...


class PlateService(Protocol):
    """Plate reading shared by every camera of a process."""

    def lookups(self, camera_id: str) -> PlateLookups: ...


class InlinePlates:
    """Reads at once, on the caller's thread."""

    def __init__(self, source: PlateSource) -> None:
        self._source = source
        self._done: list[Answer] = []

    def ask(
        self, key: int, image: NDArray[np.uint8], region: Region, hint: PlateSighting | None = None
    ) -> bool:
        self._done.append((key, self._source.read(image, region, hint)))
        return True

    def answers(self) -> list[Answer]:
        done, self._done = self._done, []
        return done


class InlinePlateService:
    def __init__(self, source: PlateSource) -> None:
        self.source = source

    def lookups(self, camera_id: str) -> PlateLookups:  # noqa: ARG002
        return InlinePlates(self.source)


@dataclass(frozen=True, slots=True)
class _Job:
    client: _QueuedPlates
    key: int
    crop: NDArray[np.uint8]
    region: Region  # in the crop's pixels
    offset: tuple[int, int]  # the crop's top-left corner in the frame
    hint: PlateSighting | None  # in the crop's pixels


class _QueuedPlates:
    def __init__(self, worker: PlateWorker, camera_id: str) -> None:
        self._worker = worker
        self.camera_id = camera_id
        self._done: deque[Answer] = deque()  # appended by the worker, drained by the analyzer

    def ask(
        self, key: int, image: NDArray[np.uint8], region: Region, hint: PlateSighting | None = None
    ) -> bool:
        # Only the vehicle and a margin travel: the frame itself may be released meanwhile.
        ox, oy, ex, ey = around(region, image.shape, 0.25)
        x1, y1, x2, y2 = region
        crop = np.ascontiguousarray(image[oy:ey, ox:ex])
        if hint is not None:
            hint = replace(hint, corners=hint.corners - np.array([ox, oy], np.float32))
            c = hint.corners
            if c.min() < 0 or c[:, 0].max() > ex - ox or c[:, 1].max() > ey - oy:
                hint = None  # not on this crop any more: searched for instead
        job = _Job(self, key, crop, (x1 - ox, y1 - oy, x2 - ox, y2 - oy), (ox, oy), hint)
        return self._worker.offer(job)

    def answers(self) -> list[Answer]:
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out


def _shifted(read: PlateRead, dx: int, dy: int) -> PlateRead:
    corners = read.sighting.corners + np.array([dx, dy], np.float32)
    return replace(read, sighting=replace(read.sighting, corners=corners))


class PlateWorker:
    """Reads plates on one thread for every camera of the process (see the module docstring).

    ``max_pending``: reads waiting at most; each waits ~0.1 s, so 32 is ~3 s of backlog."""

    def __init__(self, source: PlateSource, max_pending: int = 32) -> None:
        self.source = source
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self.refused = 0  # asks turned away while the queue was full (made again later)
        self.read = 0

    def lookups(self, camera_id: str) -> PlateLookups:
        return _QueuedPlates(self, camera_id)

    def offer(self, job: _Job) -> bool:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.refused += 1
            return False
        return True

    def start(self) -> None:
        self._thread = threads.start("gridsight-plates", self._run)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(None)  # after what is queued: those asks still get their answers
        self._thread.join(30)
        self._thread = None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                reads = self.source.read(job.crop, job.region, job.hint)
            except Exception:  # one bad crop must not end plate reading for every camera
                logger.exception("camera %s: reading a plate failed", job.client.camera_id)
                reads = []
            dx, dy = job.offset
            job.client._done.append((job.key, [_shifted(r, dx, dy) for r in reads]))
            self.read += 1
