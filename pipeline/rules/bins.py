"""垃圾满溢 (overflowing bins) and 暴露垃圾 (rubbish with no container), judged over minutes.

Every ``interval_s`` each watched zone is compared with a reference of its normal state, using
light-robust scene features (``pipeline.rules.occupancy.scene_features``). In a ``bin_area``
zone the rim line splits the zone: a change *above* the rim is garbage piled higher than the bin
holds (or a lid left open on a full bin); a change *below* it is bags and litter on the ground
around the bin. In a ``litter_area`` zone any lasting change is rubbish dumped where there is no
container (暴露垃圾). People in the zone (COCO detections) are masked out, and an observation
where they cover much of the zone is skipped: a person putting a bag into the bin is not an
overflow.

A state must hold for ``min_observations`` consecutive observations (minutes) before an event
starts and be clean for ``clear_observations`` before it ends. The reference is taken at start
(or from ``reference_image``) and refreshed whenever the zone has been clean and empty of
people for ``refresh_after_s``, so slow changes of light and season are followed.

When the optional learned model (models/bins_overflow.onnx, trained on the public garbage
images) is available its probability for the zone crop is reported; with ``min_model_score`` > 0
it must also agree before an observation counts as overflowing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from pipeline.config_base import (
    ID_PATTERN,
    RuleBase,
    ScheduleWindow,
    ZoneConfig,
    ZoneKind,
    resolve_under,
)
from pipeline.detect.detector import COCO_IDS, OnnxScorer
from pipeline.evidence.labels import iso
from pipeline.rules.base import (
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
from pipeline.rules.occupancy import features_differ, scene_features
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

_PERSON = COCO_IDS["person"]
_THUMB_W = 160
_LUMA_DELTA = 16.0
_CHROMA_DELTA = 11.0
_OCCLUDED = 0.2  # skip the observation when people cover this much of the zone


# -- configuration (cameras.toml ``[[cameras.rules]]`` with analyzer = "bins")


class BinRule(RuleBase):
    """垃圾满溢 (bin_area zones) and 暴露垃圾 (litter_area zones): judged over minutes."""

    analyzer: Literal["bins"]
    id: str = Field(default="bins", pattern=ID_PATTERN)
    zones: list[str] | None = None  # default: every bin_area and litter_area zone
    # The zone is looked at once per interval; the state must hold for min_observations in a
    # row before an event starts (no alert on a passing person or a bag set down for a moment)
    # and clean for clear_observations in a row before it ends.
    interval_s: float = Field(default=30.0, gt=0.0)
    min_observations: int = Field(default=4, ge=1)
    clear_observations: int = Field(default=3, ge=1)
    # Fractions of the area above the rim / of the ground that must differ from the normal
    # state. Lower = more sensitive to small bags, higher = fewer alerts on shadows.
    above_rim_fraction: float = Field(default=0.12, gt=0.0, le=1.0)
    ground_fraction: float = Field(default=0.08, gt=0.0, le=1.0)
    # A reference of the normal state is taken when the zone has been judged clean and empty of
    # people for this long (and on start-up); an explicit image can be given instead.
    refresh_after_s: float = Field(default=900.0, gt=0.0)
    reference_image: Path | None = None
    # Optional learned check (models/bins_overflow.onnx): minimum probability that the zone
    # shows garbage at a container; 0 records the score without gating on it.
    min_model_score: float = Field(default=0.0, ge=0.0, le=1.0)
    schedule: list[ScheduleWindow] = Field(default_factory=list)

    ZONE_KINDS: ClassVar[frozenset[ZoneKind]] = frozenset({ZoneKind.BIN_AREA, ZoneKind.LITTER_AREA})

    def zone_ids(self) -> list[str] | None:
        return self.zones

    def shared_models(self) -> frozenset[str]:
        return frozenset({"bins_classifier"})

    def with_paths_under(self, base: Path) -> Self:
        if self.reference_image is None:
            return self
        return self.model_copy(
            update={"reference_image": resolve_under(base, self.reference_image)}
        )


# -- what its events carry


@dataclass(frozen=True, slots=True)
class BinDetails(RuleDetails):
    """A bin zone judged overflowing (垃圾满溢) or a litter zone with rubbish (暴露垃圾)."""

    zone_kind: str
    above_rim_fraction: float  # above the rim, differing from normal (worst look of the episode)
    ground_fraction: float  # the rest (bin body, ground around it), same look
    changed_box_rel: Box
    changed_polygons_rel: tuple[tuple[tuple[float, float], ...], ...]
    model_score: float | None  # learned "garbage at a container" probability, if a model is set
    observations: int  # consecutive observations in the current state
    reference_time_s: float | None  # when the normal-state reference was taken
    duration_s: float
    end_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Look:
    above: float
    ground: float
    changed: NDArray[np.bool_]
    model_score: float | None


@dataclass
class _BinState:
    zone: ZoneConfig
    reference: NDArray[np.float32] | None = None
    reference_time: float | None = None
    clean_since: float | None = None
    next_eval: float = 0.0
    bad: int = 0
    clean: int = 0
    bad_since: float | None = None
    event_id: str | None = None
    alerted_at: float = 0.0
    last_bad: float = 0.0
    # The worst look of the current episode: reports (the ended one included, when the area
    # is clean again) carry what was there, not what is left.
    worst: _Look | None = None
    frame_size: tuple[int, int] = (0, 0)


class BinAnalyzer:
    """One bins rule on one camera (see module docstring)."""

    decode_mode = DecodeMode.KEYFRAMES
    motion: MotionNeeds | None = None
    clean_pictures = True
    classes = frozenset({_PERSON})

    def __init__(
        self,
        camera_id: str,
        rule: BinRule,
        zones: list[ZoneConfig],
        timezone: str,
        *,
        scorer: OnnxScorer | None = None,
        new_id: IdFactory = new_event_id,
    ) -> None:
        self.camera_id = camera_id
        self.rule = rule
        self.max_frame_gap_s = rule.interval_s  # it looks once per interval anyway
        self.timer_due_s = math.inf  # its looks are spaced by its interval anyway
        self.rule_id = rule.id
        watched = watched_zones(zones, {ZoneKind.BIN_AREA, ZoneKind.LITTER_AREA}, rule.zones)
        self._states = {z.id: _BinState(z) for z in watched}
        self._schedule = Schedule(rule.schedule, timezone)
        self._scorer = scorer
        self._new_id = new_id
        self._reference_image: NDArray[np.uint8] | None = None
        if rule.reference_image is not None:
            self._reference_image = read_rule_image(
                rule.reference_image, camera_id, rule.id, "reference_image"
            )

    # -- public ---------------------------------------------------------------------------

    def observe(self, frame: Frame, detections: Detections) -> list[EventNotice]:
        t = frame.time_s
        if self._reference_image is not None:
            ref = cv2.resize(self._reference_image, frame.size, interpolation=cv2.INTER_AREA)
            for st in self._states.values():
                st.reference = self._features(np.asarray(ref, np.uint8), st.zone)
                st.reference_time = t
            self._reference_image = None
        notices: list[EventNotice] = []
        for st in self._states.values():
            if t < st.next_eval:
                continue
            st.next_eval = t + self.rule.interval_s
            notices.extend(self._observe_zone(st, frame, detections))
        return notices

    def observe_motion(self, sample: MotionSample) -> list[EventNotice]:  # noqa: ARG002
        return []

    def close(self, time_s: float, reason: str) -> list[EventNotice]:  # noqa: ARG002
        notices = [
            self._notice(st, EventState.ENDED, None, None, end_reason=reason)
            for st in self._states.values()
            if st.event_id is not None
        ]
        for st in self._states.values():
            st.event_id = None
            st.worst = None
        return notices

    # -- one zone -------------------------------------------------------------------------

    def _observe_zone(self, st: _BinState, frame: Frame, dets: Detections) -> list[EventNotice]:
        t = frame.time_s
        zone_mask = self._zone_mask(st.zone, frame.size)
        people = self._people_mask(dets, st.zone, frame.size, zone_mask.shape)
        covered = float((people & zone_mask).sum()) / max(1, int(zone_mask.sum()))
        if covered >= _OCCLUDED:
            return []  # someone is at the bin: no judgement now
        feats = self._features(frame.image, st.zone)
        if st.reference is None:
            st.reference, st.reference_time, st.clean_since = feats, t, t
            return []
        look = self._look(st, frame, feats, zone_mask & ~people)
        model_ok = self.rule.min_model_score <= 0 or (
            look.model_score is not None and look.model_score >= self.rule.min_model_score
        )
        if st.zone.kind == ZoneKind.LITTER_AREA:
            bad = look.ground >= self.rule.ground_fraction and model_ok
        else:
            bad = (
                look.above >= self.rule.above_rim_fraction
                or look.ground >= self.rule.ground_fraction
            ) and model_ok
        if bad:
            st.bad += 1
            st.clean = 0
            st.last_bad = t
            if st.worst is None or look.above + look.ground > st.worst.above + st.worst.ground:
                st.worst, st.frame_size = look, frame.size
            st.clean_since = None
            if st.bad_since is None:
                st.bad_since = t
        else:
            st.clean += 1
            st.bad = 0
            if st.clean_since is None:
                st.clean_since = t
            if st.event_id is None:
                st.bad_since = None
                st.worst = None
                if t - st.clean_since >= self.rule.refresh_after_s and covered == 0.0:
                    st.reference, st.reference_time, st.clean_since = feats, t, t
        if st.event_id is None:
            if st.bad >= self.rule.min_observations and self._schedule.active(t):
                st.event_id = self._new_id(t)
                st.alerted_at = t
                return [self._notice(st, EventState.STARTED, frame, look)]
            return []
        if st.clean >= self.rule.clear_observations:
            notice = self._notice(st, EventState.ENDED, frame, look, end_reason="clean")
            st.event_id = None
            st.bad_since = None
            st.worst = None
            st.reference, st.reference_time, st.clean_since = feats, t, t
            return [notice]
        if bad and st.bad % max(1, round(600 / self.rule.interval_s)) == 0:
            return [self._notice(st, EventState.UPDATED, frame, look)]  # every ~10 minutes
        return []

    # -- geometry -------------------------------------------------------------------------

    @staticmethod
    def _bbox(zone: ZoneConfig, size: tuple[int, int]) -> tuple[int, int, int, int]:
        w, h = size
        xs = [x for x, _ in zone.polygon]
        ys = [y for _, y in zone.polygon]
        return (max(0, int(min(xs) * w)), max(0, int(min(ys) * h)),
                min(w, int(np.ceil(max(xs) * w))), min(h, int(np.ceil(max(ys) * h))))  # fmt: skip

    def _features(self, image: NDArray[np.uint8], zone: ZoneConfig) -> NDArray[np.float32]:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = self._bbox(zone, (w, h))
        crop = image[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)]
        return scene_features(crop, _THUMB_W, light_sigma=None)  # a bin zone is small

    def _thumb_transform(
        self, zone: ZoneConfig, size: tuple[int, int], shape: tuple[int, ...]
    ) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self._bbox(zone, size)
        return x1, y1, shape[1] / max(1, x2 - x1), shape[0] / max(1, y2 - y1)

    def _zone_mask(self, zone: ZoneConfig, size: tuple[int, int]) -> NDArray[np.bool_]:
        x1, y1, x2, y2 = self._bbox(zone, size)
        th = max(8, round(_THUMB_W * (y2 - y1) / max(1, x2 - x1)))
        ox, oy, sx, sy = self._thumb_transform(zone, size, (th, _THUMB_W))
        w, h = size
        pts = (np.array(zone.polygon) * [w, h] - [ox, oy]) * [sx, sy]
        m = np.zeros((th, _THUMB_W), np.uint8)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
        return np.asarray(m > 0, np.bool_)

    def _people_mask(
        self, dets: Detections, zone: ZoneConfig, size: tuple[int, int], shape: tuple[int, ...]
    ) -> NDArray[np.bool_]:
        m = np.zeros(shape[:2], np.uint8)
        keep = (dets.class_id == _PERSON) & (dets.confidence >= 0.3)
        ox, oy, sx, sy = self._thumb_transform(zone, size, shape)
        for x1, y1, x2, y2 in dets.xyxy[keep]:
            top_left = (round((x1 - ox) * sx) - 2, round((y1 - oy) * sy) - 2)
            bottom_right = (round((x2 - ox) * sx) + 2, round((y2 - oy) * sy) + 2)
            cv2.rectangle(m, top_left, bottom_right, 1, -1)
        return np.asarray(m > 0, np.bool_)

    def _above_rim(
        self, zone: ZoneConfig, size: tuple[int, int], shape: tuple[int, ...]
    ) -> NDArray[np.bool_]:
        """Thumbnail pixels above the rim line (the whole zone counts as ground without one)."""
        if zone.rim is None:
            return np.zeros(shape[:2], np.bool_)
        ox, oy, sx, sy = self._thumb_transform(zone, size, shape)
        w, h = size
        (ax, ay), (bx, by) = [((x * w - ox) * sx, (y * h - oy) * sy) for x, y in zone.rim]
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
        line_y = ay + (by - ay) * (xx - ax) / (bx - ax) if bx != ax else np.full(xx.shape, ay)
        return np.asarray(yy < line_y, np.bool_)

    def _look(
        self, st: _BinState, frame: Frame, feats: NDArray[np.float32], valid: NDArray[np.bool_]
    ) -> _Look:
        assert st.reference is not None
        changed = features_differ(feats, st.reference, _LUMA_DELTA, _CHROMA_DELTA) & valid
        changed = (
            cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            > 0
        )
        above = self._above_rim(st.zone, frame.size, feats.shape) & valid
        ground = valid & ~above
        score = None
        if self._scorer is not None:
            x1, y1, x2, y2 = self._bbox(st.zone, frame.size)
            score = round(self._scorer.score(frame.image[y1:y2, x1:x2]), 4)
        return _Look(
            above=float((changed & above).sum()) / max(1, int(above.sum())),
            ground=float((changed & ground).sum()) / max(1, int(ground.sum())),
            changed=np.asarray(changed, np.bool_),
            model_score=score,
        )

    # -- events ---------------------------------------------------------------------------

    def _outline(
        self, st: _BinState, changed: NDArray[np.bool_], size: tuple[int, int]
    ) -> tuple[Box, tuple[tuple[tuple[float, float], ...], ...]]:
        if not changed.any():
            return (0.0, 0.0, 0.0, 0.0), ()
        ox, oy, sx, sy = self._thumb_transform(st.zone, size, changed.shape)
        w, h = size
        contours, _ = cv2.findContours(
            changed.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        polys = []
        for c in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
            pts = cv2.approxPolyDP(c, 1.5, True).reshape(-1, 2)
            if len(pts) >= 3:
                polys.append(
                    tuple(
                        (round(float((ox + px / sx) / w), 4), round(float((oy + py / sy) / h), 4))
                        for px, py in pts
                    )
                )
        ys, xs = np.nonzero(changed)
        box = (
            round(float((ox + xs.min() / sx) / w), 4),
            round(float((oy + ys.min() / sy) / h), 4),
            round(float((ox + (xs.max() + 1) / sx) / w), 4),
            round(float((oy + (ys.max() + 1) / sy) / h), 4),
        )
        return box, tuple(polys)

    def _notice(
        self,
        st: _BinState,
        state: EventState,
        frame: Frame | None,
        look: _Look | None,
        *,
        end_reason: str | None = None,
    ) -> EventNotice:
        assert st.event_id is not None
        box: Box = (0.0, 0.0, 0.0, 0.0)
        polys: tuple[tuple[tuple[float, float], ...], ...] = ()
        shown = st.worst if st.worst is not None else look
        if shown is not None and st.frame_size != (0, 0):
            box, polys = self._outline(st, shown.changed, st.frame_size)
        started = st.bad_since if st.bad_since is not None else st.alerted_at
        details = BinDetails(
            zone_kind=str(st.zone.kind),
            above_rim_fraction=round(shown.above, 4) if shown else 0.0,
            ground_fraction=round(shown.ground, 4) if shown else 0.0,
            changed_box_rel=box, changed_polygons_rel=polys,
            model_score=shown.model_score if shown else None,
            observations=st.bad if state != EventState.ENDED else st.clean,
            reference_time_s=st.reference_time,
            duration_s=round(st.last_bad - started, 2),
            end_reason=end_reason,
        )  # fmt: skip
        ended_at = None
        if state == EventState.ENDED:
            ended_at = frame.time_s if frame is not None else st.last_bad
        et = (
            EventType.BIN_OVERFLOW
            if st.zone.kind == ZoneKind.BIN_AREA
            else EventType.EXPOSED_GARBAGE
        )
        event = Event(
            event_id=st.event_id, event_type=et, state=state, camera_id=self.camera_id,
            zone_id=st.zone.id, rule_id=self.rule_id, started_at=started,
            alerted_at=st.alerted_at, updated_at=st.last_bad,
            ended_at=ended_at,
            score=round(max(look.above, look.ground) if look else 0.5, 4),
            details=details,
        )  # fmt: skip
        return EventNotice(event=event, frame=frame)


# -- what evidence shows of this rule: report section, snapshots ---------------------------


def summary(event: Event, d: BinDetails) -> tuple[str, str]:
    """(中文, English) one-line summary for the report's title block."""
    minutes = d.duration_s / 60
    if d.zone_kind == "litter_area":
        summary_zh = (
            f"无容器处出现堆放垃圾（约{d.ground_fraction:.0%}地面），持续约{minutes:.0f}分钟"
        )
        summary_en = (
            f"Rubbish on open ground ({d.ground_fraction:.0%} of the area), {minutes:.0f} min"
        )
    else:
        summary_zh = (
            f"垃圾箱满溢：桶口以上变化{d.above_rim_fraction:.0%}、周边地面{d.ground_fraction:.0%}，"
            f"持续约{minutes:.0f}分钟"
        )
        summary_en = (
            f"Bin overflowing: {d.above_rim_fraction:.0%} above the rim and "
            f"{d.ground_fraction:.0%} of the ground around it changed, {minutes:.0f} min"
        )
    if event.state == EventState.ENDED and d.end_reason == "clean":
        summary_zh += "，已清理"
        summary_en += "; cleaned"
    return summary_zh, summary_en


