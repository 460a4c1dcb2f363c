"""What every analyzer offers the camera pipeline, plus small shared helpers."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import ZoneConfig, ZoneKind
from pipeline.detect.detector import OnnxScorer
from pipeline.detect.plate_lookups import PlateService
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.rules.motion import MotionNeeds
from pipeline.types import Box, DecodeMode, Detections, Event, EventNotice, Frame, MotionSample

if TYPE_CHECKING:
    from pipeline.config import CameraConfig, EvidenceConfig, SiteConfig

R = TypeVar("R")  # a rule's config model
D = TypeVar("D")  # its events' details

IdFactory = Callable[[float], str]


def new_event_id(time_s: float) -> str:
    """Time-ordered unique id: 12 hex digits of milliseconds, then 20 random hex digits."""
    return f"{int(time_s * 1000):012x}{secrets.token_hex(10)}"


def watched_zones(
    zones: Sequence[ZoneConfig], kinds: Collection[ZoneKind], rule_zones: Collection[str] | None
) -> list[ZoneConfig]:
    """The zones of the given kinds a rule watches (its ``zones`` list, or all of them)."""
    return [z for z in zones if z.kind in kinds and (rule_zones is None or z.id in rule_zones)]


def read_rule_image(path: Path, camera_id: str, rule_id: str, field: str) -> NDArray[np.uint8]:
    """A BGR image named by a rule (reference picture); a clear config error if unreadable."""
    image = cv2.imread(str(path))
    if image is None:
        where = f"camera {camera_id!r} → rules.{rule_id}.{field}"
        raise ConfigError([ConfigIssue(where, f"cannot read image {path}")])
    return np.asarray(image, np.uint8)


class Analyzer(Protocol):
    """One rule on one camera. Owned by the analysis thread: no locks inside.

    Attributes:
        rule_id: the rule's id from ``cameras.toml`` (unique per camera).
        classes: COCO class ids it needs from the detector (empty: needs no detector).
        decode_mode: the cheapest decoding that still serves it.
        motion, clean_pictures: see below.
    """

    rule_id: str
    classes: frozenset[int]
    decode_mode: DecodeMode
    # per-frame motion it needs from the source thread (None: none)
    motion: MotionNeeds | None
    # whether it looks at the decoded pictures themselves (detectors, appearance); when no rule
    # of a camera does, its decoder may skip the deblocking filter
    clean_pictures: bool

    @property
    def max_frame_gap_s(self) -> float:
        """The longest gap between analysed frames it works with (math.inf: any): a still
        scene's keyframes are decoded no further apart (``pipeline.ingest.still``)."""
        ...

    @property
    def timer_due_s(self) -> float:
        """The earliest frame time at which a timer may raise an alert or end an event without
        the scene changing (a stay's dwell running out; a stay's vehicle unseen, its gap
        running): a still scene's keyframes are all decoded from an interval before it, so the
        alert or the end comes on time. -math.inf: now; math.inf: no timer."""
        ...

    def observe(self, frame: Frame, detections: Detections) -> list[EventNotice]:
        """Consume one frame (time-ordered) and its detections; return event changes."""
        ...

    def observe_motion(self, sample: MotionSample) -> list[EventNotice]:
        """Consume the motion of one decoded frame (only analyzers that asked for motion)."""
        ...

    def close(self, time_s: float, reason: str) -> list[EventNotice]:
        """End every open event (stream ended, shutdown); drop all state."""
        ...


def box_area(a: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), np.float32)


def intersection_matrix(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """(len(a), len(b)) intersection areas of xyxy boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.asarray(np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None), np.float32)


def iou_matrix(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """(len(a), len(b)) IoU of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    inter = intersection_matrix(a, b)
    area_a = box_area(a)
    area_b = box_area(b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(inter / np.maximum(union, 1e-6), dtype=np.float32)


def to_rel(box: NDArray[np.float32], size: tuple[int, int]) -> Box:
    w, h = size
    return (
        round(float(box[0]) / w, 5),
        round(float(box[1]) / h, 5),
        round(float(box[2]) / w, 5),
        round(float(box[3]) / h, 5),
    )


# (clip path, details, clip start time, camera id, time zone) → (picture, its time) or None
Composite = Callable[[str, D, float, str, ZoneInfo], "tuple[NDArray[np.uint8], float] | None"]


@dataclass(frozen=True, slots=True)
class SharedModels:
    """Models loaded once per process and shared by every camera's rules; None: not loaded
    (no rule needs it, or its file is absent where it is optional)."""

    bins: OnnxScorer | None = None  # 垃圾满溢 classifier
    plates: PlateService | None = None  # 车牌识别


@dataclass(frozen=True, slots=True)
class RuleKind(Generic[R, D]):
    """Everything the rest of the system needs to know about one incident rule; each rule
    module defines one (``KIND``) and ``pipeline.rules.registry`` lists them.

    ``draw``: the annotated snapshot ``name`` ("alert", "first", "end", …) of an event.
    ``end_snapshot``: the name of the picture taken when an event ends.
    ``composite``: a picture made from the finished clip (高空抛物: the whole fall)."""

    analyzer: str  # the rule's ``analyzer`` value in cameras.toml
    config: type[R]
    details: type[D]
    build: Callable[[CameraConfig, R, SiteConfig, EvidenceConfig, SharedModels], Analyzer]
    summary: Callable[[Event, D], tuple[str, str]]  # (中文, English) one-line summaries
    detection: Callable[[D, ZoneInfo], dict[str, Any]]  # this rule's part of report.detection
    draw: Callable[[Snapshot, D], NDArray[np.uint8]]
    profile: str = "keyframes"  # capacity planning profile (pipeline.ops.capacity)
    end_snapshot: str = "end"
    composite: Composite[D] | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A picture to annotate for an event's evidence."""

    image: NDArray[np.uint8]
    name: str
    camera: CameraConfig
    zone: ZoneConfig | None
    caption: str


BOX_COLOR = (0, 0, 255)  # the object now (BGR)
FIRST_COLOR = (255, 160, 0)  # where it was first seen


def annotate_snapshot(
    snap: Snapshot,
    boxes: Sequence[tuple[Box, tuple[int, int, int], str]] = (),
    regions: tuple[tuple[tuple[float, float], ...], ...] = (),
    caption: str | None = None,
) -> NDArray[np.uint8]:
    """The zone, ``boxes`` and ``regions`` drawn, with the caption (the common snapshot)."""
    from pipeline.evidence.overlay import annotate

    polygon = snap.zone.polygon if snap.zone else None
    return annotate(snap.image, polygon, list(boxes), caption or snap.caption, regions)
