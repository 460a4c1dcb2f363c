"""违章停车: vehicles standing in no_parking / fire_lane zones longer than allowed.

The unit of reasoning is a *stay*: one vehicle standing at one place. A stay is anchored to a
reference box (the median of its recent matched boxes), and detections are associated to stays
by overlap with that reference, not by tracker id. That is what keeps the dwell of a parked car
when the tracker loses it behind a passing bus and re-finds it under a new id, and what stops box
jitter or a lighting change from restarting the clock. Tracker ids are only recorded (and used to
retire candidates that turn out to be moving cars).

Lifecycle of a stay:

1. *candidate*: a vehicle detection inside a watched zone that matches no stay, or (the
   class-agnostic path, ``static_objects``) a static object there: something that has stood
   ``static_settle_s`` and is not part of the empty scene (``pipeline.rules.occupancy``), at
   least ``min_static_area`` of the frame, that a detector box of *any* class matches in place
   and size or whose ground footprint is vehicle-sized (zones with ``size_m``). COCO detectors
   call cars seen from above "cell phone" or nothing at all; this path does not care what they
   call it, only that something vehicle-sized stands there. Such a stay is dated back by
   ``static_settle_s``; the report says which evidence started it and what supported it.
2. *confirmed*: seen standing (IoU ≥ ``stationary_iou`` with the reference) at least twice,
   ``confirm_s`` apart. The confirming frame is kept as JPEG: the first photo of the evidence.
3. *alerted*: dwell inside the rule's schedule ≥ ``min_dwell_s`` and the spot is not cooling
   down after an earlier event → one STARTED event, then UPDATED at most every
   ``update_interval_s`` while it lasts.
4. *ended*: not seen standing at its place for ``max_gap_s`` → ENDED at the last time it was.
   The spot then cools down for ``cooldown_s``: a new stay there alerts no earlier than that
   and links to the previous event (no alert storm from a car that shuffles or is hidden long).

车牌 (``read_plates``): the plate is read once the stay has half its dwell, then every
``_PLATE_RETRY_S``, doubling, until read (at most ``_PLATE_TRIES`` looks without a read: a
plate turned away or hidden stays so), then once per ``update_interval_s``; the text most often read
(grammar-valid reads only) goes into the report. The plate tells cars apart where boxes cannot:
a different plate read twice running at a standing stay means another car took the spot between
two looks (the stay ends "replaced" and a new one starts, its dwell from zero), and a new stay
at a cooling-down spot with a different plate is a different car (no cooldown, no link), while
the same plate is linked as the same vehicle back again.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from statistics import median
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy.optimize import linear_sum_assignment

from pipeline.config_base import ID_PATTERN, RuleBase, ScheduleWindow, ZoneConfig, ZoneKind
from pipeline.detect.detector import COCO_IDS, COCO_NAMES
from pipeline.detect.plate_lookups import PlateLookups
from pipeline.detect.plates import HINT_CONFIDENCE, PlateRead
from pipeline.evidence.labels import CLASS_ZH, ZONE_KIND_ZH
from pipeline.rules.base import (
    BOX_COLOR,
    FIRST_COLOR,
    IdFactory,
    RuleKind,
    SharedModels,
    Snapshot,
    annotate_snapshot,
    box_area,
    intersection_matrix,
    iou_matrix,
    new_event_id,
    to_rel,
    watched_zones,
)
from pipeline.rules.ground import GroundPlane
from pipeline.rules.motion import MotionNeeds
from pipeline.rules.occupancy import StaticBlob, StaticForeground
from pipeline.rules.schedule import Schedule
from pipeline.rules.zones import Zone, ZoneSet
from pipeline.types import (
    Box,
    DecodeMode,
    Detections,
    Event,
    EventNotice,
    EventState,
    EventType,
    Frame,
    MotionSample,
    RuleDetails,
)

if TYPE_CHECKING:
    from pipeline.config import CameraConfig, EvidenceConfig, SiteConfig

logger = logging.getLogger(__name__)

NON_MOTOR = frozenset({"bicycle"})
# A confirmed stay keeps matching down to this fraction of stationary_iou (hysteresis): a parked
# car whose box wobbles stays the same stay, a car that drives off does not.
_KEEP_FRACTION = 0.5
_REF_HISTORY = 9
_COOLDOWN_IOU = 0.3
_SAME_VEHICLE_IOU = 0.7
# A standing vehicle's ground point moves less than this fraction of its box size between
# observations. Overlap alone is fooled by boxes cut off at the image edge: a car driving in from
# the edge keeps a high IoU with its own truncated box while it is still moving.
_MAX_ANCHOR_SHIFT = 0.15
_PERSON = COCO_IDS["person"]
# A detector box is a static object's when this much of the box lies in the object's box and
# it covers this much of it (the object's box also holds its shadow, and seen obliquely the
# ground it hides, so plain overlap would miss most matches).
_BOX_IN_OBJECT = 0.6
_BOX_COVERS_OBJECT = 0.3
# Ground footprint (long, short side, metres) of a vehicle: a car is ≈ 4.5 × 1.8 m, a bus
# 12 × 2.5 m; seen obliquely the body's height adds up to about its own length to one side.
_VEHICLE_LONG_M = (2.5, 16.0)
_VEHICLE_SHORT_M = (1.2, 5.0)
_VEHICLE_AREA_M2 = 3.0
# A still scene's keyframes are decoded at most min_dwell_s / this apart (Analyzer.max_frame_gap_s).
_STILL_DWELL_SHARE = 3.0
# A static object's stay is dated back to its arrival, at most this many static_settle_s.
_MAX_BACKDATE = 10.0
UNKNOWN_VEHICLE = "vehicle"
_PLATE_RETRY_S = 20.0
_THUMB_WIDTH = 192
_PLATE_TRIES = 5
# A read of another plate this sure, twice running, means another car stands there now: as
# sure as a read taken at the plate's known place without a search (the same bar for both).
_RIVAL_CONFIDENCE = HINT_CONFIDENCE


# -- configuration (cameras.toml ``[[cameras.rules]]`` with analyzer = "illegal_parking")

PARKING_ZONE_KINDS = frozenset({ZoneKind.NO_PARKING, ZoneKind.FIRE_LANE})

VehicleClass = Literal["car", "bus", "truck", "motorcycle", "bicycle"]


def _default_vehicles() -> list[VehicleClass]:
    return ["car", "bus", "truck", "motorcycle"]


class ParkingRule(RuleBase):
    """违章停车: a vehicle standing in a no_parking / fire_lane zone for ≥ min_dwell_s."""

    analyzer: Literal["illegal_parking"]
    id: str = Field(default="illegal_parking", pattern=ID_PATTERN)
    # Zones the rule watches; default: every no_parking and fire_lane zone of the camera.
    zones: list[str] | None = None
    vehicles: list[VehicleClass] = Field(default_factory=_default_vehicles, min_length=1)
    min_dwell_s: float = Field(default=180.0, gt=0.0)
    # A stay survives this long without a matching detection (occlusion, detector miss).
    # Raising it bridges longer occlusions but ends events later after the vehicle left.
    max_gap_s: float = Field(default=30.0, gt=0.0)
    # After an event at a spot ended, a new stay there may alert only this much later.
    cooldown_s: float = Field(default=300.0, ge=0.0)
    # Minimum time between UPDATED notices of one event.
    update_interval_s: float = Field(default=60.0, gt=0.0)
    min_confidence: float = Field(default=0.3, ge=0.0, le=1.0)
    # IoU with the stay's reference box above which a detection is "the same vehicle, still
    # standing there". Lowering it tolerates more box jitter but merges neighbours.
    stationary_iou: float = Field(default=0.6, gt=0.0, le=1.0)
    # A stay needs this long of consistent observations before it counts as stationary.
    confirm_s: float = Field(default=10.0, ge=0.0)
    anchor: Literal["bottom_center", "center"] = "bottom_center"
    schedule: list[ScheduleWindow] = Field(default_factory=list)  # empty: always enforced
    # Stays may also start from a still object that the detector does not call a vehicle (COCO
    # models call a car seen from above "cell phone"): static foreground covering at least
    # ``min_static_area`` of the frame, confirmed by a detector box of any class but person
    # (confidence ≥ any_class_confidence) at its place and size, or by a vehicle-sized ground
    # footprint where the zone has size_m. Off: only vehicle detections start stays.
    static_objects: bool = True
    # An object becomes static foreground after standing this long; its stay is dated back by it.
    static_settle_s: float = Field(default=20.0, gt=0.0, le=600.0)
    min_static_area: float = Field(default=0.003, gt=0.0, lt=1.0)
    any_class_confidence: float = Field(default=0.1, ge=0.0, le=1.0)
    # 车牌识别 on the stay's best frames (confirmation, alert, updates): the plate goes into the
    # report and tells the same vehicle from another one taking its place.
    read_plates: bool = True

    ZONE_KINDS: ClassVar[frozenset[ZoneKind]] = PARKING_ZONE_KINDS

    def zone_ids(self) -> list[str] | None:
        return self.zones

    def shared_models(self) -> frozenset[str]:
        return frozenset({"plates"}) if self.read_plates else frozenset()


# -- what its events carry


@dataclass(frozen=True, slots=True)
class PlateDetails:
    """The licence plate read during a parking stay (the reading most often made)."""

    text: str  # e.g. "苏ED51712" (no separator)
    confidence: float  # the recogniser's mean character probability of the best such read
    colour: str | None  # "blue" | "green" | "yellow"
    reads: int  # reads that gave this text
    attempts: int  # looks at the plate during the stay
    width_px: float  # plate width in the analysed image at the best read


@dataclass(frozen=True, slots=True)
class ParkingDetails(RuleDetails):
    """What the illegal-parking analyzer observed for one stay of one vehicle."""

    zone_kind: str
    class_name: str
    vehicle_group: str  # "motor" or "non_motor"
    box_rel: Box  # latest box, relative to the frame
    first_box_rel: Box  # box when the stay was first seen
    dwell_s: float  # time since first seen (gaps up to max_gap_s included)
    enforced_dwell_s: float  # part of the dwell inside the rule's schedule
    min_dwell_s: float
    confidence: float  # mean detector confidence over the stay
    observations: int  # frames in which the vehicle was matched
    track_ids: tuple[int, ...]  # every tracker id the stay was matched under
    previous_event_id: str | None = None  # an earlier event at the same spot within cooldown
    end_reason: str | None = None  # "left", "end_of_stream", "camera_offline", "shutdown"
    # What started the stay: "vehicle_detection" or "static_object" (class-agnostic path).
    started_by: str = "vehicle_detection"
    # Everything that supports it, e.g. ("vehicle_detection:car×12", "static_object×8",
    # "detector_box:cell phone×5", "ground_footprint:4.6×1.9m").
    evidence: tuple[str, ...] = ()
    footprint_m: tuple[float, float] | None = None  # (long, short) side on the ground, median
    plate: PlateDetails | None = None  # 车牌, when read
    # At a spot where an event ended within cooldown: True when both plates were read and are
    # the same (that vehicle is back); None when unknown. Different plates never link.
    same_vehicle_as_previous: bool | None = None


def _same_object(obj: NDArray[np.float32], boxes: NDArray[np.float32]) -> int:
    """Index of the box that is the object's (see _BOX_IN_OBJECT), the most overlapping; -1."""
    if not len(boxes):
        return -1
    inter = intersection_matrix(obj[None], boxes)[0]
    area = np.maximum(box_area(boxes), 1e-6)
    obj_area = max(float(box_area(obj[None])[0]), 1e-6)
    ok = (inter >= _BOX_IN_OBJECT * area) & (inter >= _BOX_COVERS_OBJECT * obj_area)
    if not ok.any():
        return -1
    return int(np.argmax(np.where(ok, inter, -1.0)))


