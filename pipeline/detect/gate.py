"""Change gate: skip object detection on frames where nothing changed inside the zones.

Community cameras watch mostly static scenes, and a parked car is by definition unchanged, so
most keyframes of a parking camera look exactly like the one the detector last saw. The gate
compares a small, blurred, brightness-normalised grey thumbnail of the camera's region of
interest (the bounding box of its zones) with the thumbnail of the last *detected* frame (not the
previous frame, so slow changes accumulate until they count). Unchanged → the analysis reuses the
last detections; changed, reconnected, or ``max_skip_s`` since the last detection → detect.

Normalising by the mean makes auto-exposure and slow lighting drift invisible; the thumbnail's
area averaging suppresses sensor noise. Frigate gates its detector with motion for the same
reason; here the reference is the last detection rather than a running background, because the
question is "would the detector now see something different?".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import ZoneConfig
from pipeline.ingest.still import grey_thumbnail, thumbnails_differ, zones_roi
from pipeline.types import Frame


@dataclass(frozen=True, slots=True)
class GateSettings:
    enabled: bool = True
    pixel_delta: float = 12.0  # grey levels (0-255, after normalisation) that count as change
    min_changed_fraction: float = 0.003  # of the region's thumbnail pixels
    max_skip_s: float = 20.0  # detect at least this often even in a still scene


class ChangeGate:
    """Per camera. Called for one frame at a time (the hub keeps one frame per camera in flight)."""

    def __init__(self, settings: GateSettings, zones: Sequence[ZoneConfig]) -> None:
        self.s = settings
        self._roi = zones_roi(zones)
        self._ref: NDArray[np.float32] | None = None
        self._ref_time = 0.0
        self._epoch = -1
        self.detected = 0
        self.skipped = 0

    def thumbnail(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        return grey_thumbnail(image, self._roi)

    def should_detect(self, frame: Frame) -> bool:
        """True when the detector must look at this frame; records it as the new reference."""
        if not self.s.enabled:
            return True
        thumb = self.thumbnail(frame.image)
        changed = (
            self._ref is None
            or frame.epoch != self._epoch
            or frame.time_s - self._ref_time >= self.s.max_skip_s
            or thumbnails_differ(thumb, self._ref, self.s.pixel_delta, self.s.min_changed_fraction)
        )
        if changed:
            self._ref, self._ref_time, self._epoch = thumb, frame.time_s, frame.epoch
            self.detected += 1
        else:
            self.skipped += 1
        return changed
