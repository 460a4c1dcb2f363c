"""Stage 3: multi-object tracking with Roboflow's maintained ByteTrack (``trackers`` package).

The tracker is fed frame *timestamps*, so it stays correct when a camera is sampled at a low or
irregular rate (keyframe-only decoding gives one frame per GOP). Tracker ids are a hint, not
the identity analyzers rely on: parking dwell is associated by place (see
``pipeline.rules.parking``), because ids switch when a detector misses a few frames.
"""

from __future__ import annotations

import warnings

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from pipeline.types import Detections


class ByteTracker:
    """One camera's tracker; reset it when the stream's epoch changes."""

    def __init__(
        self,
        *,
        lost_track_s: float = 10.0,
        activation_threshold: float = 0.3,
        high_conf_threshold: float = 0.3,
        min_iou: float = 0.1,
    ) -> None:
        self._params = (lost_track_s, activation_threshold, high_conf_threshold, min_iou)
        self._tracker = self._make()

    def _make(self) -> ByteTrackTracker:
        lost_s, activation, high, min_iou = self._params
        return ByteTrackTracker(
            lost_track_buffer=max(1, round(lost_s * 30.0)),  # counted in 30 fps frames
            frame_rate=30.0,
            track_activation_threshold=activation,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=high,
        )

    def reset(self) -> None:
        self._tracker = self._make()

    def update(self, detections: Detections, time_s: float) -> Detections:
        """Assign ``track_id`` to detections (order preserved; -1 where unassigned)."""
        if len(detections) == 0:
            sv_in = sv.Detections.empty()
        else:
            sv_in = sv.Detections(
                xyxy=detections.xyxy.astype(np.float32),
                confidence=detections.confidence,
                class_id=detections.class_id,
                data={"index": np.arange(len(detections))},
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            out = self._tracker.update(sv_in, timestamp=time_s)
        ids = np.full((len(detections),), -1, dtype=np.int64)
        if len(out) and out.tracker_id is not None and "index" in out.data:
            ids[np.asarray(out.data["index"], dtype=np.intp)] = np.asarray(out.tracker_id)
        return Detections(
            xyxy=detections.xyxy,
            confidence=detections.confidence,
            class_id=detections.class_id,
            track_id=ids,
        )