def vehicle_sized(footprint: tuple[float, float] | None) -> bool:
    if footprint is None:
        return False
    long, short = footprint
    return (
        _VEHICLE_LONG_M[0] <= long <= _VEHICLE_LONG_M[1]
        and _VEHICLE_SHORT_M[0] <= short <= _VEHICLE_SHORT_M[1]
        and long * short >= _VEHICLE_AREA_M2
    )


@dataclass(frozen=True, slots=True)
class _Blob:
    """A static object offered to the stays, with what supports it being a vehicle."""

    box: NDArray[np.float32]
    any_class: int  # COCO id of the detector box matching it, -1 if none
    confidence: float  # that box's confidence, 0 if none
    arrived_s: float  # when it arrived (NaN: not known)
    centre: NDArray[np.float32]  # median of its pixels
    footprint: tuple[float, float] | None

    @property
    def vehicle_like(self) -> bool:
        return self.any_class >= 0 or vehicle_sized(self.footprint)


def _still(ref: NDArray[np.float32], box: NDArray[np.float32], min_iou: float) -> bool:
    """Standing where it stood: enough overlap and a ground point that has not moved."""
    if float(iou_matrix(ref[None], box[None])[0, 0]) < min_iou:
        return False
    size = float(np.sqrt(max((ref[2] - ref[0]) * (ref[3] - ref[1]), 1.0)))
    shift = float(np.hypot((box[0] + box[2] - ref[0] - ref[2]) / 2, box[3] - ref[3]))
    return shift <= _MAX_ANCHOR_SHIFT * size


