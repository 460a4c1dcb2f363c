"""Core types that cross stage boundaries.

Everything here is a frozen dataclass or a StrEnum: no I/O, no dicts of Any. Coordinates are
pixels of the *analysis image* (``Frame.image``) unless a name ends in ``_rel`` (0-1 of the
frame). Times are seconds; ``time_s`` is UTC epoch seconds derived from the stream's
presentation timestamps (see ``pipeline.ingest.source``), ``pts_s`` is stream time within one epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

Box = tuple[float, float, float, float]


class EventType(StrEnum):
    """Stable event-type enum of the event-report schema (report field ``event_type``)."""

    HIGH_ALTITUDE_THROWING = "high_altitude_throwing"
    ROAD_OCCUPATION_VENDING = "road_occupation_vending"
    UNLICENSED_MOBILE_VENDING = "unlicensed_mobile_vending"
    SHOP_FRONT_SPILLOVER = "shop_front_spillover"
    BIN_OVERFLOW = "bin_overflow"
    EXPOSED_GARBAGE = "exposed_garbage"
    ACCUMULATED_GARBAGE = "accumulated_garbage"
    ILLEGAL_PARKING_MOTOR = "illegal_parking_motor"
    ILLEGAL_PARKING_NON_MOTOR = "illegal_parking_non_motor"
    FIRE_LANE_OCCUPATION = "fire_lane_occupation"
    CAMERA_OFFLINE = "camera_offline"
    CAMERA_TAMPER = "camera_tamper"


class EventState(StrEnum):
    """Detection lifecycle of one event (the case lifecycle is a separate, later layer)."""

    STARTED = "started"
    UPDATED = "updated"
    ENDED = "ended"


class HealthState(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    STALLED = "stalled"
    OFFLINE = "offline"
    DISABLED = "disabled"


class DecodeMode(StrEnum):
    """How much of a stream is decoded; chosen per camera from its analyzers."""

    KEYFRAMES = "keyframes"  # only I-frames go to the decoder (~0.02 core per 1080p25 camera)
    SAMPLED = "sampled"  # every frame decoded, converted to arrays at ``sample_fps``
    FULL = "full"  # every frame decoded and converted


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded, sampled image of one camera.

    Attributes:
        camera_id: camera that produced it.
        seq: per-camera counter of frames handed downstream; gaps mean drops.
        epoch: increments on every (re)connect; state tied to the stream resets on change.
        pts_s: stream presentation time in seconds within the epoch (for physics).
        time_s: UTC epoch seconds of the frame (stream time anchored to the wall clock once per
            epoch, or to a given start time for recorded files).
        image: (H, W, 3) uint8 BGR at analysis resolution, read-only.
        native_size: (width, height) of the stream's pictures as shown (upright, square pixels).
        is_keyframe: whether the frame was an I-frame.
        recovered: a keyframe skipped in a still scene and decoded after a later one showed
            a change (``pipeline.ingest.still``): analysed a GOP or more after its time, so
            analyzers date things by it but raise no alert on it (the current frame follows).
    """

    camera_id: str
    seq: int
    epoch: int
    pts_s: float
    time_s: float
    image: NDArray[np.uint8]
    native_size: tuple[int, int]
    is_keyframe: bool
    recovered: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of ``image``."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def _empty_f32(n: int, cols: int = 0) -> NDArray[np.float32]:
    return np.zeros((n, cols) if cols else (n,), dtype=np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Detections of one frame as a struct of arrays.

    Attributes:
        xyxy: (N, 4) float32 boxes ``[x1, y1, x2, y2]`` in analysis-image pixels.
        confidence: (N,) float32 scores in 0-1.
        class_id: (N,) int32 COCO class ids.
        track_id: (N,) int64 tracker ids, -1 where the tracker has not confirmed a track.
    """

    xyxy: NDArray[np.float32]
    confidence: NDArray[np.float32]
    class_id: NDArray[np.int32]
    track_id: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))

    def __post_init__(self) -> None:
        n = self.xyxy.shape[0]
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        if self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(
                f"confidence/class_id must have shape ({n},), got "
                f"{self.confidence.shape} and {self.class_id.shape}"
            )
        if self.track_id.shape == (0,) and n:
            object.__setattr__(self, "track_id", np.full((n,), -1, dtype=np.int64))
        elif self.track_id.shape != (n,):
            raise ValueError(f"track_id must have shape ({n},), got {self.track_id.shape}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=_empty_f32(0, 4),
            confidence=_empty_f32(0),
            class_id=np.zeros((0,), dtype=np.int32),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def select(self, index: NDArray[np.bool_] | NDArray[np.intp]) -> Detections:
        """Subset by boolean mask or integer indices."""
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            track_id=self.track_id[index],
        )

    def anchors(self, anchor: str = "bottom_center") -> NDArray[np.float32]:
        """(N, 2) reference points: ``bottom_center`` (ground contact) or ``center``."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        y = (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2 if anchor == "center" else self.xyxy[:, 3]
        return np.stack([x, y], axis=1).astype(np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class Blobs:
    """Moving blobs of one frame, in full-resolution image pixels (struct of arrays).

    Attributes:
        xy: (N, 2) float32 centroids.
        area: (N,) float32 areas in full-resolution pixels.
        bbox: (N, 4) float32 boxes xyxy.
        contrast: (N,) float32 mean absolute difference inside the blob (grey levels).
        activity: (N,) float32 how often the blob's neighbourhood moved over the last
            minutes (0-1: foliage, flags, water), or None where it was not measured.
    """

    xy: NDArray[np.float32]
    area: NDArray[np.float32]
    bbox: NDArray[np.float32]
    contrast: NDArray[np.float32]
    activity: NDArray[np.float32] | None = None

    @classmethod
    def empty(cls) -> Blobs:
        z = np.zeros((0,), np.float32)
        return cls(np.zeros((0, 2), np.float32), z, np.zeros((0, 4), np.float32), z, z)

    def __len__(self) -> int:
        return int(self.xy.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class MotionSample:
    """Motion of one frame of one camera (what the throwing analyzer consumes)."""

    camera_id: str
    seq: int
    epoch: int
    pts_s: float
    time_s: float
    blobs: Blobs
    global_change: bool  # too much of the region changed at once: no blobs reported
    changed_fraction: float
    size: tuple[int, int]  # (width, height) of the full-resolution frame


@dataclass(frozen=True, slots=True)
class CameraStatusDetails:
    """An outage of one camera: started when it went offline, ended when frames came back."""

    reason: str
    reconnects: int
    epoch: int


@dataclass(frozen=True, slots=True)
class CameraViewDetails:
    """A camera turned, covered or defocused (``pipeline.rules.integrity``): its view against
    the reference taken at ``reference_time_s``."""

    kind: str  # "moved" | "occluded" | "defocused"
    match: float  # share of the reference's edges found in place (0-1)
    detail: float  # gradient energy / reference's
    sharpness: float  # relative Laplacian energy / reference's
    shift: float  # global shift of the view against the reference, share of its width
    reference_time_s: float
    end_reason: str | None = None  # "confirmed" (new reference), "restored", "shutdown", …


@dataclass(frozen=True, slots=True)
class RuleDetails:
    """What a rule's events carry: each rule's own frozen dataclass, defined in its module
    (``pipeline.rules.<rule>``), extends this; ``pipeline.rules.registry`` maps it back to the
    rule that reports and draws it."""


EventDetails = RuleDetails | CameraStatusDetails | CameraViewDetails


@dataclass(frozen=True, slots=True)
class Event:
    """One real-world incident as seen by an analyzer.

    ``started_at`` is when the situation began (vehicle first seen), ``alerted_at`` when the
    rule was satisfied (event raised), ``updated_at`` the latest observation, ``ended_at`` when
    it was over. All are UTC epoch seconds from frame time.
    """

    event_id: str
    event_type: EventType
    state: EventState
    camera_id: str
    zone_id: str | None
    rule_id: str | None
    started_at: float
    alerted_at: float
    updated_at: float
    ended_at: float | None
    score: float
    details: EventDetails
    stream_offset_s: float | None = None  # alerted_at in stream time (replay reports)


@dataclass(frozen=True, slots=True, eq=False)
class EventNotice:
    """An event state change plus the images the evidence writer needs for it.

    Attributes:
        event: the event after the change.
        frame: frame at which the change was observed (snapshot source), if any.
        first_evidence_jpeg: JPEG bytes of the earliest confirming frame (parking: the frame that
            first showed the vehicle standing still), taken by the analyzer when it happened.
        first_evidence_time_s: frame time of ``first_evidence_jpeg``.
    """

    event: Event
    frame: Frame | None = None
    first_evidence_jpeg: bytes | None = None
    first_evidence_time_s: float | None = None


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """Health snapshot of one camera, as reported by its source."""

    camera_id: str
    state: HealthState
    epoch: int
    decode_mode: DecodeMode
    fps_in: float  # packets per second demuxed, over the last few seconds
    fps_out: float  # frames per second handed downstream
    frames_decoded: int
    frames_out: int
    drops: int  # frames dropped because downstream was busy
    reconnects: int
    keyframe_interval_s: float | None
    last_frame_time_s: float | None
    state_since_s: float
    last_error: str | None
    # where its pictures are decoded: "cpu", a hardware device type ("cuda"), or "cpu (why the
    # device asked for is not used)"
    decoder: str = "cpu"


@dataclass(frozen=True, slots=True)
class HealthChange:
    at: float  # wall-clock seconds
    state: HealthState
    reason: str | None


@dataclass(frozen=True, slots=True)
class CameraChanges:
    """What a live reconfiguration did, by camera id."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]

    @classmethod
    def between(cls, current: Mapping[str, object], wanted: Mapping[str, object]) -> CameraChanges:
        """Compare two camera configurations by id (values compared with ``==``)."""
        both = current.keys() & wanted.keys()
        return cls(
            added=tuple(sorted(wanted.keys() - current.keys())),
            removed=tuple(sorted(current.keys() - wanted.keys())),
            updated=tuple(sorted(c for c in both if wanted[c] != current[c])),
            unchanged=tuple(sorted(c for c in both if wanted[c] == current[c])),
        )
