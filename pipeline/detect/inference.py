"""Stage 2b: inference workers shared by all cameras (one per core given to inference).

Workers take frames round-robin from the ``FrameHub`` (so a busy camera cannot starve the others),
runs them through the detector as one batch when the model accepts a dynamic batch (one call per
frame otherwise; on CPU batching gains little, on a GPU it is the main win), and hands
``(frame, detections)`` to the analysis loop through a bounded, blocking queue. Workers share
one onnxruntime session (``run`` is thread-safe and releases the GIL); each sends END when the
hub is closed and drained, so the analysis loop waits for as many ENDs as there are workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.detect.detector import OnnxDetector
from pipeline.ingest.queues import FrameHub
from pipeline.types import Detections, Frame, MotionSample

logger = logging.getLogger(__name__)

END = None  # sentinel on the analysis queue: no more frames will come


class Detector(Protocol):
    """Anything that turns frames into detections (ONNX model, or a scripted fake in tests)."""

    def detect(self, frames: Sequence[Frame]) -> list[Detections]: ...


class OnnxFrameDetector:
    """Adapts ``OnnxDetector`` (images in) to the frame-based ``Detector`` protocol; frames
    of cameras with their own model (``by_camera``) go to that model, the rest to ``model``."""

    def __init__(
        self, detector: OnnxDetector, by_camera: Mapping[str, OnnxDetector] | None = None
    ) -> None:
        self.model = detector
        self.by_camera = dict(by_camera or {})

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if not self.by_camera:
            return self.model.detect([f.image for f in frames])
        groups: dict[int, tuple[OnnxDetector, list[int]]] = {}
        for i, f in enumerate(frames):
            model = self.by_camera.get(f.camera_id, self.model)
            groups.setdefault(id(model), (model, []))[1].append(i)
        out: list[Detections | None] = [None] * len(frames)
        for model, idx in groups.values():
            for i, dets in zip(idx, model.detect([frames[i].image for i in idx]), strict=True):
                out[i] = dets
        return [d if d is not None else Detections.empty() for d in out]


@dataclass(frozen=True, slots=True)
class InferenceStats:
    frames: int  # frames taken from the hub
    detected: int  # frames the detector ran on (the rest were unchanged: change gate)
    batches: int
    busy_s: float

    @classmethod
    def total(cls, parts: Sequence[InferenceStats]) -> InferenceStats:
        """Several workers' figures as one."""
        return cls(
            frames=sum(p.frames for p in parts),
            detected=sum(p.detected for p in parts),
            batches=sum(p.batches for p in parts),
            busy_s=round(sum(p.busy_s for p in parts), 3),
        )


# (frame, detections); detections None = the change gate found nothing new: reuse the last.
# Motion samples (per decoded frame, 高空抛物) come straight from source threads.
AnalysisItem = tuple[Frame, Detections | None] | MotionSample | None


class AnalysisSink(Protocol):
    """The analysis queue as seen by a producer (it may carry other items too)."""

    def put(self, item: AnalysisItem, block: bool = True, timeout: float | None = None) -> None: ...


class InferenceWorker:
    def __init__(
        self,
        hub: FrameHub,
        detector: Detector | None,
        out: AnalysisSink,
        needs_detection: Callable[[Frame], bool],
        *,
        max_batch: int = 4,
        batch_wait_s: float = 0.01,
    ) -> None:
        self._hub = hub
        self._detector = detector
        self._out = out
        self._needs = needs_detection
        self._max_batch = max_batch
        self._batch_wait_s = batch_wait_s
        self._frames = 0
        self._detected = 0
        self._batches = 0
        self._busy = 0.0
        self._lock = threading.Lock()

    def stats(self) -> InferenceStats:
        with self._lock:
            return InferenceStats(self._frames, self._detected, self._batches, round(self._busy, 3))

    def run(self) -> None:
        """Thread target: runs until the hub is closed and drained, then sends END."""
        try:
            while True:
                batch = self._hub.take_batch(self._max_batch, self._batch_wait_s)
                if batch is None:
                    return
                if batch:
                    self._process(batch)
        finally:
            self._out.put(END)

    def _process(self, batch: list[Frame]) -> None:
        t0 = time.perf_counter()
        # The cameras are released even when the model fails: the hub gives a busy camera's
        # frames to no other worker, which would then wait for them for ever.
        try:
            wanted = [f for f in batch if self._needs(f)]
            results: dict[int, Detections | None] = {id(f): None for f in batch}
            if wanted and self._detector is not None:
                for f, d in zip(wanted, self._detector.detect(wanted), strict=True):
                    results[id(f)] = d
            with self._lock:
                self._frames += len(batch)
                self._detected += len(wanted) if self._detector is not None else 0
                self._batches += 1
                self._busy += time.perf_counter() - t0
            for f in batch:
                self._out.put((f, results[id(f)]))
        finally:
            self._hub.release([f.camera_id for f in batch])