@dataclass
class _Stay:
    """Mutable per-vehicle state; owned by the analysis thread."""

    stay_id: int
    zone_id: str
    zone_kind: ZoneKind
    boxes: deque[NDArray[np.float32]]
    first_seen_s: float
    last_still_s: float
    last_obs_s: float
    first_box: NDArray[np.float32]
    observations: int = 1
    conf_sum: float = 0.0
    classes: Counter[int] = field(default_factory=Counter)
    track_ids: set[int] = field(default_factory=set)
    confirmed: bool = False
    enforced_s: float = 0.0
    first_jpeg: bytes | None = None
    first_jpeg_time_s: float | None = None
    event_id: str | None = None
    alerted_at: float = 0.0
    last_emit_s: float = 0.0
    previous_event_id: str | None = None
    blocked_until_s: float = 0.0
    started_by: str = "vehicle_detection"
    static_obs: int = 0
    any_classes: Counter[int] = field(default_factory=Counter)
    footprints: list[tuple[float, float]] = field(default_factory=list)
    plate_votes: Counter[str] = field(default_factory=Counter)
    plate_best: dict[str, PlateRead] = field(default_factory=dict)
    plate_attempts: int = 0
    plate_read_s: float | None = None
    plate_pending: bool = False  # asked, answer not in yet
    rival: PlateRead | None = None
    same_vehicle: bool | None = None

    @property
    def plate(self) -> PlateRead | None:
        """The plate most often read (ties: the surest read)."""
        if not self.plate_votes:
            return None
        text = max(self.plate_votes, key=lambda p: (self.plate_votes[p],
                                                    self.plate_best[p].confidence))  # fmt: skip
        return self.plate_best[text]

    @property
    def ref_box(self) -> NDArray[np.float32]:
        return np.median(np.stack(self.boxes), axis=0).astype(np.float32)

    @property
    def class_name(self) -> str:
        """The vehicle class it was most often detected as; "vehicle" if never named one."""
        if not self.classes:
            return UNKNOWN_VEHICLE
        return COCO_NAMES[self.classes.most_common(1)[0][0]]

    @property
    def footprint(self) -> tuple[float, float] | None:
        if not self.footprints:
            return None
        return (
            round(median(f[0] for f in self.footprints), 2),
            round(median(f[1] for f in self.footprints), 2),
        )

    def evidence(self) -> tuple[str, ...]:
        items = [f"vehicle_detection:{COCO_NAMES[c]}×{n}" for c, n in self.classes.most_common()]
        if self.static_obs:
            items.append(f"static_object×{self.static_obs}")
        items += [f"detector_box:{COCO_NAMES[c]}×{n}" for c, n in self.any_classes.most_common()]
        if (fp := self.footprint) is not None:
            items.append(f"ground_footprint:{fp[0]:.1f}×{fp[1]:.1f}m")
        return tuple(items)


@dataclass(frozen=True, slots=True)
class _Ended:
    zone_id: str
    box: NDArray[np.float32]
    ended_at: float
    event_id: str
    plate: str | None