def detection(d: BinDetails, tz: ZoneInfo) -> dict[str, Any]:
    """This rule's fields of the report's ``detection`` block."""
    return {
        "above_rim_fraction": d.above_rim_fraction,
        "ground_fraction": d.ground_fraction,
        "model_score": d.model_score,
        "observations": d.observations,
        "reference_taken_at": iso(d.reference_time_s, tz),
        "duration_seconds": d.duration_s,
        "end_reason": d.end_reason,
        "changed": {
            "bbox_norm": list(d.changed_box_rel),
            "polygons_norm": [[list(p) for p in poly] for poly in d.changed_polygons_rel],
        },
    }


def draw(snap: Snapshot, d: BinDetails) -> NDArray[np.uint8]:
    if snap.name != "alert":
        return annotate_snapshot(snap)
    caption = f"{snap.caption}  above rim {d.above_rim_fraction:.0%} ground {d.ground_fraction:.0%}"
    return annotate_snapshot(snap, (), d.changed_polygons_rel, caption=caption)


def build(camera: CameraConfig, rule: BinRule, site: SiteConfig, _ev: EvidenceConfig,
          models: SharedModels) -> BinAnalyzer:  # fmt: skip
    return BinAnalyzer(camera.id, rule, camera.zones, site.timezone, scorer=models.bins)


KIND = RuleKind("bins", BinRule, BinDetails, build, summary, detection, draw)
