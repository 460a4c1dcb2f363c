"""占道经营 / 店外经营 / 无照经营游商: walkways, roads and shop fronts blocked for minutes.

Per observation (keyframes are enough: stalls stand for minutes) each watched zone gets an
*occupancy*: the fraction of its area (minus ``permitted_stall`` zones, 便民点) covered by

* the ground footprint of detected stall-like objects (umbrella, table, chair, cart, tricycle,
  suitcase, …: the lower part of each box), and
* static foreground from ``pipeline.rules.occupancy``: whatever has been there for about a
  minute but is not part of the empty scene (crates, tarps, racks, goods on the ground that no COCO
  class names).

People are not occupation (pedestrians pass through); people standing in or next to the blocked
area are reported as vendors present. The occupancy is smoothed with a running median over the
last observations, so a crowd walking past does not start an episode, and an episode needs
``min_dwell_s`` above ``occupancy_on`` (inside the rule's schedule, not on an exempt market day)
before it is reported, counted from arrival: static foreground appears only ``recent_s`` after
an object does, so an episode it starts is dated back by that much. People detected
standing still are cut out of the static foreground (waiting is not vending). It is updated
while the blocked area grows and ends after ``clear_s`` below ``occupancy_off``; the cleared
zone is the "after" picture for automatic re-checks.

A walkway or road zone gives 占道经营 (09006), a shop-front zone 店外经营 (09005). Several short
stops (each ≥ ``mobile_min_stop_s`` but shorter than ``min_dwell_s``) within
``mobile_window_s`` are one 无照经营游商 (09001): a vendor who moves on before anyone comes.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from pipeline.config_base import (
    ID_PATTERN,
    RuleBase,
    ScheduleWindow,
    ZoneConfig,
    ZoneKind,
    resolve_under,
)
from pipeline.detect.detector import COCO_IDS, COCO_NAMES
from pipeline.evidence.labels import OBJECT_ZH, VENDING_ZONE_ZH
from pipeline.rules.base import (
    BOX_COLOR,
    IdFactory,
    RuleKind,
    SharedModels,
    Snapshot,
    annotate_snapshot,
    new_event_id,
    read_rule_image,
    watched_zones,
)
from pipeline.rules.motion import MotionNeeds
from pipeline.rules.occupancy import StaticForeground
from pipeline.rules.schedule import Schedule
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

_SMOOTH_N = 5
_PERSON = COCO_IDS["person"]


# -- configuration (cameras.toml ``[[cameras.rules]]`` with analyzer = "vending")

StallClass = Literal[
    "umbrella", "dining table", "chair", "bench", "bicycle", "motorcycle", "truck", "car",
    "suitcase", "handbag", "backpack", "potted plant", "bottle", "bowl", "cup", "book",
]  # fmt: skip


def _default_stall_classes() -> list[StallClass]:
    return [
        "umbrella", "dining table", "chair", "bench", "bicycle", "motorcycle", "truck",
        "suitcase", "handbag", "backpack", "potted plant",
    ]  # fmt: skip


VENDING_ZONE_KINDS = frozenset({ZoneKind.WALKWAY, ZoneKind.ROADWAY, ZoneKind.SHOP_FRONT})


class VendingRule(RuleBase):
    """占道经营 / 店外经营 / 游商: something blocking a walkway, road or shop front for minutes."""

    analyzer: Literal["vending"]
    id: str = Field(default="vending", pattern=ID_PATTERN)
    # Watched zones (walkway, roadway, shop_front); default every such zone. permitted_stall
    # zones (便民点) of the camera are always exempt.
    zones: list[str] | None = None
    min_dwell_s: float = Field(default=180.0, gt=0.0)
    # Fraction of the zone's area blocked (ground footprint) that counts as occupied; an
    # episode ends when it stays below occupancy_off for clear_s. Raising occupancy_on ignores
    # smaller stalls; lowering it reacts to a single crate.
    occupancy_on: float = Field(default=0.10, gt=0.0, le=1.0)
    occupancy_off: float = Field(default=0.04, ge=0.0, le=1.0)
    clear_s: float = Field(default=60.0, gt=0.0)
    update_interval_s: float = Field(default=60.0, gt=0.0)
    cooldown_s: float = Field(default=300.0, ge=0.0)
    classes: list[StallClass] = Field(default_factory=_default_stall_classes)
    min_confidence: float = Field(default=0.3, ge=0.0, le=1.0)
    # Lower part of an object's box taken as its footprint on the ground.
    footprint_fraction: float = Field(default=0.35, gt=0.0, le=1.0)
    # Background time constants: what stays ~recent_s is "there"; the empty scene adapts over
    # empty_s (longer = slower to forgive a permanent change, e.g. a new bench).
    recent_s: float = Field(default=60.0, gt=1.0)
    empty_s: float = Field(default=1200.0, gt=10.0)
    # 游商: this many stops of at least mobile_min_stop_s (each shorter than min_dwell_s)
    # within mobile_window_s is one mobile vendor.
    mobile_stops: int = Field(default=3, ge=2)
    mobile_min_stop_s: float = Field(default=45.0, gt=0.0)
    mobile_window_s: float = Field(default=1800.0, gt=0.0)
    schedule: list[ScheduleWindow] = Field(default_factory=list)
    exempt_dates: list[date] = Field(default_factory=list)  # market days, festivals
    # Image of the empty scene (e.g. a snapshot taken when the walkway was clear). Without it
    # the model starts from the first frame, so a stall already standing at start-up is only
    # seen through detected objects until it leaves once.
    empty_scene: Path | None = None

    ZONE_KINDS: ClassVar[frozenset[ZoneKind]] = VENDING_ZONE_KINDS

    def zone_ids(self) -> list[str] | None:
        return self.zones

    def with_paths_under(self, base: Path) -> Self:
        if self.empty_scene is None:
            return self
        return self.model_copy(update={"empty_scene": resolve_under(base, self.empty_scene)})

    @model_validator(mode="after")
    def _hysteresis(self) -> VendingRule:
        if self.occupancy_off >= self.occupancy_on:
            raise ValueError("occupancy_off must be below occupancy_on")
        return self


# -- what its events carry


@dataclass(frozen=True, slots=True)
class VendingDetails(RuleDetails):
    """A zone occupied by a stall, goods or a vendor's cart (占道经营 / 店外经营 / 游商)."""

    zone_kind: str
    occupancy: float  # fraction of the zone's (non-exempt) area blocked now
    peak_occupancy: float
    footprint_box_rel: Box  # bounding box of the blocked area, relative to the frame
    footprint_polygons_rel: tuple[tuple[tuple[float, float], ...], ...]  # blocked area outline
    objects: tuple[str, ...]  # stall-related classes seen in the zone during the episode
    static_fraction: float  # part of the blocked area found by the background model only
    persons_nearby: int  # people lingering in or beside the blocked area (now)
    dwell_s: float
    min_dwell_s: float
    stops: int = 1  # 游商: short stops counted in the window
    previous_event_id: str | None = None
    end_reason: str | None = None