class ParkingAnalyzer:
    """Illegal-parking rule for one camera (see module docstring)."""

    decode_mode = DecodeMode.KEYFRAMES
    motion: MotionNeeds | None = None
    clean_pictures = True

    def __init__(
        self,
        camera_id: str,
        rule: ParkingRule,
        zones: list[ZoneConfig],
        timezone: str,
        *,
        jpeg_quality: int = 85,
        new_id: IdFactory = new_event_id,
        plates: PlateLookups | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.rule = rule
        # two looks inside max_gap_s: one missed detection does not end a stay; and a still
        # scene's keyframes no sparser than a third of the dwell: an arrival is noticed up to
        # that much late (dated right by the recovered keyframe), and its detection, plate
        # reading and first photo must be long done when the alert is due (the burst
        # throughput trial with a 5 s dwell: noticed 2 s before every camera's alert instead
        # of 4, the latency bound missed at 48 cameras against 56; README "Still-scene decoding")
        self.max_frame_gap_s = min(rule.max_gap_s / 2, rule.min_dwell_s / _STILL_DWELL_SHARE)
        self.rule_id = rule.id
        watched = watched_zones(zones, PARKING_ZONE_KINDS, rule.zones)
        self._zones = ZoneSet(watched)
        self._zone_cfg = {z.id: z for z in watched}
        self._schedule = Schedule(rule.schedule, timezone)
        self._vehicle_ids = frozenset(COCO_IDS[v] for v in rule.vehicles)
        self._background: StaticForeground | None = None
        self._grounds: dict[str, GroundPlane] = {}
        if rule.static_objects:
            # a car spans tens of thumbnail pixels even at 192 across the zones (vending's 320
            # is for crates): a third of the cost
            self._background = StaticForeground(
                watched, recent_s=rule.static_settle_s, thumb_width=_THUMB_WIDTH
            )
            self._grounds = {z.id: g for z in watched if (g := GroundPlane.of_zone(z)) is not None}
        # Every class: any detector box may confirm a static object.
        self.classes = (
            frozenset(range(len(COCO_NAMES))) if rule.static_objects else self._vehicle_ids
        )
        self._jpeg_quality = jpeg_quality
        self._new_id = new_id
        self._plates = plates
        self._stays: list[_Stay] = []
        self._ended: list[_Ended] = []
        self._next_stay = 0
        self._last_frame_s: float | None = None
        self._frame_size = (1, 1)

    # -- public ---------------------------------------------------------------------------

    def observe(self, frame: Frame, detections: Detections) -> list[EventNotice]:
        t = frame.time_s
        notices: list[EventNotice] = []
        gap = t - self._last_frame_s if self._last_frame_s is not None else 0.0
        self._last_frame_s = t
        self._frame_size = frame.size
        if gap > self.rule.max_gap_s:
            # No frames for longer than a stay may go unseen (camera outage): what stands there
            # now cannot be proven to be the same vehicle, so every stay ends here.
            for stay in self._stays:
                notices.extend(self._end(stay, "camera_gap", frame))
            self._stays = []

        dets = self._vehicles(detections)
        zones = self._zones.for_size(*frame.size)
        blobs: dict[int, _Blob] = {}
        static_hits: dict[int, float] = {}  # vehicle detections that are static objects too
        if self._background is not None:
            dets, blobs, static_hits = self._with_static(frame, detections, dets, zones)
        matched_stays, matched_dets = self._associate(dets)

        taken: set[int] = set()
        dropped: set[int] = set()
        for si, di in zip(matched_stays, matched_dets, strict=True):
            stay = self._stays[si]
            floor = self.rule.stationary_iou * (_KEEP_FRACTION if stay.confirmed else 1.0)
            if _still(stay.ref_box, dets.xyxy[di], floor):
                self._update_stay(stay, dets, di, frame, t)
                self._add_static(stay, blobs.get(di), di in static_hits)
                taken.add(di)
            elif not stay.confirmed:
                dropped.add(si)  # a candidate still moving: it restarts where it is now
            # else: a standing vehicle seen moving; it is not refreshed, and the detection is
            # free to start a new stay where the vehicle settles
        self._stays = [st for i, st in enumerate(self._stays) if i not in dropped]
        unmatched = [d for d in range(len(dets)) if d not in taken]
        moved_tracks = {int(dets.track_id[d]) for d in unmatched} - {-1}

        # Retire stays that have not been seen standing at their place for max_gap_s, and
        # candidates whose vehicle was just seen elsewhere under the same track id (it drove on).
        alive: list[_Stay] = []
        for stay in self._stays:
            lost = t - stay.last_still_s > self.rule.max_gap_s
            drove_on = not stay.confirmed and bool(stay.track_ids & moved_tracks)
            if lost or (drove_on and stay.last_obs_s < t):
                notices.extend(self._end(stay, "left", frame))
            else:
                alive.append(stay)
        self._stays = alive

        # New candidates: unmatched vehicles whose anchor is inside a watched zone.
        if unmatched:
            anchors = dets.select(np.array(unmatched, dtype=np.intp)).anchors(self.rule.anchor)
            for k, d in enumerate(unmatched):
                if d in blobs:  # a static object's box holds its shadow too: take its middle
                    anchors[k] = blobs[d].centre
            for d, zone_id in zip(unmatched, self._zone_of(anchors, zones), strict=True):
                blob = blobs.get(d)
                if zone_id is None or (blob is not None and not blob.vehicle_like):
                    continue
                if blob is None and self._inside_a_stay(dets, d):
                    continue
                stay = self._new_stay(dets, d, zone_id, t)
                if blob is not None:
                    stay.started_by = "static_object"
                if blob is not None or d in static_hits:
                    # A static object arrived when its pixels began to differ (it may have
                    # stood, unconfirmed or unnamed, for a while before a detector box named
                    # it), and has stood static_settle_s at least: that is how it became static.
                    arrived = blob.arrived_s if blob is not None else static_hits[d]
                    settle = self.rule.static_settle_s
                    stood = t - arrived if np.isfinite(arrived) else settle
                    stood = float(np.clip(stood, settle, _MAX_BACKDATE * settle))
                    stay.first_seen_s = t - stood
                    if self._schedule.active(t):
                        stay.enforced_s = stood
                self._add_static(stay, blob, d in static_hits)
                self._stays.append(stay)

        if self._plates is not None:
            notices.extend(self._read_plates(frame))
        for stay in self._stays:
            notices.extend(self._maybe_emit(stay, frame))
        self._ended = [e for e in self._ended if t - e.ended_at <= self.rule.cooldown_s]
        return notices

    def observe_motion(self, sample: MotionSample) -> list[EventNotice]:  # noqa: ARG002
        return []  # parking reasons about detected vehicles only

    @property
    def timer_due_s(self) -> float:
        # A confirmed stay seen standing alerts when its dwell runs out: due then at the
        # earliest (a schedule or a cool-down only puts it later), and its keyframes until
        # then may be sparse (a default 180 s dwell held its camera to every keyframe for three
        # minutes before; what it saves was not measured apart, README). Now, while a stay is
        # unconfirmed, and while a stay's vehicle is unseen: sparse keyframes decided its end
        # up to an interval after max_gap_s, and a car back at its place by then (or another
        # one there) continued the stay: two events became one (throughput trial, phased
        # scene, every car back 13-16 s after leaving, max_gap_s 12: 8 cameras, 4 merged).
        last = self._last_frame_s
        due = math.inf
        for stay in self._stays:
            if not stay.confirmed or stay.last_still_s != last:
                return -math.inf
            if stay.event_id is None:
                due = min(due, stay.last_obs_s + self.rule.min_dwell_s - stay.enforced_s)
        return due

    def close(self, time_s: float, reason: str) -> list[EventNotice]:  # noqa: ARG002
        notices = [n for stay in self._stays for n in self._end(stay, reason, None)]
        self._stays = []
        self._ended = []
        self._last_frame_s = None
        return notices

    @property
    def active_stays(self) -> int:
        return len(self._stays)

    # -- association ------------------------------------------------------------------------

    def _vehicles(self, detections: Detections) -> Detections:
        keep = np.isin(detections.class_id, np.fromiter(self._vehicle_ids, dtype=np.int32))
        keep &= detections.confidence >= self.rule.min_confidence
        vehicles = detections.select(keep)
        if len(vehicles) < 2:
            return vehicles
        # Detectors often box one vehicle twice under two classes (car and truck, motorcycle and
        # bicycle); class-aware NMS keeps both, which would make two stays and two events.
        order = np.argsort(-vehicles.confidence)
        iou = iou_matrix(vehicles.xyxy[order], vehicles.xyxy[order])
        kept: list[int] = []
        for i in range(len(order)):
            if all(iou[i, j] < _SAME_VEHICLE_IOU for j in kept):
                kept.append(i)
        return vehicles.select(np.sort(order[kept]))

    def _with_static(
        self, frame: Frame, detections: Detections, vehicles: Detections, zones: dict[str, Zone]
    ) -> tuple[Detections, dict[int, _Blob], dict[int, float]]:
        """Vehicle detections plus the static objects no vehicle detection covers (class -1),
        those objects by index, and the vehicle detections that are static objects too."""
        assert self._background is not None
        static = self._background.update(frame.image, frame.time_s)
        persons = detections.select(
            (detections.class_id == _PERSON)
            & (detections.confidence >= self.rule.any_class_confidence)
        )
        if len(persons):
            # People waiting are not parked cars; cut them out before objects are counted,
            # with a margin: the thumbnail is blurred, a person's fringe is not a car.
            people = self._background.boxes_mask(persons.xyxy, frame.size, static.shape, 3.0)
            static = np.asarray(static & ~people, np.bool_)
        w, h = frame.size
        found = self._background.blobs(static, frame.size, self.rule.min_static_area * w * h)
        if not found:
            return vehicles, {}, {}
        others = detections.select(
            (detections.class_id != _PERSON)
            & (detections.confidence >= self.rule.any_class_confidence)
        )
        hits: dict[int, float] = {}
        blobs: list[_Blob] = []
        for b in found:
            j = _same_object(b.box, vehicles.xyxy)
            if j >= 0:
                hits[j] = b.arrived_s
                continue
            any_class, conf = -1, 0.0
            j = _same_object(b.box, others.xyxy)
            if j >= 0:
                any_class, conf = int(others.class_id[j]), float(others.confidence[j])
            footprint = self._footprint(b, frame.size, zones)
            blobs.append(_Blob(b.box, any_class, conf, b.arrived_s, b.centre, footprint))
        if not blobs:
            return vehicles, {}, hits
        n = len(vehicles)
        merged = Detections(
            xyxy=np.vstack([vehicles.xyxy, np.stack([b.box for b in blobs])]).astype(np.float32),
            confidence=np.concatenate(
                [vehicles.confidence, np.array([b.confidence for b in blobs], np.float32)]
            ).astype(np.float32),
            class_id=np.concatenate([vehicles.class_id, np.full(len(blobs), -1, np.int32)]).astype(
                np.int32
            ),
            track_id=np.concatenate([vehicles.track_id, np.full(len(blobs), -1, np.int64)]),
        )
        return merged, {n + i: b for i, b in enumerate(blobs)}, hits

    def _footprint(
        self, blob: StaticBlob, size: tuple[int, int], zones: dict[str, Zone]
    ) -> tuple[float, float] | None:
        if not self._grounds:
            return None
        zone_id = self._zone_of(blob.centre[None], zones)[0]
        # The ground is one plane: any calibrated zone measures it, its own zone best.
        ground = self._grounds.get(zone_id or "", next(iter(self._grounds.values())))
        return ground.footprint(blob.points, size)

    def _inside_a_stay(self, dets: Detections, d: int) -> bool:
        """Whether vehicle detection ``d`` is the vehicle of a static-object stay, whose box
        (shadow and all) holds it: it names that stay's object rather than starting another."""
        for stay in self._stays:
            if stay.static_obs and _same_object(stay.ref_box, dets.xyxy[d : d + 1]) == 0:
                stay.classes[int(dets.class_id[d])] += 1
                return True
        return False

    @staticmethod
    def _add_static(stay: _Stay, blob: _Blob | None, static_hit: bool) -> None:
        if blob is None and not static_hit:
            return
        stay.static_obs += 1
        if blob is not None:
            if blob.any_class >= 0:
                stay.any_classes[blob.any_class] += 1
            if blob.footprint is not None:
                stay.footprints.append(blob.footprint)

    def _associate(self, dets: Detections) -> tuple[list[int], list[int]]:
        """Match stays to detections by IoU with the stays' reference boxes (Hungarian)."""
        if not self._stays or len(dets) == 0:
            return [], []
        refs = np.stack([s.ref_box for s in self._stays])
        iou = iou_matrix(refs, dets.xyxy)
        floor = np.array(
            [
                self.rule.stationary_iou * (_KEEP_FRACTION if s.confirmed else 1.0)
                for s in self._stays
            ],
            dtype=np.float32,
        )[:, None]
        cost = np.where(iou >= floor, -iou, 1.0)
        rows, cols = linear_sum_assignment(cost)
        pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < 0]
        return [r for r, _ in pairs], [c for _, c in pairs]

    @staticmethod
    def _zone_of(anchors: NDArray[np.float32], zones: dict[str, Zone]) -> list[str | None]:
        """Zone id for each anchor; fire lanes win over plain no-parking zones."""
        result: list[str | None] = [None] * len(anchors)
        for zone in sorted(zones.values(), key=lambda z: z.kind != ZoneKind.FIRE_LANE):
            for i in np.flatnonzero(zone.contains(anchors)):
                if result[i] is None:
                    result[i] = zone.zone_id
        return result

    # -- stay updates -----------------------------------------------------------------------

    def _new_stay(self, dets: Detections, d: int, zone_id: str, t: float) -> _Stay:
        box = dets.xyxy[d].copy()
        self._next_stay += 1
        stay = _Stay(
            stay_id=self._next_stay,
            zone_id=zone_id,
            zone_kind=self._zone_cfg[zone_id].kind,
            boxes=deque([box], maxlen=_REF_HISTORY),
            first_seen_s=t,
            last_still_s=t,
            last_obs_s=t,
            first_box=box,
            conf_sum=float(dets.confidence[d]),
        )
        if dets.class_id[d] >= 0:
            stay.classes[int(dets.class_id[d])] += 1
        if dets.track_id[d] >= 0:
            stay.track_ids.add(int(dets.track_id[d]))
        return stay

    def _update_stay(self, stay: _Stay, dets: Detections, d: int, frame: Frame, t: float) -> None:
        """The vehicle of ``stay`` was seen standing at its place again."""
        box = dets.xyxy[d]
        if self._schedule.active(t):
            if self._schedule.active(stay.last_obs_s):
                stay.enforced_s += t - stay.last_obs_s  # counted from the window's first frame
        elif stay.event_id is None:
            stay.enforced_s = 0.0  # dwell outside enforced hours does not count
        stay.last_obs_s = t
        stay.observations += 1
        stay.conf_sum += float(dets.confidence[d])
        if dets.class_id[d] >= 0:
            stay.classes[int(dets.class_id[d])] += 1
        if dets.track_id[d] >= 0:
            stay.track_ids.add(int(dets.track_id[d]))
        stay.last_still_s = t
        stay.boxes.append(box.copy())
        if not stay.confirmed and t - stay.first_seen_s >= self.rule.confirm_s:
            stay.confirmed = True
            ok, buf = cv2.imencode(
                ".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, self._jpeg_quality]
            )
            if ok:
                stay.first_jpeg = buf.tobytes()
                stay.first_jpeg_time_s = t

    # -- events -----------------------------------------------------------------------------

    def _maybe_emit(self, stay: _Stay, frame: Frame) -> list[EventNotice]:
        t = frame.time_s
        if stay.event_id is None:
            if not stay.confirmed or stay.enforced_s < self.rule.min_dwell_s:
                return []
            if frame.recovered:  # analysed late: the current frame comes next and alerts
                return []
            if not self._schedule.active(t):
                return []
            self._apply_cooldown(stay)
            if t < stay.blocked_until_s:
                return []
            stay.event_id = self._new_id(t)
            stay.alerted_at = t
            stay.last_emit_s = t
            return [
                EventNotice(
                    event=self._event(stay, EventState.STARTED, frame, None),
                    frame=frame,
                    first_evidence_jpeg=stay.first_jpeg,
                    first_evidence_time_s=stay.first_jpeg_time_s,
                )
            ]
        if stay.last_still_s == t and t - stay.last_emit_s >= self.rule.update_interval_s:
            stay.last_emit_s = t
            return [
                EventNotice(event=self._event(stay, EventState.UPDATED, frame, None), frame=frame)
            ]
        return []

    def _apply_cooldown(self, stay: _Stay) -> None:
        ref = stay.ref_box[None]
        plate = stay.plate.text if stay.plate is not None else None
        for ended in self._ended:
            if ended.zone_id != stay.zone_id:
                continue
            if iou_matrix(ref, ended.box[None])[0, 0] < _COOLDOWN_IOU:
                continue
            if plate is not None and ended.plate is not None:
                if plate != ended.plate:
                    continue  # another car at the same spot: its own event, at once
                stay.same_vehicle = True
            stay.blocked_until_s = max(stay.blocked_until_s, ended.ended_at + self.rule.cooldown_s)
            stay.previous_event_id = ended.event_id

    # -- plates -----------------------------------------------------------------------------

    def _read_plates(self, frame: Frame) -> list[EventNotice]:
        """Ask for the plates of the confirmed stays seen standing now that are due a look,
        then take in the answers that have come (at once when read inline; from a plate
        worker, at a later frame)."""
        assert self._plates is not None
        t = frame.time_s
        for stay in self._stays:
            if stay.plate_pending or not stay.confirmed or stay.last_still_s != t:
                continue
            if stay.event_id is None and stay.enforced_s < self.rule.min_dwell_s / 2:
                continue  # most stops are short: a plate is read only for a stay that may alert
            if stay.plate_votes:
                interval = self.rule.update_interval_s
            elif stay.plate_attempts >= _PLATE_TRIES:
                continue
            else:
                interval = _PLATE_RETRY_S * 2 ** max(0, stay.plate_attempts - 1)
            last = stay.plate_read_s
            if last is not None and stay.rival is None and t - last < interval:
                continue  # a rival read is looked at again at once
            x1, y1, x2, y2 = (float(v) for v in stay.boxes[-1])
            # a standing car's plate is where it was read: looked at there first
            known = stay.plate if stay.rival is None else None
            hint = None if known is None else known.sighting
            if not self._plates.ask(stay.stay_id, frame.image, (x1, y1, x2, y2), hint):
                continue  # the reader is busy: this look is made at a later frame
            stay.plate_pending = True
            stay.plate_read_s = t
            stay.plate_attempts += 1
        notices: list[EventNotice] = []
        for key, answer in self._plates.answers():
            i = next((i for i, s in enumerate(self._stays) if s.stay_id == key), None)
            if i is None:
                continue  # that stay ended (or was replaced) while its plate was read
            stay = self._stays[i]
            stay.plate_pending = False
            reads = [r for r in answer if r.valid]
            if not reads:
                continue
            read = reads[0]
            if not stay.plate_votes or read.text in stay.plate_votes:
                stay.rival = None
                self._vote(stay, read)
            elif read.confidence < _RIVAL_CONFIDENCE:
                continue  # an unsure read of something else: neither a vote nor a rival
            elif stay.rival is None or stay.rival.text != read.text:
                stay.rival = read  # look again at the next frame before deciding
            else:
                notices.extend(self._replace(i, stay, read, frame))
        return notices

    @staticmethod
    def _vote(stay: _Stay, read: PlateRead) -> None:
        stay.plate_votes[read.text] += 1
        best = stay.plate_best.get(read.text)
        if best is None or read.confidence > best.confidence:
            stay.plate_best[read.text] = read

    def _replace(self, i: int, stay: _Stay, read: PlateRead, frame: Frame) -> list[EventNotice]:
        """Another car (another plate, twice) stands where ``stay``'s stood: that one left
        between two looks; the newcomer's stay starts now, with no dwell carried over."""
        t = frame.time_s
        notices = self._end(stay, "replaced", frame)
        self._next_stay += 1
        box = stay.boxes[-1].copy()
        new = _Stay(stay_id=self._next_stay, zone_id=stay.zone_id, zone_kind=stay.zone_kind,
                    boxes=deque([box], maxlen=_REF_HISTORY), first_seen_s=t, last_still_s=t,
                    last_obs_s=t, first_box=box, started_by=stay.started_by,
                    plate_read_s=t, plate_attempts=1)  # fmt: skip
        self._vote(new, read)
        self._stays[i] = new
        return notices

    @staticmethod
    def _plate_details(stay: _Stay) -> PlateDetails | None:
        best = stay.plate
        if best is None:
            return None
        return PlateDetails(
            text=best.text,
            confidence=round(best.confidence, 4),
            colour=best.colour,
            reads=stay.plate_votes[best.text],
            attempts=stay.plate_attempts,
            width_px=round(best.sighting.width_px, 1),
        )

    def _end(self, stay: _Stay, reason: str, frame: Frame | None) -> list[EventNotice]:
        if stay.event_id is None:
            return []
        ended_at = stay.last_still_s
        plate = stay.plate.text if stay.plate is not None else None
        self._ended.append(_Ended(stay.zone_id, stay.ref_box, ended_at, stay.event_id, plate))
        return [
            EventNotice(
                event=self._event(stay, EventState.ENDED, frame, ended_at, reason), frame=frame
            )
        ]

    def _event(
        self,
        stay: _Stay,
        state: EventState,
        frame: Frame | None,
        ended_at: float | None,
        end_reason: str | None = None,
    ) -> Event:
        assert stay.event_id is not None
        size = frame.size if frame is not None else self._frame_size
        class_name = stay.class_name
        group = "non_motor" if class_name in NON_MOTOR else "motor"
        if stay.zone_kind == ZoneKind.FIRE_LANE:
            etype = EventType.FIRE_LANE_OCCUPATION
        elif group == "non_motor":
            etype = EventType.ILLEGAL_PARKING_NON_MOTOR
        else:
            etype = EventType.ILLEGAL_PARKING_MOTOR
        confidence = stay.conf_sum / stay.observations
        details = ParkingDetails(
            zone_kind=str(stay.zone_kind),
            class_name=class_name,
            vehicle_group=group,
            box_rel=to_rel(stay.boxes[-1], size),
            first_box_rel=to_rel(stay.first_box, size),
            dwell_s=round(stay.last_still_s - stay.first_seen_s, 3),
            enforced_dwell_s=round(stay.enforced_s, 3),
            min_dwell_s=self.rule.min_dwell_s,
            confidence=round(confidence, 4),
            observations=stay.observations,
            track_ids=tuple(sorted(stay.track_ids)),
            previous_event_id=stay.previous_event_id,
            end_reason=end_reason,
            started_by=stay.started_by,
            evidence=stay.evidence(),
            footprint_m=stay.footprint,
            plate=self._plate_details(stay),
            same_vehicle_as_previous=stay.same_vehicle,
        )
        offset = frame.pts_s - (frame.time_s - stay.alerted_at) if frame is not None else None
        return Event(
            event_id=stay.event_id,
            event_type=etype,
            state=state,
            camera_id=self.camera_id,
            zone_id=stay.zone_id,
            rule_id=self.rule_id,
            started_at=stay.first_seen_s,
            alerted_at=stay.alerted_at,
            updated_at=stay.last_still_s,
            ended_at=ended_at,
            score=round(confidence, 4),
            details=details,
            stream_offset_s=None if offset is None else round(offset, 3),
        )


# -- what evidence shows of this rule: report section, snapshots ---------------------------


def summary(event: Event, d: ParkingDetails) -> tuple[str, str]:
    """(中文, English) one-line summary for the report's title block."""
    minutes = d.dwell_s / 60
    vehicle_zh = CLASS_ZH.get(d.class_name, d.class_name)
    zone_zh = ZONE_KIND_ZH.get(d.zone_kind, d.zone_kind)
    limit = d.min_dwell_s / 60
    summary_zh = f"{vehicle_zh}在{zone_zh}停留约{minutes:.1f}分钟（阈值{limit:.1f}分钟）"
    summary_en = (
        f"{d.class_name} standing in {d.zone_kind} zone for about {minutes:.1f} min "
        f"(limit {limit:.1f} min)"
    )
    if event.state == EventState.ENDED:
        summary_zh += "，已驶离" if d.end_reason == "left" else f"，结束（{d.end_reason}）"
        summary_en += "; left" if d.end_reason == "left" else f"; ended ({d.end_reason})"
    return summary_zh, summary_en


def detection(d: ParkingDetails, _tz: ZoneInfo) -> dict[str, Any]:
    """This rule's fields of the report's ``detection`` block."""
    return {
        "dwell_seconds": d.dwell_s,
        "enforced_dwell_seconds": d.enforced_dwell_s,
        "thresholds": {"min_dwell_s": d.min_dwell_s},
        "observations": d.observations,
        "end_reason": d.end_reason,
        "started_by": d.started_by,
        "evidence": list(d.evidence),
        "objects": [
            {
                "label": d.class_name,
                "label_zh": CLASS_ZH.get(d.class_name, d.class_name),
                "vehicle_group": d.vehicle_group,
                "track_ids": [str(t) for t in d.track_ids],
                "bbox_norm": list(d.box_rel),
                "first_bbox_norm": list(d.first_box_rel),
                "ground_footprint_m": None if d.footprint_m is None else list(d.footprint_m),
                # 车牌: visible to the roles that may see events; removed from shared packages
                # unless kept for an enforcement recipient (pipeline.casework.package)
                "plate": None
                if d.plate is None
                else {
                    "text": d.plate.text,
                    "confidence": d.plate.confidence,
                    "colour": d.plate.colour,
                    "reads": d.plate.reads,
                    "attempts": d.plate.attempts,
                    "width_px": d.plate.width_px,
                },
                "same_vehicle_as_previous": d.same_vehicle_as_previous,
            }
        ],
    }