@dataclass
class _ZoneState:
    zone: ZoneConfig
    history: deque[float] = field(default_factory=lambda: deque(maxlen=_SMOOTH_N))
    occupied_since: float | None = None
    last_occupied: float = 0.0
    below_since: float | None = None
    event_id: str | None = None
    alerted_at: float = 0.0
    last_emit: float = 0.0
    peak: float = 0.0
    objects: set[str] = field(default_factory=set)
    previous_event_id: str | None = None
    ended_at: float | None = None


class VendingAnalyzer:
    """One vending rule on one camera (see module docstring)."""

    decode_mode = DecodeMode.KEYFRAMES
    motion: MotionNeeds | None = None
    clean_pictures = True

    def __init__(
        self,
        camera_id: str,
        rule: VendingRule,
        zones: list[ZoneConfig],
        timezone: str,
        *,
        new_id: IdFactory = new_event_id,
    ) -> None:
        self.camera_id = camera_id
        self.rule = rule
        # every keyframe: its background model dates a stall from when it first saw it
        # differ, and with a still scene's keyframes 6 s apart 3 of 8 stalls were dated
        # 4-14 s late (benchmarks/vending_synth.py --still, 666b535)
        self.max_frame_gap_s = 0.0
        self.rule_id = rule.id
        watched = watched_zones(zones, VENDING_ZONE_KINDS, rule.zones)
        self._permitted = [z for z in zones if z.kind == ZoneKind.PERMITTED_STALL]
        self._states = {z.id: _ZoneState(z) for z in watched}
        self._background = StaticForeground(watched, recent_s=rule.recent_s, empty_s=rule.empty_s)
        self._empty_scene: NDArray[np.uint8] | None = None
        if rule.empty_scene is not None:
            self._empty_scene = read_rule_image(rule.empty_scene, camera_id, rule.id, "empty_scene")
        self._schedule = Schedule(rule.schedule, timezone)
        self._tz = ZoneInfo(timezone)
        self._exempt = set(rule.exempt_dates)
        self.classes = frozenset(COCO_IDS[c] for c in rule.classes) | {_PERSON}
        self._stall_ids = np.array(sorted(COCO_IDS[c] for c in rule.classes), np.int32)
        self._new_id = new_id
        self._stops: deque[tuple[float, str]] = deque()
        self._masks: dict[str, NDArray[np.bool_]] | None = None
        self._mask_size: tuple[int, int] | None = None
        self._last_time = 0.0

    # -- public ---------------------------------------------------------------------------

    def observe(self, frame: Frame, detections: Detections) -> list[EventNotice]:
        t = frame.time_s
        self._last_time = t
        if self._empty_scene is not None:  # first frame: start from the known empty scene
            ref = cv2.resize(self._empty_scene, frame.size, interpolation=cv2.INTER_AREA)
            self._background.reset(np.asarray(ref, np.uint8))
            self._empty_scene = None
        static = self._background.update(frame.image, t)
        # Someone waiting a few minutes is not a stall (the vendor beside it is counted below).
        static &= ~self._person_mask(detections, frame.size, static.shape)
        footprints = self._footprints(detections, frame.size, static.shape)
        occupied = static | footprints
        masks = self._zone_masks(frame.size, static.shape)
        persons = self._persons(detections, frame.size, static.shape)
        enforced = self._enforced(t)
        notices: list[EventNotice] = []
        for zone_id, st in self._states.items():
            zmask = masks[zone_id]
            area = int(zmask.sum())
            if area == 0:
                continue
            blocked = occupied & zmask
            st.history.append(float(blocked.sum()) / area)
            occ = float(np.median(st.history))
            st.objects.update(self._objects_in(detections, zmask, frame.size, static.shape))
            notices.extend(self._step(st, occ, blocked, static, persons, frame, enforced))
        return notices

    def observe_motion(self, sample: MotionSample) -> list[EventNotice]:  # noqa: ARG002
        return []

    @property
    def timer_due_s(self) -> float:
        # (its keyframes are never skipped: max_frame_gap_s 0)
        waiting = any(st.occupied_since is not None and st.event_id is None
                      for st in self._states.values())  # fmt: skip
        return -math.inf if waiting else math.inf

    def close(self, time_s: float, reason: str) -> list[EventNotice]:  # noqa: ARG002
        notices = []
        for st in self._states.values():
            if st.event_id is not None:
                occ = st.history[-1] if st.history else 0.0
                notices.append(
                    self._notice(
                        st,
                        EventState.ENDED,
                        None,
                        occ,
                        None,
                        None,
                        0,
                        end_reason=reason,
                        ended_at=st.last_occupied,
                    )
                )
            st.event_id = None
            st.occupied_since = None
        return notices

    # -- geometry -------------------------------------------------------------------------

    def _zone_masks(
        self, size: tuple[int, int], shape: tuple[int, ...]
    ) -> dict[str, NDArray[np.bool_]]:
        if self._masks is not None and self._mask_size == size:
            return self._masks
        w, h = size
        x1, y1, x2, y2 = self._background.roi_px(w, h)
        sx, sy = shape[1] / max(1, x2 - x1), shape[0] / max(1, y2 - y1)

        def raster(z: ZoneConfig) -> NDArray[np.bool_]:
            m = np.zeros(shape[:2], np.uint8)
            pts = (np.array(z.polygon) * [w, h] - [x1, y1]) * [sx, sy]
            cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
            return np.asarray(m > 0, np.bool_)

        exempt = np.zeros(shape[:2], np.bool_)
        for z in self._permitted:
            exempt |= raster(z)
        self._masks = {zid: raster(st.zone) & ~exempt for zid, st in self._states.items()}
        self._mask_size = size
        return self._masks

    def _footprints(
        self, dets: Detections, size: tuple[int, int], shape: tuple[int, ...]
    ) -> NDArray[np.bool_]:
        keep = np.isin(dets.class_id, self._stall_ids) & (
            dets.confidence >= self.rule.min_confidence
        )
        lower = dets.xyxy[keep].copy()  # the part of each box on the ground
        lower[:, 1] = lower[:, 3] - (lower[:, 3] - lower[:, 1]) * self.rule.footprint_fraction
        return self._background.boxes_mask(lower, size, shape)

    def _objects_in(
        self,
        dets: Detections,
        zmask: NDArray[np.bool_],
        size: tuple[int, int],
        shape: tuple[int, ...],
    ) -> set[str]:
        """Names of stall-like objects whose footprint centre lies in the zone."""
        keep = np.isin(dets.class_id, self._stall_ids) & (
            dets.confidence >= self.rule.min_confidence
        )
        if not keep.any():
            return set()
        boxes = self._background.to_thumb(dets.xyxy[keep], size, shape)
        h, w = zmask.shape
        names = set()
        for (x1, _, x2, y2), cid in zip(boxes, dets.class_id[keep], strict=True):
            xi, yi = int(np.clip((x1 + x2) / 2, 0, w - 1)), int(np.clip(y2 - 1, 0, h - 1))
            if zmask[yi, xi]:
                names.add(COCO_NAMES[int(cid)])
        return names

    def _person_mask(
        self, dets: Detections, size: tuple[int, int], shape: tuple[int, ...]
    ) -> NDArray[np.bool_]:
        keep = (dets.class_id == _PERSON) & (dets.confidence >= self.rule.min_confidence)
        return self._background.boxes_mask(dets.xyxy[keep], size, shape)

    def _persons(
        self, dets: Detections, size: tuple[int, int], shape: tuple[int, ...]
    ) -> NDArray[np.float32]:
        keep = (dets.class_id == _PERSON) & (dets.confidence >= self.rule.min_confidence)
        if not keep.any():
            return np.zeros((0, 2), np.float32)
        boxes = self._background.to_thumb(dets.xyxy[keep], size, shape)
        return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)

    def _enforced(self, t: float) -> bool:
        if not self._schedule.active(t):
            return False
        return datetime.fromtimestamp(t, tz=self._tz).date() not in self._exempt

    # -- episodes -------------------------------------------------------------------------

    def _step(
        self,
        st: _ZoneState,
        occ: float,
        blocked: NDArray[np.bool_],
        static: NDArray[np.bool_],
        persons: NDArray[np.float32],
        frame: Frame,
        enforced: bool,
    ) -> list[EventNotice]:
        t = frame.time_s
        r = self.rule
        if occ >= r.occupancy_on:
            st.last_occupied = t
            st.below_since = None
            if st.occupied_since is None:
                # Static foreground shows only what has stood ~recent_s already: date the
                # start back by that much, so dwell counts from arrival, not from recognition.
                mostly_static = blocked.any() and (blocked & static).sum() * 2 >= blocked.sum()
                st.occupied_since = t - (r.recent_s if mostly_static else 0.0)
                st.objects = set()
        elif occ < r.occupancy_off and st.occupied_since is not None:
            if st.below_since is None:
                st.below_since = t
            if t - st.below_since >= r.clear_s:
                return self._clear(st, occ, blocked, static, persons, frame)
        if st.occupied_since is None:
            return []
        st.peak = max(st.peak, occ)
        near = self._near(persons, blocked)
        if st.event_id is None:
            if not enforced or st.last_occupied - st.occupied_since < r.min_dwell_s:
                return []
            if frame.recovered:  # analysed late: the current frame comes next and alerts
                return []
            if st.ended_at is not None and t < st.ended_at + r.cooldown_s:
                return []
            st.event_id = self._new_id(t)
            st.alerted_at = t
            st.last_emit = t
            return [self._notice(st, EventState.STARTED, frame, occ, blocked, static, near)]
        grew = occ >= 1.2 * st.history[0] if st.history else False
        if st.last_occupied == t and (
            t - st.last_emit >= r.update_interval_s or (grew and t - st.last_emit >= 10)
        ):
            st.last_emit = t
            return [self._notice(st, EventState.UPDATED, frame, occ, blocked, static, near)]
        return []

    def _clear(
        self,
        st: _ZoneState,
        occ: float,
        blocked: NDArray[np.bool_],
        static: NDArray[np.bool_],
        persons: NDArray[np.float32],
        frame: Frame,
    ) -> list[EventNotice]:
        """The zone is clear again: end the episode, or count it as a mobile vendor's stop."""
        assert st.occupied_since is not None
        stay = st.last_occupied - st.occupied_since
        notices: list[EventNotice] = []
        if st.event_id is not None:
            notices.append(
                self._notice(
                    st,
                    EventState.ENDED,
                    frame,
                    occ,
                    blocked,
                    static,
                    self._near(persons, blocked),
                    end_reason="cleared",
                    ended_at=st.last_occupied,
                )
            )
            st.previous_event_id = st.event_id
            st.ended_at = st.last_occupied
        elif stay >= self.rule.mobile_min_stop_s and self._enforced(frame.time_s):
            notices.extend(self._mobile_stop(st, frame, stay))
        st.event_id = None
        st.occupied_since = None
        st.below_since = None
        st.peak = 0.0
        return notices

    def _mobile_stop(self, st: _ZoneState, frame: Frame, stay: float) -> list[EventNotice]:
        t = frame.time_s
        self._stops.append((t, st.zone.id))
        while self._stops and t - self._stops[0][0] > self.rule.mobile_window_s:
            self._stops.popleft()
        if len(self._stops) < self.rule.mobile_stops:
            return []
        stops = len(self._stops)
        self._stops.clear()
        event_id = self._new_id(t)
        details = VendingDetails(
            zone_kind=str(st.zone.kind), occupancy=0.0, peak_occupancy=round(st.peak, 4),
            footprint_box_rel=(0.0, 0.0, 0.0, 0.0), footprint_polygons_rel=(),
            objects=tuple(sorted(st.objects)), static_fraction=0.0, persons_nearby=0,
            dwell_s=round(stay, 2), min_dwell_s=self.rule.min_dwell_s, stops=stops,
            end_reason="moved_on",
        )  # fmt: skip
        ev = Event(
            event_id=event_id, event_type=EventType.UNLICENSED_MOBILE_VENDING,
            state=EventState.STARTED, camera_id=self.camera_id, zone_id=st.zone.id,
            rule_id=self.rule_id, started_at=t - self.rule.mobile_window_s, alerted_at=t,
            updated_at=t, ended_at=None, score=0.6, details=details,
        )  # fmt: skip
        ended = replace(ev, state=EventState.ENDED, ended_at=t)
        return [EventNotice(event=ev, frame=frame), EventNotice(event=ended, frame=frame)]

    @staticmethod
    def _near(persons: NDArray[np.float32], blocked: NDArray[np.bool_]) -> int:
        """People standing in or within a few thumbnail pixels of the blocked area."""
        if len(persons) == 0 or not blocked.any():
            return 0
        grown = cv2.dilate(blocked.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        h, w = grown.shape
        count = 0
        for x, y in persons:
            xi, yi = int(np.clip(x, 0, w - 1)), int(np.clip(y, 0, h - 1))
            count += bool(grown[yi, xi])
        return count

    def _notice(
        self,
        st: _ZoneState,
        state: EventState,
        frame: Frame | None,
        occ: float,
        blocked: NDArray[np.bool_] | None,
        static: NDArray[np.bool_] | None,
        near: int,
        *,
        end_reason: str | None = None,
        ended_at: float | None = None,
    ) -> EventNotice:
        box: Box = (0.0, 0.0, 0.0, 0.0)
        polys: tuple[tuple[tuple[float, float], ...], ...] = ()
        static_frac = 0.0
        if blocked is not None and frame is not None and blocked.any():
            box, polys = self._outline(blocked, frame.size)
            if static is not None:
                static_frac = float((blocked & static).sum()) / max(1, int(blocked.sum()))
        et = (
            EventType.SHOP_FRONT_SPILLOVER
            if st.zone.kind == ZoneKind.SHOP_FRONT
            else EventType.ROAD_OCCUPATION_VENDING
        )
        started = st.occupied_since if st.occupied_since is not None else st.last_occupied
        details = VendingDetails(
            zone_kind=str(st.zone.kind), occupancy=round(occ, 4), peak_occupancy=round(st.peak, 4),
            footprint_box_rel=box, footprint_polygons_rel=polys, objects=tuple(sorted(st.objects)),
            static_fraction=round(static_frac, 3), persons_nearby=near,
            dwell_s=round(st.last_occupied - started, 2), min_dwell_s=self.rule.min_dwell_s,
            previous_event_id=st.previous_event_id, end_reason=end_reason,
        )  # fmt: skip
        assert st.event_id is not None
        event = Event(
            event_id=st.event_id, event_type=et, state=state, camera_id=self.camera_id,
            zone_id=st.zone.id, rule_id=self.rule_id, started_at=started,
            alerted_at=st.alerted_at, updated_at=st.last_occupied, ended_at=ended_at,
            score=round(min(1.0, 0.5 + st.peak), 4), details=details,
        )  # fmt: skip
        return EventNotice(event=event, frame=frame)

    def _outline(
        self, blocked: NDArray[np.bool_], size: tuple[int, int]
    ) -> tuple[tuple[float, float, float, float], tuple[tuple[tuple[float, float], ...], ...]]:
        w, h = size
        x1, y1, x2, y2 = self._background.roi_px(w, h)
        sx, sy = (x2 - x1) / blocked.shape[1], (y2 - y1) / blocked.shape[0]
        contours, _ = cv2.findContours(
            blocked.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        polys = []
        for c in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
            approx = cv2.approxPolyDP(c, 2.0, True).reshape(-1, 2)
            if len(approx) >= 3:
                polys.append(
                    tuple(
                        (round(float((x1 + px * sx) / w), 4), round(float((y1 + py * sy) / h), 4))
                        for px, py in approx
                    )
                )
        ys, xs = np.nonzero(blocked)
        box = (
            round(float((x1 + xs.min() * sx) / w), 4),
            round(float((y1 + ys.min() * sy) / h), 4),
            round(float((x1 + (xs.max() + 1) * sx) / w), 4),
            round(float((y1 + (ys.max() + 1) * sy) / h), 4),
        )
        return box, tuple(polys)


# -- what evidence shows of this rule: report section, snapshots ---------------------------


def summary(event: Event, d: VendingDetails) -> tuple[str, str]:
    """(中文, English) one-line summary for the report's title block."""
    zone_zh = VENDING_ZONE_ZH.get(d.zone_kind, d.zone_kind)
    what_zh = "、".join(OBJECT_ZH.get(o, o) for o in d.objects) or "不明物品（背景变化）"
    if d.stops > 1:
        summary_zh = (
            f"流动摊贩在{zone_zh}反复停留（{d.stops}次），每次不足{d.min_dwell_s / 60:.0f}分钟"
        )
        summary_en = f"Mobile vendor stopping repeatedly in the {d.zone_kind} ({d.stops} stops)"
    else:
        minutes = d.dwell_s / 60
        what_en = ", ".join(d.objects) or "unlisted objects"
        summary_zh = (
            f"{zone_zh}约{d.peak_occupancy:.0%}面积被占用（{what_zh}），持续约{minutes:.1f}分钟"
        )
        summary_zh += "，有人员在旁" if d.persons_nearby else ""
        summary_en = (
            f"{d.peak_occupancy:.0%} of the {d.zone_kind} blocked ({what_en}) "
            f"for about {minutes:.1f} min"
        )
        summary_en += "; people beside it" if d.persons_nearby else ""
    if event.state == EventState.ENDED and d.end_reason == "cleared":
        summary_zh += "，已清理"
        summary_en += "; cleared"
    return summary_zh, summary_en


def detection(d: VendingDetails, _tz: ZoneInfo) -> dict[str, Any]:
    """This rule's fields of the report's ``detection`` block."""
    return {
        "dwell_seconds": d.dwell_s,
        "thresholds": {"min_dwell_s": d.min_dwell_s},
        "occupancy": d.occupancy,
        "peak_occupancy": d.peak_occupancy,
        "static_fraction": d.static_fraction,
        "persons_nearby": d.persons_nearby,
        "stops": d.stops,
        "end_reason": d.end_reason,
        "objects": [{"label": o, "label_zh": OBJECT_ZH.get(o, o)} for o in d.objects],
        "footprint": {
            "bbox_norm": list(d.footprint_box_rel),
            "polygons_norm": [[list(p) for p in poly] for poly in d.footprint_polygons_rel],
        },
    }


def draw(snap: Snapshot, d: VendingDetails) -> NDArray[np.uint8]:
    if snap.name != "alert":
        return annotate_snapshot(snap)
    box = (d.footprint_box_rel, BOX_COLOR, f"blocked {d.occupancy:.0%}")
    return annotate_snapshot(snap, [box], d.footprint_polygons_rel,
                             caption=f"{snap.caption}  {d.dwell_s / 60:.1f} min")  # fmt: skip


def build(camera: CameraConfig, rule: VendingRule, site: SiteConfig, _ev: EvidenceConfig,
          _models: SharedModels) -> VendingAnalyzer:  # fmt: skip
    return VendingAnalyzer(camera.id, rule, camera.zones, site.timezone)


KIND = RuleKind("vending", VendingRule, VendingDetails, build, summary, detection, draw)