def draw(snap: Snapshot, d: ParkingDetails) -> NDArray[np.uint8]:
    boxes: list[tuple[Box, tuple[int, int, int], str]] = []
    caption = snap.caption
    if snap.name == "alert":
        label = f"{d.class_name} {d.confidence:.2f}"
        if d.started_by == "static_object":
            label = f"{d.class_name} (static object)"
        boxes.append((d.box_rel, BOX_COLOR, label))
        caption += f"  dwell {d.dwell_s / 60:.1f} min"
    elif snap.name == "first":
        boxes.append((d.first_box_rel, FIRST_COLOR, f"{d.class_name} first seen"))
    elif snap.name == "end":
        boxes.append((d.box_rel, FIRST_COLOR, "last position"))
    return annotate_snapshot(snap, boxes, caption=caption)


def build(camera: CameraConfig, rule: ParkingRule, site: SiteConfig, ev: EvidenceConfig,
          models: SharedModels) -> ParkingAnalyzer:  # fmt: skip
    return ParkingAnalyzer(camera.id, rule, camera.zones, site.timezone,
                           jpeg_quality=ev.jpeg_quality,
                           plates=models.plates.lookups(camera.id)
                           if models.plates is not None and rule.read_plates else None)  # fmt: skip


KIND = RuleKind("illegal_parking", ParkingRule, ParkingDetails, build, summary, detection, draw)
