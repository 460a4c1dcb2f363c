"""高空抛物: falling objects on a calibrated façade, with the floor and window they came from.

Input is the per-frame motion of ``pipeline.rules.motion`` (small blobs at full frame rate
inside the façade zones). Blobs are linked into tracks by predicting each track one frame ahead with
a constant-acceleration model. A track is a throw when, in metres on the façade plane (the
calibration's homography removes the camera's perspective, so "g" means the same at every
height):

* it starts on (or right next to) the calibrated façade,
* it descends almost monotonically over at least ``min_fall_floors`` floors,
* a parabola z(t) = z0 + v·t − a·t²/2 fits it tightly, with ``a`` between ``min_g_ratio`` and
  ``max_g_ratio`` of g (drag lowers it; perspective and fit noise move it both ways),
* it reaches ``min_speed_mps`` and does not zig-zag sideways,
* most of its descent was seen frame by frame, not bridged across gaps of unseen frames, and
  no one gap holds much of it.

Distractors fail those tests for physical reasons: birds glide, flap and rise (no gravity-like
acceleration, non-monotonic), leaves and paper reach a terminal speed of 1-2 m/s and flutter
sideways, insects near the lens are huge and erratic, lights and reflections do not travel,
people and laundry on balconies move less than a floor. Rain and snow are many parallel falling
tracks at once: ``max_parallel_tracks`` of them suppress alerts for a while. Exposure jumps and
camera shake arrive as "global change" frames and reset tracking.

A fall that fails because its track lost the object (unseen for a stretch, then a new track
a frame) is looked at again once its track has ended: its curve is followed through the blobs
of the frames around it, whichever track took them, and tested again (``_second_look``).

The origin is the apex of the fitted parabola (a dropped object is released at rest; a tossed one
is released a little below its apex), with an uncertainty from the fit and from the unseen part
of the fall. Ranked (floor, window column) candidates come from integrating that uncertainty over
the façade grid. An event is raised as soon as a track qualifies (STARTED) and completed with the
whole trajectory when the track ends (ENDED); 高空抛物 is never closed without human review.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from pipeline.config_base import (
    ID_PATTERN,
    FacadeConfig,
    RuleBase,
    ZoneConfig,
    ZoneKind,
    whole_step,
)
from pipeline.evidence.labels import iso
from pipeline.rules.base import (
    IdFactory,
    RuleKind,
    SharedModels,
    Snapshot,
    new_event_id,
)
from pipeline.rules.camera_model import CameraFit, camera_for, describe, ground_z, warnings
from pipeline.rules.facade import FacadeGrid
from pipeline.rules.motion import MotionNeeds
from pipeline.rules.trajectory import TOSS_PRIOR_MEAN, Ballistic, fit_ballistic
from pipeline.rules.zones import ZoneSet
from pipeline.types import (
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

G = 9.81
# Frames a track may go unseen (a dark object over dark glass, a balcony rail) before it ends:
# young tracks (mostly noise) end quickly, established falls are predicted across the gap.
_MAX_MISSES_YOUNG = 2
_MAX_MISSES = 6
# A fall short only of its drop follows its fitted 3-D path (see _Guide) across this many
# unseen frames (a third of a second at 25 fps)…
_MAX_MISSES_GUIDED = 8
# … taking a blob within the base gate and half its blob's size of the path's prediction,
# plus this share of the way extrapolated since its last point: the fitted path predicts
# better than the last few points do, so a neighbour's blob 15 px beside it is mostly left
# (test_a_blinking_fall_short_of_its_drop_follows_its_fitted_path).
_GUIDE_GATE_SHARE = 0.06
_ESTABLISHED = 8
_MAX_TRACKS = 256
_FIT_WINDOW = 8
_WEATHER_HOLD_S = 5.0
# Rain seen as streaks: this many tall, thin moving blobs (height ≥ _STREAK_ASPECT × width and
# ≥ _STREAK_MIN_PX) in each of _STREAK_FRAMES frames in a row. Measured on the generated
# scenes: rain has ≥ 5 in 84-96 % of frames, at dusk too, where faint streaks break up and too
# few tracks last long enough to count as falling together; scenes without rain (snow, birds,
# balconies, dusk) in ≤ 0.2 % of frames, never 3 in a row; the real clips at most 2.
_STREAKS_FOR_RAIN = 5
_STREAK_FRAMES = 3
_STREAK_ASPECT = 2.5
_STREAK_MIN_PX = 6.0
_GLOBAL_HOLD_S = 1.0
# A global change this many frames in a row at most is a low-bitrate camera refreshing its
# picture at a keyframe (or a flicker): the tracks going on across it only miss the frame;
# a longer one (shake, exposure jump) ends them. Tracks born around it are held for
# _GLOBAL_HOLD_S (the background is stale), not those that were falling already (3-D
# benchmark, office seed 4711 at 384 kbit/s: two such frames in the middle of a fall ended
# it, and the hold then refused the rest of it).
_GLOBAL_KEEP_FRAMES = 2
_MAX_LATERAL_MPS = 10.0
_MAX_LATERAL_GAIN_MPS = 1.5  # generated throws: ≤ 0.5 m/s (fit noise)
_MAX_UPWARD_MPS = 6.0  # a throw may start upwards; faster than this is not a hand
_SAME_THROW_S = 3.0
_MAX_ENTRY_MPS = 12.0  # ≈ 1.2 s / 7 m of free fall before the object is first detected
_RETEST_POINTS = 3
# ...and a track that has lived this long without passing, after an eighth of its points: birds,
# people on balconies and lights that span a floor live for many seconds and were re-fitted
# every 3 points all along (throughput benchmark's façade stream: 91 % of all fits, ~0.7 ms a
# frame per camera); a fall is seen for 1-3 s, and every track is fitted once more as it ends.
_RETEST_AFTER_S = 3.0
_RETEST_SHARE = 8
# Share of a fall's descent that must be seen frame to frame (steps missing at most one frame,
# net drop of each watched stretch): generated throws ≥ 0.46 (a 40 px object at dusk, lost
# against dark glass), real clips ≥ 0.79; chains of unrelated blobs that hop across gaps
# at most 0.26 (benchmark seeds 5991, 6404, 17879).
_MIN_SEEN_DESCENT = 1.0 / 3.0
# ...and the most of it that one unseen gap may hold: generated throws ≤ 0.27, real clips ≤ 0.14;
# an insect at the lens chained through noise blobs across 7 unseen frames 0.56 (seed 10140).
_MAX_UNSEEN_GAP = 0.4
# 3-D fit: sum of squared prior deviations (σ units) a throw may need (a 4 m/s outward throw
# released 2 s before it is first seen costs ~4).
_MAX_PRIOR_COST = 12.0
# The fit's rms pixel error may be this many times the centroid noise (sigma): blobs of a
# tumbling, motion-blurred object jitter more than a steady one's.
_FIT_TOL = 1.5
# An object thrown outward past a camera close to the wall moves sideways in the image about
# twice as far as down (the benchmark's office view); a chain drifting up or along the image
# does not move down at all. "Down" is along the façade's plumb lines (_plumb_descent).
_MIN_IMAGE_DROP_PX = 20.0
_MIN_IMAGE_DROP_SHARE = 0.25
# Before fitting in 3-D: the drop on the façade plane must be at least this share of the
# minimum (an outward throw's image, traced back to the wall, falls less than it does).
_ROUGH_DROP_SHARE = 0.3
# A point is "in foliage" where its neighbourhood moved in at least this share of recent
# frames (pipeline.rules.motion's activity map; the façade itself: ~0, swaying leaves 0.1-0.6); a
# fall with this share of its points there must show _FOLIAGE_MIN_POINTS points and half its
# minimum drop away from such places.
_ACTIVE = 0.05
_FOLIAGE_SHARE = 0.25
# Whatever the view allows, a fall must show at least this much of a floor (see _min_drop).
_MIN_DROP_FLOORS = 0.8
_FOLIAGE_MIN_POINTS = 12
_FOLIAGE_GATE = 0.5  # share of the association gate left for blobs in foliage
# ...or, watched wholly among leaves, twice the points over this share of the frame's height,
# or the points over twice the share: chains of leaf blobs that pass every physics test stay
# local (≤ 0.16 of the height in the development clips' looped real foliage), a fall crosses
# the canopy (a big object's blurred blobs touch the leaves all the way down; falling fast,
# it is seen in few frames: 3-D benchmark, office seed 2026, 15 frames over 0.57, 28 a
# second), where it was seen frame after frame: the leaf chains' reach was measured at 25-30
# fps, and a dozen blobs a third of a second apart are what leaf chains make now and then.
_FOLIAGE_LONG_DROP = 0.25
_FOLIAGE_SEEN_PER_S = 15.0
# Share of the watched height below a release that a fall must cover when that is less than
# min_fall_floors (the object lands or leaves the view before).
_VISIBLE_DROP_SHARE = 0.5
# Weight of the difference in blob size (px of side) against distance (px) when a track
# chooses among the blobs in its gate (see _associate).
_SIZE_COST = 0.5
# Largest association step of an established track beyond its blob's size: 30 m/s seen from
# 25 m through a 900 px lens at 25 fps is 43 px a frame.
_MAX_GATE_PX = 80.0
# ...and its allowance for centroid noise, whatever the blob's size and speed.
_GATE_BASE_PX = 6.0
# Across its predicted step, an established track that moved steadily one way (its last
# _STEADY_POINTS points: the net move at least _STEADY_SHARE of the path and its blob's size a
# point; see _on_path) takes blobs only this share of the gate's speed allowance away from its
# path (plus its size): a fall's prediction errs mostly along its path (the speed and the
# frames it went unseen), hardly across it; a leaf or noise speck beside the path, taken in a
# frame where the object went unseen, spoiled the whole fall's fit (3-D benchmark, office seed
# 6060 scene 2: a blob 68 px beside a 30 px-a-frame fall, 89 px from its prediction, inside
# the round gate of 100 px).
_ACROSS_GATE = 0.5
_STEADY_POINTS = 4
_STEADY_SHARE = 0.8
# An established falling track shares a blob another one took only if it went unseen for at
# most this many frames just before (see _associate).
_SHARE_MISSES = 1
# A track may continue one that ended at most this long before it began (see _stitch)...
_STITCH_S = 0.3
# (after dropping the last points of the earlier one that came after it lost the object: the
# leaf, the noise or the patch of foliage it took while the object went unseen or merged with
# the leaves); an ended track stays a candidate this long after its end, time for the next
# piece to become established (its own retirement takes ~0.25 s).
_STITCH_KEEP_S = 1.5
# A track seen again after more than this many frame intervals may have come back on another
# object (see _evaluate).
_RESUMED_AFTER_FRAMES = 3.5
# A track whose blobs change size this many times over from one frame to the next has gone
# over to another object (see size_switches).
_SIZE_SWITCH = 6.0
# A last point this far (px, plus the blob's size and one step) off the curve through the
# points before it is not the object (see _prune).
_PRUNE_PX = 4.0
# A failed fall is looked at again this long after its track ended (see _second_look): time
# for the object to come out of an unseen stretch (_MAX_UNSEEN_GAP) and be seen a few frames.
_SECOND_LOOK_S = 0.6
# ...over the blobs of this many recent seconds, kept for it.
_HISTORY_S = 3.0
# ...from the track's last points, which must have gone down the image by at least this many
# times their blob's side.
_SECOND_LOOK_DROP = 2.0
# ...and down the image at each of its last this many steps.
_DOWN_STEPS = 4
# ...keeping this many ways to follow it, each frame (see _chains).
_BEAM = 3
# Below this height above the ground (in floors) a dropped object is not 高空抛物: a 2nd-floor
# window sill is 1.3 floors up, a 3rd-floor one 2.3.
_MIN_RELEASE_FLOORS = 1.5
# Centroid noise of the 3-D fit (px, plus this much per px of blob size): it grows with the
# blob (motion blur, fragments) and with the analysis scale's quantisation.
_FIT_PX_BASE = 1.5
_FIT_PX_PER_SIZE = 0.25


# -- configuration (cameras.toml ``[[cameras.rules]]`` with analyzer = "throwing")


class ThrowingRule(RuleBase):
    """高空抛物: an object falling down a calibrated façade with gravity-like acceleration."""

    analyzer: Literal["throwing"]
    id: str = Field(default="throwing", pattern=ID_PATTERN)
    facades: list[str] | None = None  # default: every façade of the camera
    # A fall must cover at least this many floors before it is reported.
    min_fall_floors: float = Field(default=2.0, gt=0.0, le=100.0)
    # Fitted downward acceleration as a fraction of g: drag lowers it, perspective and fit noise
    # move it both ways. Leaves, paper and gliding birds fall at (almost) constant speed.
    min_g_ratio: float = Field(default=0.35, gt=0.0, le=1.0)
    max_g_ratio: float = Field(default=1.8, ge=1.0, le=5.0)
    # Speed the object must reach (m/s); paper and leaves stay below ~2 m/s.
    min_speed_mps: float = Field(default=3.0, ge=0.0)
    min_points: int = Field(default=6, ge=4, le=100)
    # Motion threshold in grey levels above the frame's noise level, and blob size limits (px
    # at full resolution). Raising min_blob_px drops cigarette-sized objects.
    motion_threshold: float = Field(default=10.0, gt=0.0, le=128.0)
    min_blob_px: int = Field(default=3, ge=1)
    max_blob_px: int = Field(default=4000, ge=1)
    # Process the façade region at this fraction of full resolution: 1/n for a whole n (an
    # exact n×n area average is ~30× cheaper than a fractional resize). At 1/2 an object of
    # ≥ 3 px still fully covers one averaged pixel, so it keeps its contrast, for a quarter of
    # the pixels (benchmarks/results/throughput_throwing.json, throwing.json).
    analysis_scale: float = Field(default=0.5, ge=0.25, le=1.0)
    # This many simultaneous falling tracks means rain or snow, not a throw.
    max_parallel_tracks: int = Field(default=5, ge=1)

    ZONE_KINDS: ClassVar[frozenset[ZoneKind]] = frozenset({ZoneKind.FACADE})
    USES_FACADES: ClassVar[bool] = True
    NEEDS_EVERY_FRAME: ClassVar[bool] = True

    def facade_ids(self) -> list[str] | None:
        return self.facades

    @field_validator("analysis_scale")
    @classmethod
    def _whole_step(cls, v: float) -> float:
        whole_step(v)
        return v


# -- what its events carry


@dataclass(frozen=True, slots=True)
class OriginCandidate:
    """One possible origin of a thrown object, with its probability under the fit."""

    building: str
    unit: str | None
    floor: int
    column: str
    probability: float


@dataclass(frozen=True, slots=True)
class ThrowingDetails(RuleDetails):
    """A fall reconstructed on a calibrated façade (高空抛物).

    Trajectory times are seconds after ``t0_s`` (the first detected position); coordinates are
    full-resolution image pixels. Fit values are in metres on the façade plane, z up.
    """

    facade_id: str
    building: str
    unit: str | None
    frame_size: tuple[int, int]
    t0_s: float
    trajectory: tuple[tuple[float, float, float], ...]  # (t, x, y)
    accel_mps2: float  # fitted downward acceleration
    g_ratio: float
    v0_z_mps: float  # vertical speed at t0 (negative: already falling)
    v0_x_mps: float
    final_speed_mps: float
    fall_height_m: float
    fit_rms_m: float
    release_time_s: float  # relative to t0: apex of the fitted parabola (≤ 0 when dropped)
    release_xz_m: tuple[float, float]
    release_sigma_m: tuple[float, float]
    release_px: tuple[float, float]
    floor_range: tuple[int, int]  # lowest (first detection) .. highest (release) floor
    candidates: tuple[OriginCandidate, ...]  # ranked, most likely first
    object_size_px: float
    fitted_curve: tuple[tuple[float, float], ...]  # image points of the fitted path, for drawing
    # "3d": a ballistic body fitted through the camera solved from the calibration (release
    # point and velocity in the world, fit error in pixels); "plane": the façade-plane parabola
    # (no camera fits the calibration).
    model: str = "plane"
    fit_rms_px: float | None = None
    release_out_m: float | None = None  # release point's distance out from the façade
    outward_speed_mps: float | None = None
    # first seen coming into the watched area already falling (over its edge or the frame's):
    # the release lies outside what was seen, extrapolated
    entered_view: bool = False


_Point = tuple[float, float, float, float, float]  # (time_s, x, y, area, activity)
_Num = TypeVar("_Num", float, NDArray[np.float64])  # one track's sums, or every track's


@dataclass(frozen=True, slots=True)
class _Seen:
    """One frame's blobs, kept for a second look at a failed fall (see _second_look)."""

    t: float
    xy: NDArray[np.float32]
    area: NDArray[np.float32]
    activity: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _Guide:
    """A track's 3-D fit, followed while the track is short only of its drop.

    At a camera's 384 kbit/s a small object blinks (seen 2-4 frames, gone 2-4: its contrast
    against the wall behind it swings with every slab and window it passes), and a track
    predicting from its last few points loses it at the first long gap or takes a neighbour's
    blob there (3-D benchmark's kept misses: the object's blob found in 65 % of the frames of
    its fall, the track lost after 3.6 m of the 5 m needed). The fitted fall predicts where
    the object must be however long it went unseen."""

    ballistic: Ballistic
    camera: CameraFit
    t0: float  # analyzer time (see ThrowingAnalyzer._clock) of the fall's first point

    def at(self, t: float) -> tuple[float, float] | None:
        uv = self.camera.project(self.ballistic.position(np.array([t - self.t0])))[0]
        return (float(uv[0]), float(uv[1])) if np.all(np.isfinite(uv)) else None


@dataclass
class _Track:
    points: list[tuple[float, float, float, float, float]]  # (time_s, x, y, area, activity)
    facade: int  # index into the analyzer's façade grids
    misses: int = 0
    event_id: str | None = None
    alerted_at: float = 0.0
    verdict: _Fit | None = None
    part_of: str | None = None  # a second view of a throw already reported (blob fragment)
    xz: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))  # points in metres
    z_span: tuple[float, float] = (math.inf, -math.inf)  # lowest and highest of xz's z
    tested_at: int = 0  # number of points when the physics test last ran
    stitched: bool = False  # looked for a track it continues (see _stitch)
    joined: int = 0  # points at its front that came from the track it continues
    foreign: int = 0  # points at its front found to be another object's (see size_switches)
    guide: _Guide | None = None
    # _stitch's piece test per end (see descents), and the point list it was made for
    _descents: list[bool] = field(default_factory=list, repr=False, compare=False)
    _descents_of: list[_Point] | None = field(default=None, repr=False, compare=False)

    def descents(self, n: int) -> list[bool]:
        """Per end up to ``n``: whether ``points[end - _ESTABLISHED : end]`` is a descent
        that a later piece may continue (``_descends``). _stitch asks it of every track
        for every new one among leaves, at up to ten ends each (9,400 times a second of the
        tower clip's foliage); a piece's answer never changes, as points are only added at
        the end (a track given other points gets a new list, and the answers start over)."""
        if self._descents_of is not self.points:
            self._descents_of, self._descents = self.points, []
        done = self._descents
        for end in range(len(done), n + 1):
            done.append(end >= _ESTABLISHED and _descends(self.points[end - _ESTABLISHED : end]))
        return done

    def descending(self) -> bool:
        """Down the image at each of its last three steps."""
        p = self.points[-4:]
        return len(p) == 4 and all(b[2] > a[2] for a, b in itertools.pairwise(p))

    def side(self) -> float:
        """The object's recent blob size (px, square root of the median area of the last three
        points). Asked of every track in every frame: plain floats, not statistics.median."""
        areas = sorted(p[3] for p in self.points[-3:])
        mid = areas[1] if len(areas) == 3 else 0.5 * (areas[0] + areas[-1])
        return math.sqrt(max(1.0, mid))

    def speed_px(self) -> float:
        if len(self.points) < 2:
            return 0.0
        (t1, x1, y1, *_), (t2, x2, y2, *_) = self.points[-2], self.points[-1]
        return math.hypot(x2 - x1, y2 - y1) / max(t2 - t1, 1e-3)


# Least squares over a track's ≤ 8 recent points in plain floats (np.polyfit costs ~100 µs),
# the sums in order, one term at a time, as _predictions makes them for all tracks at once
# (Python 3.12's sum() of floats compensates its rounding: other numbers).
def _linear_at(ts: list[float], vs: list[float], h: float) -> float:
    n = len(ts)
    st = sv = stt = stv = 0.0
    for t, v in zip(ts, vs, strict=True):
        st += t
        sv += v
        stt += t * t
        stv += t * v
    den = n * stt - st * st
    if abs(den) < 1e-12:
        return vs[-1]
    slope = (n * stv - st * sv) / den
    return (sv - slope * st) / n + slope * h


def _quadratic(ts: list[float], vs: list[float]) -> tuple[float, float, float] | None:
    """Least-squares (a, b, c) of a t² + b t + c through the points; None with fewer than
    three distinct times."""
    return _solve_quadratic(_time_sums(ts), ts, vs)


def _time_sums(ts: list[float]) -> tuple[float, float, float, float, float]:
    """(n, Σt, Σt², Σt³, Σt⁴): the quadratic's normal matrix, shared by x and y."""
    s1 = s2 = s3 = s4 = 0.0
    for t in ts:
        t2 = t * t
        s1 += t
        s2 += t2
        s3 += t2 * t
        s4 += t2 * t2
    return float(len(ts)), s1, s2, s3, s4


def _solve_quadratic(
    sums: tuple[float, float, float, float, float], ts: list[float], vs: list[float]
) -> tuple[float, float, float] | None:
    s0, s1, s2, s3, s4 = sums
    y0 = y1 = y2 = 0.0
    for t, v in zip(ts, vs, strict=True):
        y0 += v
        y1 += t * v
        y2 += t * t * v
    det, a, b, c = _cramer((s0, s1, s2, s3, s4), y0, y1, y2)
    if abs(det) < 1e-18:
        return None
    return a / det, b / det, c / det


def _cramer(s: tuple[_Num, ...], y0: _Num, y1: _Num, y2: _Num) -> tuple[_Num, _Num, _Num, _Num]:
    """Cramer's rule for the normal equations [[s4 s3 s2] [s3 s2 s1] [s2 s1 s0]] (a, b, c) =
    (y2, y1, y0): the determinant and a, b, c times it. Plain floats or arrays (every track
    at once, _predictions), the same arithmetic."""
    s0, s1, s2, s3, s4 = s
    det = s4 * (s2 * s0 - s1 * s1) - s3 * (s3 * s0 - s1 * s2) + s2 * (s3 * s1 - s2 * s2)
    a = y2 * (s2 * s0 - s1 * s1) - s3 * (y1 * s0 - s1 * y0) + s2 * (y1 * s1 - s2 * y0)
    b = s4 * (y1 * s0 - s1 * y0) - y2 * (s3 * s0 - s1 * s2) + s2 * (s3 * y0 - y1 * s2)
    c = s4 * (s2 * y0 - y1 * s1) - s3 * (s3 * y0 - y1 * s2) + y2 * (s3 * s1 - s2 * s2)
    return det, a, b, c


def _quadratic_at(ts: list[float], vs: list[float], h: float) -> float:
    abc = _quadratic(ts, vs)
    if abc is None:
        return _linear_at(ts, vs, h)
    a, b, c = abc
    return a * h * h + b * h + c


def _quadratic_sq(ts: list[float], *series: list[float]) -> float:
    """Sum of squared residuals of the least-squares quadratics in ``ts`` through each of
    ``series`` (x and y: the time sums made once; a few dozen points: plain floats cost a
    tenth of np.polyfit; the same to ~1e-12 px)."""
    sums = _time_sums(ts)
    sq = 0.0
    for vs in series:
        abc = _solve_quadratic(sums, ts, vs)
        if abc is None:  # np.polyfit's least-norm answer
            ts_a, vs_a = np.array(ts), np.array(vs)
            sq += float(np.sum((vs_a - np.polyval(np.polyfit(ts_a, vs_a, 2), ts_a)) ** 2))
            continue
        a, b, c = abc
        sq += sum((v - (a * t * t + b * t + c)) ** 2 for t, v in zip(ts, vs, strict=True))
    return sq


@dataclass(frozen=True, slots=True)
class _Fit:
    ok: bool
    reason: str
    accel: float = 0.0
    v0z: float = 0.0
    v0x: float = 0.0
    final_speed: float = 0.0
    descent: float = 0.0
    rms: float = 0.0
    coef_z: tuple[float, float, float] = (0.0, 0.0, 0.0)  # c2, c1, c0 of z(t)
    coef_x: tuple[float, float] = (0.0, 0.0)  # c1, c0 of x(t)
    n: int = 0
    t_end: float = 0.0
    start: int = 0  # index of the track point where the fitted fall begins
    cov_z: NDArray[np.float64] | None = field(default=None, compare=False)
    ballistic: Ballistic | None = field(default=None, compare=False)
    entered: bool = False  # came into view from outside the watched area (see _entered)
    short_drop: bool = False  # the 3-D fit passed every test but the watched drop


def fit_fall(
    t: NDArray[np.float64],
    xz: NDArray[np.float64],
    rule: ThrowingRule,
    floor_h: float,
    frame_s: float | None = None,
    ballistic: Callable[[], _World | str] | None = None,
    entered: bool = False,
) -> _Fit:
    """Test a trajectory (times, metres on the façade, z up; ``frame_s`` the camera's frame
    interval, else the track's shortest step) against falling physics.

    ``ballistic``, where a camera fits the calibration, fits the track in 3-D and returns the
    fit and what it must show (``_World``), or why it was not worth fitting;
    it is called only once every test that does not depend on perspective has passed.
    ``entered``: the track came into view from outside the watched area (see
    ``ThrowingAnalyzer._entered``), so it may be fast when first seen.
    """
    n = len(t)
    if n < rule.min_points:
        return _Fit(False, "too few points", n=n)
    x, z = xz[:, 0], xz[:, 1]
    seen, gap = seen_descent(t, z, frame_s)
    (c2, c1, c0), cov = np.polyfit(t, z, 2, cov=True) if n > 4 else (np.polyfit(t, z, 2), None)
    (b1, b0) = np.polyfit(t, x, 1)
    z_fit = c0 + c1 * t + c2 * t * t
    rms = float(np.sqrt(np.mean((z - z_fit) ** 2)))
    x_rms = float(np.sqrt(np.mean((x - (b0 + b1 * t)) ** 2)))
    t_end = float(t[-1])
    descent = float(z_fit[0] - z_fit[-1])
    accel = -2.0 * c2
    # standard error of the acceleration (none below 5 points, where the fit is exact)
    accel_se = 2.0 * math.sqrt(max(float(cov[0, 0]), 0.0)) if cov is not None else 0.0
    final_speed = abs(c1 + 2 * c2 * t_end)
    monotonic = monotonic_share(z)
    # Sideways, gravity does nothing and drag only slows an object down; seen through the
    # façade calibration, a throw outward from the wall adds well under 0.1 m/s² of apparent
    # sideways acceleration. Blobs chained across gaps swing sideways faster and faster.
    (a2, a1, _), cov_x = np.polyfit(t, x, 2, cov=True) if n > 5 else (np.polyfit(t, x, 2), None)
    vx_growth = abs(a1 + 2.0 * a2 * t_end) - abs(a1)
    vx_se = 2.0 * t_end * math.sqrt(max(float(cov_x[0, 0]), 0.0)) if cov_x is not None else 0.0
    # Speed down the façade over the last few points, observed and fitted: an object in free
    # fall only gets faster until it leaves the view or lands (and a landed one stops making
    # motion). A chain that ends sitting still (a blob hopping onto a blinking light or a
    # person on a balcony) fits a fall only on average.
    k = min(5, max(3, n // 3))
    tail_t = t[-k:]
    tail_obs = -float(np.polyfit(tail_t - tail_t[0], z[-k:], 1)[0])
    tail_fit = -float(c1 + 2.0 * c2 * float(np.mean(tail_t)))
    fit = _Fit(
        False, "", accel=float(accel), v0z=float(c1), v0x=float(b1),
        final_speed=float(final_speed), descent=descent, rms=rms,
        coef_z=(float(c2), float(c1), float(c0)), coef_x=(float(b1), float(b0)), n=n,
        t_end=t_end, cov_z=None if cov is None else np.asarray(cov, np.float64),
        entered=entered,
    )  # fmt: skip
    if ballistic is not None:
        # Seen through a camera below, a throw outward rises in the picture (it comes nearer)
        # before it falls, as an upward toss does: where the 3-D fit follows, the heights may
        # rise once and then fall (3-D benchmark, office dev seed 601: a 16 px object thrown
        # out at 3.8 m/s rose for 0.7 s, 0.75 of its steps down). Leaves go up and down
        # repeatedly.
        rise_fall = max(monotonic, rise_then_fall_share(z))
        # Tests that hold whatever the perspective: shares of a descent, its sign and its
        # order; and, with slack for perspective, what leaves and paper sinking at 1-2 m/s
        # fail long before the 3-D fit would say so.
        robust = [
            (accel >= 2.0 * accel_se, f"accel {accel:.1f} ± {accel_se:.1f} m/s² not established"),
            (rise_fall >= 0.8, f"rising then falling {rise_fall:.2f}"),
            (seen >= _MIN_SEEN_DESCENT, f"only {seen:.0%} of the descent seen"),
            (gap <= _MAX_UNSEEN_GAP, f"{gap:.0%} of the descent in one unseen gap"),
            (tail_obs >= 0.5 * tail_fit, f"ends at {tail_obs:.1f} m/s, fit {tail_fit:.1f} m/s"),
            (tail_obs >= 0.5 * rule.min_speed_mps, f"ends at {tail_obs:.1f} m/s on the façade"),
            (accel >= 0.5 * rule.min_g_ratio * G, f"accel {accel / G:.2f} g on the façade"),
        ]
        failed = [why for ok, why in robust if not ok]
        if failed:
            return replace(fit, ok=False, reason="; ".join(failed))
        world = ballistic()
        if isinstance(world, str):
            return replace(fit, ok=False, reason=world)
        return _ballistic_checks(fit, world, rule)
    checks = [
        (descent >= rule.min_fall_floors * floor_h, f"fell {descent:.1f} m"),
        (rule.min_g_ratio * G <= accel <= rule.max_g_ratio * G, f"accel {accel / G:.2f} g"),
        # The acceleration must be measured, not merely allowed: a short, gappy chain of blobs
        # (rain streaks at dusk) fits "7.6 ± 8.4 m/s²" as well as constant speed. Real falls
        # show it at ≥ 2.3 standard errors when they first pass the other tests (60 generated
        # throws); one that does not yet is tested again a few frames later.
        (accel >= 2.0 * accel_se, f"accel {accel:.1f} ± {accel_se:.1f} m/s² not established"),
        (final_speed >= rule.min_speed_mps, f"speed {final_speed:.1f} m/s"),
        (monotonic >= 0.8, f"monotonic {monotonic:.2f}"),
        (seen >= _MIN_SEEN_DESCENT, f"only {seen:.0%} of the descent seen"),
        (gap <= _MAX_UNSEEN_GAP, f"{gap:.0%} of the descent in one unseen gap"),
        (tail_obs >= 0.5 * tail_fit, f"ends at {tail_obs:.1f} m/s, fit {tail_fit:.1f} m/s"),
        (rms <= max(0.25, 0.05 * descent), f"fit rms {rms:.2f} m"),
        (x_rms <= max(0.3, 0.1 * descent), f"lateral rms {x_rms:.2f} m"),
        (abs(b1) <= _MAX_LATERAL_MPS, f"lateral {b1:.1f} m/s"),
        (
            vx_growth <= _MAX_LATERAL_GAIN_MPS + 2.0 * vx_se,
            f"sideways speed grew {vx_growth:.1f} ± {vx_se:.1f} m/s",
        ),
        (c1 <= _MAX_UPWARD_MPS, f"upward {c1:.1f} m/s"),
        # The façade is in view, so a thrown object is seen soon after it is let go: a track
        # that is already very fast when first seen started far outside the calibrated façade
        # (rain streaks, insects darting past the lens), not at one of its windows.
        (entered or c1 >= -_MAX_ENTRY_MPS, f"first seen at {-c1:.1f} m/s"),
    ]
    failed = [why for ok, why in checks if not ok]
    if failed:
        return replace(fit, ok=False, reason="; ".join(failed))
    return replace(fit, ok=True, reason="falls like a dropped object")


@dataclass(frozen=True, slots=True)
class _World:
    """A track fitted in 3-D, and what it must show."""

    ballistic: Ballistic
    tol_px: float  # pixel error the fit may have
    min_drop: float  # metres of fall from the release (see ThrowingAnalyzer._min_drop)
    min_release_z: float  # lowest release height (m, façade coordinates)
    active_share: float  # share of the fall's points where motion is normal (foliage)
    clear_drop: float  # metres of descent watched away from such places
    points: int
    image_drop: float  # share of the frame's height it was watched descending
    seen_per_s: float = 25.0  # sightings per second over the fall


@dataclass(frozen=True, slots=True)
class _Watched:
    """How a fall was watched among foliage, known before its 3-D fit (see _World)."""

    active_share: float
    clear_drop: float
    points: int
    image_drop: float
    seen_per_s: float


def _past_foliage(w: _Watched | _World, min_drop: float) -> bool:
    """Whether a fall is clear of foliage, or watched among it well enough: foliage and other
    dynamic texture make tracks that pass every other test now and then, so a fall that lives
    among them must also be watched falling clear of them, and for longer."""
    return (
        w.active_share < _FOLIAGE_SHARE
        or (w.points >= _FOLIAGE_MIN_POINTS and w.clear_drop >= 0.5 * min_drop)
        or (w.points >= 2 * _FOLIAGE_MIN_POINTS and w.image_drop >= _FOLIAGE_LONG_DROP)
        or (
            w.points >= _FOLIAGE_MIN_POINTS
            and w.image_drop >= 2 * _FOLIAGE_LONG_DROP
            and w.seen_per_s >= _FOLIAGE_SEEN_PER_S
        )
    )


def _in_foliage(w: _Watched | _World) -> str:
    return (
        f"{w.active_share:.0%} in foliage, {w.clear_drop:.1f} m clear of it over {w.points} points"
    )


def _ballistic_checks(fit: _Fit, w: _World, rule: ThrowingRule) -> _Fit:
    """The physics tests in the world: the 3-D fit replaces every façade-plane test that
    perspective distorts (acceleration, speeds, drop, sideways motion, fit error)."""
    b, tol_px, min_drop = w.ballistic, w.tol_px, w.min_drop
    accel = b.mean_accel()
    vx, _, vz = (float(v) for v in b.release_velocity)
    entry = b.speed_at(0.0)
    # Among leaves a stray point is more likely a leaf than the object's ghost: there every
    # point counts (3-D benchmark seed 4711's looped real foliage: a chain of leaf blobs
    # passed on its best 85 %).
    rms = b.rms_px if w.active_share < _FOLIAGE_SHARE else b.rms_all_px
    # watched, not inferred: the fit's release may lie well above the first sighting
    watched = b.seen_drop() >= min_drop
    checks = [
        (watched, f"seen falling {b.seen_drop():.1f} m of {min_drop:.1f}"),
        (
            b.release_point[2] >= w.min_release_z,
            f"let go less than {_MIN_RELEASE_FLOORS} floors above the ground",
        ),
        # Foliage and other dynamic texture make tracks that pass every test above now and
        # then; a fall that lives among them must also be watched falling clear of them, and
        # for longer.
        (_past_foliage(w, min_drop), _in_foliage(w)),
        (rule.min_g_ratio * G <= accel <= rule.max_g_ratio * G, f"accel {accel / G:.2f} g"),
        (b.speed_at(b.t_end) >= rule.min_speed_mps, f"speed {b.speed_at(b.t_end):.1f} m/s"),
        (rms <= tol_px, f"3-D fit rms {rms:.1f} px (limit {tol_px:.1f})"),
        (abs(vx) <= _MAX_LATERAL_MPS, f"lateral {vx:.1f} m/s"),
        (vz <= _MAX_UPWARD_MPS, f"upward {vz:.1f} m/s"),
        (fit.entered or entry <= _MAX_ENTRY_MPS, f"first seen at {entry:.1f} m/s"),
        # what the fit had to assume (release far out, gravity far from g, strong drag) adds
        # up in prior units; a throw from a window needs little of it
        (b.prior_cost <= _MAX_PRIOR_COST, f"implausible throw (prior cost {b.prior_cost:.1f})"),
    ]
    failed = [why for ok, why in checks if not ok]
    fit = replace(
        fit, accel=accel, v0z=vz, v0x=vx, final_speed=b.speed_at(b.t_end), descent=b.drop(),
        ballistic=b, short_drop=not watched and len(failed) == 1,
    )  # fmt: skip
    if failed:
        return replace(fit, ok=False, reason="; ".join(failed))
    return replace(fit, ok=True, reason="falls like a thrown object (3-D)")


def seen_descent(
    t: NDArray[np.float64], z: NDArray[np.float64], frame_s: float | None
) -> tuple[float, float]:
    """Shares of the descent watched frame by frame (points at most two frames apart), and
    inside the largest gap of more.

    A real object in view is detected in most frames of its fall, so most of its descent is
    watched step by step. A track that jumps a floor down across a gap of several unseen frames
    has been chained to a different blob as often as it has followed an object: motion that
    drifts for a while and then "falls" mostly across gaps, or whose fall is one long blind
    jump, is not a fall that anyone saw.

    Each watched stretch counts with its net drop: a blob that jitters up and down for a
    second (a person on a balcony, compression noise at a camera's bitrate) has watched no
    descent, however many of its small steps happen to go down (seed 17879 at 384 kbit/s: a
    hovering blob's jitter made 37 % "seen", its net drop 26 %).
    """
    drop = -np.diff(z)
    dt = np.diff(t)
    if not len(dt):
        return 0.0, 0.0
    period = frame_s if frame_s else float(dt.min())
    near = dt <= 2.5 * period
    stretch = np.cumsum(~near)  # steps between the same two gaps share a number
    seen = float(np.clip(np.bincount(stretch[near], weights=drop[near]), 0.0, None).sum())
    gaps = np.clip(drop[~near], 0.0, None)
    total = seen + float(gaps.sum())
    if total <= 0.0:
        return 0.0, 0.0
    return seen / total, (float(gaps.max()) if len(gaps) else 0.0) / total


def size_switches(areas: Sequence[float], start: int) -> list[int]:
    """Every index after ``start`` where the blobs' size (median of three on each side)
    changes ``_SIZE_SWITCH`` times over, in order: the track went over to another object
    there. A falling object's blob grows as it nears the camera and blurs as it speeds up,
    but smoothly."""
    a = np.asarray(areas, np.float64)
    if len(a) - 3 < start + 3:
        return []
    # medians of three, each point's and its two successors' (asked of every failing track,
    # birds and lights of hundreds of points among them: one pass, no loop)
    med = np.median(np.lib.stride_tricks.sliding_window_view(a, 3), axis=1)
    before, after = med[start : len(a) - 5], med[start + 3 : len(a) - 2]
    big, small = np.maximum(before, after), np.maximum(1.0, np.minimum(before, after))
    return [int(h) + start + 3 for h in np.flatnonzero(big >= _SIZE_SWITCH * small)]


def _from_leaves(points: Sequence[tuple[float, ...]], switch: int) -> bool:
    """Whether a track's points (time, x, y, area, activity) before ``switch`` were a clump
    of leaves swaying in place: mostly among leaves, bigger blobs than those after it, and
    never more than their own size apart in height (a fall whose blob faded, or left the
    leaves it was seen against, was falling before the change: 3-D benchmark, office view at
    384 kbit/s, seed 1212 scene 16 and seed 2323 scene 12)."""
    before, after = points[:switch], points[switch:]
    if not before or not after:
        return False
    leafy = sum(p[4] >= _ACTIVE for p in before) >= 0.5 * len(before)
    area = float(statistics.median(p[3] for p in before))
    heights = [p[2] for p in before]
    in_place = max(heights) - min(heights) <= math.sqrt(area)
    return leafy and in_place and area > float(statistics.median(p[3] for p in after))


def rise_then_fall_share(z: NDArray[np.float64]) -> float:
    """Share of a height series' steps that fit one rise followed by one fall (steps before
    the turn not falling by 5 cm or more, steps after it not rising by as much), at the turn
    that fits most."""
    if len(z) < 2:
        return 0.0
    steps = np.diff(z)
    not_falling = np.r_[0, np.cumsum(steps > -0.05)]  # before the turn at each index
    not_rising = np.r_[np.cumsum((steps < 0.05)[::-1])[::-1], 0]  # from it on
    return float((not_falling + not_rising).max() / len(steps))


def monotonic_share(z: NDArray[np.float64]) -> float:
    """Share of a height series' steps (metres, z up) that do not rise by 5 cm or more; a
    rise to a lone point (after a step that did not rise; the next one falls as much) is not
    counted.

    Chains of leaf and noise blobs go up and down for several points at a time; a falling
    object only ever goes down. But near the top of a toss an object is slow, and one blob
    centroid pulled a few pixels up (a low-contrast object seen in fragments) is a rise step
    and a fall step at once: on the 3-D benchmark's tower view, 0.5 s of such jitter at the
    top of a 17 px object's toss kept its whole fall under 0.8 (seed 31337 scene 12). Only
    the lone point is forgiven, and only now and then: a rise over two steps still counts.
    """
    if len(z) < 2:
        return 0.0
    steps = np.diff(z)
    ok = steps < 0.05
    # a single rise step between two that do not rise, the next one a drop; at most one step
    # in ten (a track hopping between two leaves, one above the other, is all such steps)
    lone = ~ok & np.r_[True, ok[:-1]] & np.r_[steps[1:] <= -0.05, False]
    return float((ok.sum() + min(int(lone.sum()), len(steps) // 10)) / len(steps))


def falling_start(z: NDArray[np.float64], noise: float = 0.1) -> int:
    """Index where the final descent of a height series (metres, z up) begins.

    Walks back from the end over a 5-point running median (blob centroids jitter by a few
    pixels) while every earlier point is higher than the next, or level within ``noise``; the
    first step going back where the object was clearly lower (it was being lifted, waved or
    tossed up) ends the walk. An object at rest makes no motion and so has no points.
    """
    n = len(z)
    if n < 3:
        return 0
    pad = np.pad(z, 2, mode="edge")
    smooth = np.median(np.stack([pad[k : k + n] for k in range(5)]), axis=0)
    i = n - 1
    while i > 0 and smooth[i - 1] >= smooth[i] - noise:
        i -= 1
    return i


def _fit_sigma(points: Sequence[tuple[float, ...]]) -> float:
    """The 3-D fit's centroid noise (px) for a track's points (time, x, y, area, ...)."""
    return _FIT_PX_BASE + _FIT_PX_PER_SIZE * math.sqrt(
        float(statistics.median(p[3] for p in points))
    )


def _blob_px(tr: _Track) -> float:
    """What the association gate allows (px) for the size of a track's last blob: twice its
    side (beside _GATE_BASE_PX of centroid noise and what its speed allows)."""
    return 2.0 * math.sqrt(max(tr.points[-1][3], 0.0))


def _steady(points: Sequence[tuple[float, ...]], side: float) -> bool:
    """Whether a track's last _STEADY_POINTS points (time, x, y, ...) went one way (the net
    move at least _STEADY_SHARE of the path) by at least ``side`` px a point."""
    p = points[-_STEADY_POINTS:]
    if len(p) < _STEADY_POINTS:
        return False
    path = sum(math.hypot(b[1] - a[1], b[2] - a[2]) for a, b in itertools.pairwise(p))
    net = math.hypot(p[-1][1] - p[0][1], p[-1][2] - p[0][2])
    return net >= _STEADY_SHARE * path and net >= side * (len(p) - 1)


def _median(values: list[float]) -> float:
    """``statistics.median`` of a few floats, the same to the bit, at a fraction of its cost
    (asked for every pair of tracks that might be one fall)."""
    v = sorted(values)
    m = len(v) // 2
    return float(v[m]) if len(v) % 2 else float((v[m - 1] + v[m]) / 2)


def _descends(piece: Sequence[_Point]) -> bool:
    """Whether a piece (its last _ESTABLISHED points) is a descent a later piece may go on
    from: down the image by its own blob's size (a fall's first blob can be a long
    motion-blur streak), not a leaf or a person the fall passed by: over its established
    length, and still at its end (a leaf that sank a little and then swayed on the spot was
    joined to a fall below it and gave the report its origin: 3-D benchmark, office seed
    777)."""
    y_end = piece[-1][2]
    backs = (_ESTABLISHED, _ESTABLISHED // 2)
    if any(y_end - piece[-back][2] < 2.0 for back in backs):
        return False  # (the size's median is asked only of pieces that went down at all)
    size = math.sqrt(_median([p[3] for p in piece[-_ESTABLISHED:]]))
    return not any(y_end - piece[-back][2] < size for back in backs)


def _curve_error(piece: Sequence[_Point], after: Sequence[_Point]) -> float | None:
    """How far (px rms) a descending piece and a later one are from one smooth curve, or
    None where the later does not go on down the image from it or lies off the curve."""
    t1, _, y1, area1, _ = after[0]
    if piece[-1][2] > y1 + 2.0:  # must go on down the image
        return None
    # the two pieces must make one smooth curve: a quadratic in time through the end of
    # one and the start of the other (prediction alone misses by tens of pixels when the
    # object sped up while unseen)
    joint = [*piece[-8:], *after[:8]]
    ts = [float(p[0] - t1) for p in joint]
    sq = _quadratic_sq(ts, [float(p[1]) for p in joint], [float(p[2]) for p in joint])
    d = math.sqrt(sq / len(joint))
    return d if d <= 3.0 + 0.5 * math.sqrt(max(area1, 1.0)) else None


def _prune(tr: _Track) -> None:
    """Drop the last point or two where they are not the object: a swaying leaf or a noise
    blob taken for it in the frames where the object went unseen at the end of its fall
    (behind a canopy, out of the zone), far off the smooth curve through the points before.
    Only the end: inside a track such points would be evidence against it."""
    n = len(tr.points)
    if n < _ESTABLISHED + 2:
        return
    size = math.sqrt(float(statistics.median(p[3] for p in tr.points)))
    for _ in range(2):
        pts = np.array([p[:3] for p in tr.points[-_ESTABLISHED - 1 :]], np.float64)
        t = pts[:-1, 0] - pts[-1, 0]
        cx, cy = np.polyfit(t, pts[:-1, 1], 2), np.polyfit(t, pts[:-1, 2], 2)
        r = float(np.hypot(np.polyval(cx, 0.0) - pts[-1, 1], np.polyval(cy, 0.0) - pts[-1, 2]))
        step = float(np.hypot(*(pts[-2, 1:3] - pts[-3, 1:3])))
        if r <= _PRUNE_PX + size + step:
            return
        tr.points = tr.points[:-1]
        tr.xz = np.zeros((0, 2))


def _plumb_descent(grid: FacadeGrid, px: NDArray[np.float64], xz: NDArray[np.float64]) -> float:
    """How far image points ``px`` (the façade-plane metres of each: ``xz``) go down the
    picture along the plumb lines through them, step by step.

    A camera that looks up sees vertical lines converge above the picture: near its sides
    "down" leans outward. An object thrown out from high up, seen steeply from below, rises
    towards the top of the picture at first and then falls along those lines, far to the
    side and little down the rows (3-D benchmark, tower seed 8642 scene 24: 70 px down the
    rows of a 297 px path, 0.24 of it, but 0.88 of it along the plumb lines). A plumb line's
    image is the same at any depth (every vertical line meets the same vanishing point), so
    the façade plane's serves points off it too; where the grid does not give one (a point
    beyond its horizon), the picture's columns do."""
    here = grid.metres_to_image(xz)
    below = grid.metres_to_image(xz - np.array([0.0, 1.0]))
    plumb = below - here
    norm = np.hypot(plumb[:, 0], plumb[:, 1])
    good = (norm > 1e-9) & (plumb[:, 1] > 0.0)
    unit = np.where(good[:, None], plumb / np.where(good, norm, 1.0)[:, None], [0.0, 1.0])
    steps = np.diff(px, axis=0)
    return float(np.sum(steps * (unit[1:] + unit[:-1]) / 2.0))


def _extrapolate(points: Sequence[_Point], t: float) -> tuple[float, float]:
    """Where the points' object is at ``t``: least squares in time over them, constant
    acceleration from 5 points on, constant velocity before."""
    if len(points) == 1:
        return points[-1][1], points[-1][2]
    t_last = points[-1][0]
    ts = [q[0] - t_last for q in points]
    h = t - t_last
    at = _quadratic_at if len(points) >= 5 else _linear_at
    return at(ts, [q[1] for q in points], h), at(ts, [q[2] for q in points], h)


def _predictions(tracks: Sequence[_Track], t: float) -> NDArray[np.float64]:
    """Where each track's object should be at ``t``, (m, 2): on its guide's path, or
    ``_extrapolate`` over its last _FIT_WINDOW points, its sums and Cramer's rule done for all
    tracks together, point by point in the same order, so the same numbers (one call per
    track cost half of association among trees: ~100 live tracks a frame)."""
    out = np.empty((len(tracks), 2))
    fits: list[int] = []
    for i, tr in enumerate(tracks):
        on_path = tr.guide.at(t) if tr.guide is not None else None
        if on_path is not None:
            out[i] = on_path
        elif len(tr.points) == 1:
            out[i] = tr.points[0][1:3]
        else:
            fits.append(i)
    if not fits:
        return out
    # (window, tracks) arrays, shorter windows padded in front with zeros: a zero adds nothing
    # to any sum, exactly
    windows = [tracks[i].points[-_FIT_WINDOW:] for i in fits]
    sizes = np.array([len(w) for w in windows])
    numbers = itertools.chain.from_iterable(itertools.chain.from_iterable(windows))
    pts = np.fromiter(numbers, np.float64, count=int(sizes.sum()) * 5).reshape(-1, 5)
    col = np.repeat(np.arange(len(fits)), sizes)
    ends = np.cumsum(sizes)
    row = np.arange(len(pts)) - np.repeat(ends, sizes) + _FIT_WINDOW
    t_last = pts[ends - 1, 0]
    ts = np.zeros((_FIT_WINDOW, len(fits)))
    ts[row, col] = pts[:, 0] - t_last[col]
    vs = np.zeros((2, _FIT_WINDOW, len(fits)))
    vs[:, row, col] = pts[:, 1:3].T
    h = t - t_last
    n = sizes.astype(np.float64)
    s1, s2, s3, s4 = (np.zeros(len(fits)) for _ in range(4))
    y0, y1, y2 = (np.zeros((2, len(fits))) for _ in range(3))
    for k in range(_FIT_WINDOW):
        tk, vk = ts[k], vs[:, k]
        t2 = tk * tk
        s1 += tk
        s2 += t2
        s3 += t2 * tk
        s4 += t2 * t2
        y0 += vk
        y1 += tk * vk
        y2 += t2 * vk
    # constant velocity (_linear_at: its sums are s1, s2, y0 and y1)
    den = n * s2 - s1 * s1
    flat = np.abs(den) < 1e-12
    slope = (n * y1 - s1 * y0) / np.where(flat, 1.0, den)
    linear = np.where(flat, vs[:, -1], (y0 - slope * s1) / n + slope * h)
    # constant acceleration (_quadratic) from 5 points on, where its system is not singular
    det, qa, qb, qc = _cramer((n, s1, s2, s3, s4), y0, y1, y2)
    quad = (n >= 5) & (np.abs(det) >= 1e-18)
    d = np.where(quad, det, 1.0)
    qa, qb, qc = qa / d, qb / d, qc / d
    out[fits] = np.where(quad, qa * h * h + qb * h + qc, linear).T
    return out


def _side(points: Sequence[_Point]) -> float:
    """The object's size (px): the square root of its last points' median blob area."""
    return math.sqrt(max(_median([q[3] for q in points[-_ESTABLISHED:]]), 1.0))


def _went_down(points: list[_Point]) -> bool:
    """Whether a track's last points (less its strays, see _trim) went steadily down the
    image: by _SECOND_LOOK_DROP blob sides, most of their path, more down than sideways."""
    # Trimming (curve fits) leaves the points less at most three at the end; where no such
    # length went down at each of its last steps by the least drop, it need not be asked (a
    # failed track is asked this once per length over its last two seconds)
    if not any(_may_have_gone_down(points, k) for k in range(len(points) - 3, len(points) + 1)):
        return False
    return _descended(_trim(points)[-_ESTABLISHED:])


def _descended(p: list[_Point]) -> bool:
    """_went_down's test of the points left after trimming."""
    if len(p) < 4:
        return False
    side = _side(p)
    dx, dy = p[-1][1] - p[0][1], p[-1][2] - p[0][2]
    path = sum(math.hypot(b[1] - a[1], b[2] - a[2]) for a, b in itertools.pairwise(p))
    drop = max(_SECOND_LOOK_DROP * side, 2.0 * _GATE_BASE_PX)
    # and down at each of its last steps: a falling object does; a leaf's track, hopping
    # among the fronds' blobs and their ghosts (the same blob twice), does not
    steps = all(b[2] - a[2] >= 1.0 for a, b in itertools.pairwise(p[-_DOWN_STEPS - 1 :]))
    return dy >= drop and dy >= abs(dx) and dy >= _STEADY_SHARE * path and steps


def _may_have_gone_down(points: list[_Point], k: int) -> bool:
    """Whether ``points[:k]`` passes the cheap half of _went_down's tests: at least 4 points,
    down by ≥ 1 px at each of its last _DOWN_STEPS steps and by the least drop over its last
    _ESTABLISHED points."""
    if k < 4:
        return False
    steps = all(points[i][2] - points[i - 1][2] >= 1.0 for i in range(max(1, k - _DOWN_STEPS), k))
    return steps and points[k - 1][2] - points[max(0, k - _ESTABLISHED)][2] >= 2.0 * _GATE_BASE_PX


def _trim(points: list[_Point]) -> list[_Point]:
    """The points less up to three at the end that are not the object: the noise or the leaf
    the track took once it had lost the object, off the curve through the points before (or
    the same speck again)."""
    side = _side(points)
    for _ in range(3):
        if len(points) < 5:
            break
        last, near = points[-1], points[-_ESTABLISHED - 1 : -1]
        if (
            math.hypot(last[1] - near[-1][1], last[2] - near[-1][2])
            < 1.0
            < math.hypot(near[-1][1] - near[-2][1], near[-1][2] - near[-2][2])
        ):
            points = points[:-1]  # the speck it stopped on, again: the one before is tested next
            continue
        px, py = _extrapolate(near, last[0])
        step = math.hypot(near[-1][1] - near[-2][1], near[-1][2] - near[-2][2])
        if math.hypot(px - last[1], py - last[2]) <= _PRUNE_PX + side + 0.5 * step:
            break
        points = points[:-1]
    return points


def _chains(points: list[_Point], history: list[_Seen]) -> list[list[_Point]]:
    """A track's points followed on through the recorded frames after them, best first.

    In each frame, each chain kept so far goes on with any of the few blobs nearest the curve
    through its last points (within a gate that grows with the predicted step, each lower in
    the image than the last by half the predicted drop: a speck lying on the curve is not the
    object in the frames after as well) or with none; the _BEAM chains with the most points
    for the least misfit are kept, while the object goes unseen for at most _MAX_UNSEEN_GAP.
    One blob taken greedily spoils the curve for every frame after it: the office seed 31337
    scene 10's object, unseen for a frame, left a blob 20 px beside its path the nearest."""
    side = _side(points)
    beam: list[tuple[float, list[_Point]]] = [(0.0, list(points))]
    for h in history:
        if h.t <= points[-1][0] or not len(h.xy):
            continue
        xy = h.xy.astype(np.float64)
        misfit = _SIZE_COST * np.abs(np.sqrt(np.maximum(h.area, 1.0)) - side)
        leafy = h.activity >= _ACTIVE
        grown: list[tuple[float, list[_Point]]] = []
        for score, chain in beam:
            grown.append((score, chain))
            last = chain[-1]
            if h.t - last[0] > _MAX_UNSEEN_GAP:
                continue
            px, py = _extrapolate(chain[-12:], h.t)
            gate = _GATE_BASE_PX + 2.0 * side + 0.25 * math.hypot(px - last[1], py - last[2])
            dist = np.hypot(xy[:, 0] - px, xy[:, 1] - py)
            reach = np.where(leafy, _FOLIAGE_GATE * gate, gate)
            least = last[2] + 0.5 * (py - last[2]) if py > last[2] else last[2] - side
            cost = dist + misfit
            cost[(dist > reach) | (xy[:, 1] < least)] = np.inf
            for j in np.argsort(cost)[:_BEAM]:
                if not np.isfinite(cost[j]):
                    break
                q = (h.t, float(xy[j, 0]), float(xy[j, 1]), float(h.area[j]), float(h.activity[j]))
                grown.append((score + 1.0 - (float(dist[j]) / gate) ** 2, [*chain, q]))
        grown.sort(key=lambda sc: -sc[0])
        beam = grown[:_BEAM]
    return [chain for _, chain in beam]


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _interval_probs(centre: float, sigma: float, edges: NDArray[np.float64]) -> NDArray[np.float64]:
    cdf = np.array([_phi((e - centre) / sigma) if np.isfinite(e) else float(e > 0) for e in edges])
    return np.asarray(np.diff(cdf), np.float64)


class ThrowingAnalyzer:
    """One 高空抛物 rule on one camera (see module docstring)."""

    decode_mode = DecodeMode.SAMPLED  # every frame decoded for motion; BGR only now and then
    classes: frozenset[int] = frozenset()
    # decoded pictures feed motion differencing and snapshots only (clips are the camera's own
    # packets): the deblocking filter may be skipped (~20 % of decode time)
    clean_pictures = False
    max_frame_gap_s = math.inf  # decodes every frame; its keyframes are never skipped
    timer_due_s = math.inf

    def __init__(
        self,
        camera_id: str,
        rule: ThrowingRule,
        facades: list[FacadeConfig],
        zones: list[ZoneConfig],
        *,
        new_id: IdFactory = new_event_id,
    ) -> None:
        self.camera_id = camera_id
        self.rule = rule
        self.rule_id = rule.id
        chosen = [f for f in facades if rule.facades is None or f.id in rule.facades]
        self.facades = chosen
        zone_ids = {f.zone for f in chosen}
        self.zones = [z for z in zones if z.id in zone_ids]
        self.motion: MotionNeeds | None = MotionNeeds(
            tuple(self.zones), rule.analysis_scale, rule.motion_threshold, rule.min_blob_px,
            rule.max_blob_px,
        )  # fmt: skip
        self._zone_sets = [ZoneSet([z for z in zones if z.id == f.zone]) for f in chosen]
        self._grids: list[FacadeGrid] = []
        self._cameras: list[CameraFit] = []
        self._use_3d: list[bool] = []
        self._low_z: list[float] = []  # per façade: lowest watched height (m)
        self._size: tuple[int, int] | None = None
        self._new_id = new_id
        self._tracks: list[_Track] = []
        self._recent: list[tuple[_Track, float]] = []  # tracks that raised events, for dedupe
        self._ended: list[_Track] = []  # retired without an event, for _stitch
        # every recent frame's blobs (time, xy, area, activity) and the failed falls waiting
        # to be looked at again over them (see _second_look)
        self._history: deque[_Seen] = deque()
        self._second: list[tuple[list[_Point], int]] = []  # (points, façade)
        self._hold_until = 0.0  # weather: no alerts until then
        self._settle = (0.0, 0.0)  # (from, until): tracks born within are held (stale background)
        self._global_run = 0  # global-change frames in a row
        self._streak_frames = 0  # frames in a row that looked like rain streaks
        self._latest: Frame | None = None
        self._epoch = -1
        # Inside the analyzer time runs from its first sample, rounded to 10 µs (see _clock).
        self._origin: float | None = None
        self._last_t: float | None = None
        self._intervals: deque[float] = deque(maxlen=25)  # between recent samples

    # -- frames (for snapshots) ------------------------------------------------------------

    def observe(self, frame: Frame, detections: Detections) -> list[EventNotice]:  # noqa: ARG002
        self._latest = frame
        return []

    # -- motion ----------------------------------------------------------------------------

    def _clock(self, time_s: float) -> float:
        """The analyzer's time for a frame time (UTC epoch seconds): seconds since its first
        sample, rounded to 10 µs.

        Epoch seconds near 1.8e9 carry float64 steps of 2.4e-7 s, so the same video replayed
        from another start time gave times differing in their last bits: frame intervals at
        exactly a threshold (0.3 s is 9 frames at 30 fps) fell either side of it and the 3-D
        fit's optimiser took another path, and one replay raised an event the other did not
        (a background piece of the 3-D benchmark, started at 0 there and at the wall clock
        live). Small rounded times make the analysis the same whenever it runs."""
        if self._origin is None:
            self._origin = time_s
        return round(time_s - self._origin, 5)

    def _utc(self, t: float) -> float:
        """Epoch seconds of an analyzer time (see _clock)."""
        return (self._origin or 0.0) + t

    def observe_motion(self, sample: MotionSample) -> list[EventNotice]:
        sample = replace(sample, time_s=self._clock(sample.time_s))
        if sample.size != self._size:
            self._size = sample.size
            self._grids = [FacadeGrid(f, *sample.size) for f in self.facades]
            self._cameras = [camera_for(f, *sample.size) for f in self.facades]
            self._low_z = [self._lowest_watched_z(i) for i in range(len(self.facades))]
            # A camera that fits but stands where none does (far below the ground: a grid
            # symmetric enough to fit any lens) constrains depth too little to fit falls in
            # 3-D: a drifting blob could be "explained" as flying along the viewing ray.
            self._use_3d = []
            for f, cam in zip(self.facades, self._cameras, strict=True):
                doubts = warnings(f, cam)
                self._use_3d.append(cam.ok and not doubts)
                if not cam.ok or doubts:
                    logger.warning(
                        "camera %s façade %s: %s; falls are tested on the façade plane only",
                        self.camera_id, f.id, "; ".join(doubts) or describe(cam),
                    )  # fmt: skip
        notices: list[EventNotice] = []
        t = sample.time_s
        if sample.epoch != self._epoch:
            notices.extend(self._finish_all(t))
            self._epoch = sample.epoch
        elif self._last_t is not None and t > self._last_t:
            self._intervals.append(t - self._last_t)
        self._last_t = t
        if sample.global_change:
            self._global_run += 1
            since = self._settle[0] if t < self._settle[1] else t  # within a hold: extend it
            self._settle = (since, t + _GLOBAL_HOLD_S)
            if self._global_run > _GLOBAL_KEEP_FRAMES:
                notices.extend(self._finish_all(t))
                return notices
            for tr in self._tracks:
                tr.misses += 1
            notices.extend(self._retire(t))
            return notices
        self._global_run = 0
        self._associate(sample)
        self._remember(sample)
        notices.extend(self._retire(t))
        notices.extend(self._second_looks(t))
        if self._raining(t) or self._streaking(sample):
            self._hold_until = max(self._hold_until, t + _WEATHER_HOLD_S)
        if t >= self._hold_until:
            notices.extend(self._alert(t))
        return notices

    def _held(self, tr: _Track, t: float) -> bool:
        """Whether the track may not raise an event now: in rain, or born while the
        background was stale after a global change."""
        born, (since, until) = tr.points[0][0], self._settle
        return t < self._hold_until or (t < until and born >= since)

    def close(self, time_s: float, reason: str) -> list[EventNotice]:  # noqa: ARG002
        return self._finish_all(self._clock(time_s)) if self._tracks or self._second else []

    # -- tracking --------------------------------------------------------------------------

    def _associate(self, sample: MotionSample) -> None:
        blobs = sample.blobs
        t = sample.time_s
        used: set[int] = set()
        act = blobs.activity if blobs.activity is not None else np.zeros(len(blobs), np.float32)

        def point(bi: int) -> tuple[float, float, float, float, float]:
            xy = blobs.xy[bi]
            return (t, float(xy[0]), float(xy[1]), float(blobs.area[bi]), float(act[bi]))

        if len(blobs) and self._tracks:
            preds = _predictions(self._tracks, t)
            # (np.linalg.norm's own arithmetic for two components, without its overhead:
            # the same numbers at half the cost, for every track and blob of every frame)
            d = preds[:, None, :] - blobs.xy[None, :, :]
            dist = np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
            gates = np.array(
                [self._gate(tr, p) for tr, p in zip(self._tracks, preds.tolist(), strict=True)]
            )
            # Among leaves a track takes only what lies close to its prediction: a swaying
            # leaf next to the path would otherwise hijack a fall passing behind the tree.
            leafy = np.where(act >= _ACTIVE, _FOLIAGE_GATE, 1.0)
            reach = gates[:, None] * leafy[None, :]  # every pair: gates differ
            within = dist <= reach
            within &= self._on_path(preds, blobs.xy, reach)
            # Established tracks choose first: a falling object sheds fragments (its
            # motion-blur streak, the difference image's ghost) that start young tracks next
            # to it, and a young track sitting still on last frame's fragment otherwise
            # takes the object's next blob whenever it lies a pixel closer to it than to the
            # fall's prediction (3-D benchmark dev seeds: the fall then goes on with the
            # ghost and is lost).
            # A falling track may also share its nearest blob with another established track:
            # a fall passing a swaying branch's track is otherwise left with the next-nearest
            # blob (a leaf) when the branch's track sits a few pixels nearer its blob.
            young = np.array([len(tr.points) < _ESTABLISHED for tr in self._tracks])
            # Choice among blobs in the gate is by distance plus half the difference in blob
            # size: a big blob's centroid may lie that much off the object's (the difference
            # image's ghost), and a falling object whose blurred blob grows as it speeds up
            # is not to be traded for a leaf's speck that happens to lie nearer its
            # prediction (3-D benchmark, office seed 4711: a 20 px object lost to a 3 px
            # leaf blob 4 px nearer, just after it turned to fall).
            side = np.sqrt(np.maximum(blobs.area, 1.0)).astype(np.float64)
            track_side = np.array([tr.side() for tr in self._tracks])
            cost = dist + _SIZE_COST * np.abs(track_side[:, None] - side[None, :])
            taken_by_old: set[int] = set()
            for group in (~young, young):
                pairs = np.where(within & group[:, None], cost, np.inf)
                for flat in np.argsort(pairs, axis=None):
                    ti, bi = divmod(int(flat), len(blobs))
                    if not np.isfinite(pairs[ti, bi]):
                        break  # sorted: every remaining pair is outside its gate
                    tr = self._tracks[ti]
                    if tr.points[-1][0] == t:
                        continue
                    # (whether it falls is asked only of a track whose blob is taken; a
                    # track unseen for frames is not falling now, whatever its last points
                    # did: a leaf's track drifting down a pixel a frame, unseen for 6
                    # frames, took a passing fall's blob 45 px away and reported the
                    # fall from the leaf: 3-D benchmark, office seed 6060 scene 16)
                    if bi in used and not (
                        not young[ti]
                        and bi in taken_by_old
                        and tr.misses <= _SHARE_MISSES
                        and tr.descending()
                    ):
                        continue
                    used.add(bi)
                    if not young[ti]:
                        taken_by_old.add(bi)
                    tr.points.append(point(bi))
                    tr.misses = 0
        for tr in self._tracks:
            if tr.points[-1][0] != t:
                tr.misses += 1
        free = [bi for bi in range(len(blobs)) if bi not in used]
        room = _MAX_TRACKS - len(self._tracks)
        if not free or room <= 0:
            return
        facades = self._facades_at(blobs.xy[free].astype(np.float64))
        for bi, facade in zip(free, facades.tolist(), strict=True):
            if facade >= 0 and room > 0:
                room -= 1
                self._tracks.append(_Track([point(bi)], facade))

    def _on_path(
        self, preds: NDArray[np.float64], xy: NDArray[np.float32], reach: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        """Per track and blob: whether the blob lies inside the track's gate stretched along
        its predicted step (an ellipse: ``reach`` along the step, its size and
        ``_ACROSS_GATE`` of the rest across it). Round unless the track is established and
        has moved steadily one way by at least its blob's size a point over its last points:
        at a toss's top, or for an object held and jittering in a hand before it is let go,
        the predicted step's direction means nothing (3-D benchmark, office seed 6060 scene
        21: a held object's track then missed the fall's first blob)."""
        out = np.ones(reach.shape, np.bool_)
        rows = [
            i
            for i, tr in enumerate(self._tracks)
            if len(tr.points) >= _ESTABLISHED and _steady(tr.points, _blob_px(tr))
        ]
        if not rows:
            return out
        tracks = [self._tracks[i] for i in rows]
        step = preds[rows] - np.array([tr.points[-1][1:3] for tr in tracks], np.float64)
        u = step / np.maximum(np.hypot(step[:, 0], step[:, 1]), 1e-9)[:, None]
        d = xy[None, :, :].astype(np.float64) - preds[rows][:, None, :]
        along = d[..., 0] * u[:, None, 0] + d[..., 1] * u[:, None, 1]
        across = d[..., 0] * u[:, None, 1] - d[..., 1] * u[:, None, 0]
        size = np.array([_GATE_BASE_PX + _blob_px(tr) for tr in tracks])[:, None]
        far = reach[rows]
        narrow = np.minimum(far, size + _ACROSS_GATE * np.maximum(0.0, far - size))
        out[rows] = (along / np.maximum(far, 1e-9)) ** 2 + (
            across / np.maximum(narrow, 1e-9)
        ) ** 2 <= 1.0
        return out

    @staticmethod
    def _gate(tr: _Track, predicted: list[float]) -> float:
        """Association radius (px): grows with speed and missed frames, but a young track may
        not widen it much (a track hopping between noise blobs would otherwise "accelerate"
        its way into swallowing anything nearby), and an established one is held to its own
        prediction: within a couple of predicted steps (a fall passing a tree otherwise jumps
        to a swaying leaf 260 px away, its last step's speed being a blurred blob's)."""
        step = math.hypot(predicted[0] - tr.points[-1][1], predicted[1] - tr.points[-1][2])
        if tr.guide is not None:
            return _GATE_BASE_PX + 0.5 * _blob_px(tr) + _GUIDE_GATE_SHARE * step
        speed_term = (0.15 + 0.05 * tr.misses) * tr.speed_px()
        if len(tr.points) < _ESTABLISHED:
            return _GATE_BASE_PX + min(speed_term, 40.0) + _blob_px(tr)
        return _GATE_BASE_PX + min(speed_term, 10.0 + 1.5 * step, _MAX_GATE_PX) + _blob_px(tr)

    def _facades_at(self, xy: NDArray[np.float64]) -> NDArray[np.int64]:
        """Per point: index of the façade whose zone (or grid, with a small margin) contains
        it, else -1. All points at once: this runs for every new blob of every frame."""
        assert self._size is not None
        out = np.full(len(xy), -1, np.int64)
        xy32 = xy.astype(np.float32)
        for i, (grid, zset) in enumerate(zip(self._grids, self._zone_sets, strict=True)):
            hit = grid.contains_px(xy, margin=0.3)
            for z in zset.for_size(*self._size).values():
                hit |= z.contains(xy32)
            out[(out < 0) & hit] = i
        return out

    def _streaking(self, sample: MotionSample) -> bool:
        """Rain by the shape of its blobs, for as long as streaks fill frame after frame."""
        box = sample.blobs.bbox
        h, w = box[:, 3] - box[:, 1], box[:, 2] - box[:, 0]
        streaks = int(np.count_nonzero((h >= _STREAK_ASPECT * w) & (h >= _STREAK_MIN_PX)))
        self._streak_frames = self._streak_frames + 1 if streaks >= _STREAKS_FOR_RAIN else 0
        return self._streak_frames >= _STREAK_FRAMES

    def _raining(self, t: float) -> bool:
        """Many tracks falling steadily at once, right now: rain or snow, not a throw."""
        falling = 0
        for tr in self._tracks:
            if tr.misses or len(tr.points) < 4 or tr.points[-1][0] != t:
                continue
            p = tr.points[-4:]
            dy = [b[2] - a[2] for a, b in itertools.pairwise(p)]
            dx = [b[1] - a[1] for a, b in itertools.pairwise(p)]
            # steadily down the image in each of the last three frames, at an even pace (drops
            # and flakes do; swaying leaves and tracks hopping between noise blobs do not)
            steady = max(dy) <= 2.0 * min(dy)
            if min(dy) >= 2.0 and all(abs(x) < y for x, y in zip(dx, dy, strict=True)) and steady:
                falling += 1
        return falling >= self.rule.max_parallel_tracks

    def _evaluate(self, tr: _Track) -> _Fit:
        """Fit the track's final fall (a hand waving or holding the object before it is let
        go belongs to the same track, but not to the fall)."""
        grid = self._grids[tr.facade]
        _prune(tr)
        xz = self._metres(tr)
        t = np.array([p[0] for p in tr.points], np.float64)
        # The camera's frame interval: the median is blind to dropped frames and to bursts of
        # frames with jittery timestamps alike.
        frame_s = statistics.median(self._intervals) if self._intervals else None
        camera = self._cameras[tr.facade] if self._cameras else None

        def fit_from(start: int) -> _Fit:
            def ballistic() -> _World | str:
                return self._world(tr, xz, t, start)

            # (pruning may have left fewer points than a piece found before it: the points
            # of its own stitched on behind another track's, or after a change of object)
            if start > len(t) - self.rule.min_points:
                return _Fit(False, "too few points", n=max(0, len(t) - start), start=start)
            fit = fit_fall(
                t[start:] - t[start], xz[start:], self.rule, grid.cfg.floor_height_m, frame_s,
                ballistic if camera is not None and self._use_3d[tr.facade] else None,
                self._entered(tr, start),
            )  # fmt: skip
            return replace(fit, start=start)

        fit = fit_from(tr.foreign + falling_start(xz[tr.foreign :, 1]))
        # A piece stitched on in front (see _stitch) may be a leaf's track that the object
        # passed, not the object: then the track's own points are tested alone.
        if not fit.ok and fit.start < tr.joined:
            own = fit_from(tr.joined + falling_start(xz[tr.joined :, 1]))
            if own.ok:
                fit = own
        # An established track that went unseen for several frames may come back on another
        # object: a leaf's track took a falling object's blob 50 px from where it had lost
        # its leaf 6 frames before, and the leaf's wanderings in front spoiled the fit (3-D
        # benchmark, office seed 4711). What follows its last such gap is tested alone, as
        # the new track it would have been.
        if not fit.ok and frame_s is not None:
            gaps = np.flatnonzero(np.diff(t) > _RESUMED_AFTER_FRAMES * frame_s)
            after = int(gaps[-1]) + 1 if len(gaps) else 0
            if fit.start < after <= len(t) - self.rule.min_points:
                resumed = fit_from(after + falling_start(xz[after:, 1]))
                if resumed.ok:
                    fit = resumed
        # ...and one whose blobs change size many times over from one frame to the next has
        # gone over to another object: a track hopping along specks of 4-20 px took a
        # 120 px falling object's blob from the young track that had found it, and the specks
        # in front spoiled the fit (3-D benchmark, office dev seed 601). The specks stay out
        # of the track's later fits too.
        #
        # A passing fit (whichever of the above passed), too, when the object before the
        # change was a clump of leaves bigger than what came after: a swaying clump's track
        # (blobs of 600-1600 px jittering in place for 0.6 s) took specks of 4-50 px falling
        # below it, and the clump's points made the fall "cross the canopy" (3-D benchmark,
        # tower view, 5 s into a camera's first minute, seeds 2323 and 5151). An object let go
        # inside the foliage, seen merged with it first, is then judged by its fall once
        # clear of it, as the foliage tests judge any fall among leaves. (A stitched piece in
        # front hid the clump once: the track's own points passed and were returned unasked.)
        #
        # The clump is looked for before every such change, not only the last: the specks it
        # went over to change size among themselves too (3-D benchmark background, tower
        # view, seed 5151: a clump of 700-2400 px for 0.8 s, then specks of 4-350 px falling
        # below it, the last change among the specks).
        switches = size_switches([p[3] for p in tr.points], fit.start)
        if not switches:
            return fit
        switch = switches[-1]
        if fit.ok:
            leaves = [s for s in switches if _from_leaves(tr.points[fit.start :], s - fit.start)]
            if not leaves:
                return fit
            switch = leaves[0]
        alone = _Fit(False, f"went over from leaves to a small object {len(t) - switch} points ago")
        if switch <= len(t) - self.rule.min_points:
            alone = fit_from(switch + falling_start(xz[switch:, 1]))
        if alone.ok:
            tr.foreign = switch
        return alone if alone.ok or fit.ok else fit

    def _world(
        self, tr: _Track, xz: NDArray[np.float64], t: NDArray[np.float64], start: int
    ) -> _World | str:
        """The track's fall from point ``start`` on, fitted in 3-D through the camera (or why
        it is not worth fitting)."""
        grid = self._grids[tr.facade]
        camera = self._cameras[tr.facade]
        px = np.array([(p[1], p[2]) for p in tr.points[start:]], np.float64)
        down, path = _plumb_descent(grid, px, xz[start:]), float(np.hypot(*(px[-1] - px[0])))
        active = np.array([p[4] >= _ACTIVE for p in tr.points[start:]])
        z = xz[start:, 1]
        clear = float(z[~active].max() - z[~active].min()) if (~active).sum() > 1 else 0.0
        # Depth is what one camera sees least: a chain of blobs drifting up or sideways
        # in the image can be "explained" as an object flying at the camera while it
        # falls. What is reported must be seen to fall down the image.
        if down < max(_MIN_IMAGE_DROP_PX, _MIN_IMAGE_DROP_SHARE * path):
            return f"moved {down:.0f} px down the image of {path:.0f} px"
        # The fit costs tens of milliseconds: birds, people and leaves that cannot pass
        # what follows it are turned away first (the façade-plane drop understates an
        # outward throw's, hence the slack).
        rough_drop = self._min_drop(tr.facade, float(z[0]))
        if float(z[0] - z.min()) < _ROUGH_DROP_SHARE * rough_drop:
            return f"fell {float(z[0] - z.min()):.1f} m on the façade of {rough_drop:.1f}"
        seen = _Watched(
            float(active.mean()), clear, len(active),
            float(px[:, 1].max() - px[0, 1]) / (self._size[1] if self._size else 1),
            (len(px) - 1) / max(float(t[-1] - t[start]), 1e-3),
        )  # fmt: skip
        # Among leaves most candidate tracks are leaves, and whether one can pass the foliage
        # test is known before the fit at the least drop any release asks (most of a floor):
        # one that cannot is not fitted (the development clips' foliage made ~5 fits a
        # second, half of the analysis's time).
        if not _past_foliage(seen, _MIN_DROP_FLOORS * grid.cfg.floor_height_m):
            return _in_foliage(seen)
        sigma = _fit_sigma(tr.points[start:])
        b = fit_ballistic(t[start:] - t[start], px, camera, sigma, _FIT_TOL * sigma)
        lowest = ground_z(grid.cfg) + _MIN_RELEASE_FLOORS * grid.cfg.floor_height_m
        return _World(
            b, _FIT_TOL * sigma, self._min_drop(tr.facade, float(b.release_point[2])), lowest,
            seen.active_share, seen.clear_drop, seen.points, seen.image_drop, seen.seen_per_s,
        )  # fmt: skip

    def _entered(self, tr: _Track, start: int) -> bool:
        """Whether the fall was first seen where an object coming from outside the watched
        area would be: its first blob touches the frame's edge, or a step and a half (and its
        size) back along its first steps lies past the frame's edge or outside the façade's
        zone. Such an object may be fast when first seen (thrown out towards a camera below,
        it rose out of the view and came back down; or it fell from floors above the view),
        which the entry-speed test would refuse."""
        assert self._size is not None
        if len(tr.points) < start + 3:
            return False
        (_, x0, y0, a0, _), _, (_, x2, y2, *_) = tr.points[start : start + 3]
        # ...and a blob's size further: its centroid is first seen once it is partly in view
        step = math.hypot(x2 - x0, y2 - y0)
        k = 0.75 + math.sqrt(a0) / max(step, 1.0)
        back = np.array([[x0 - k * (x2 - x0), y0 - k * (y2 - y0)]], np.float32)
        w, h = self._size
        if not (0.0 <= back[0, 0] < w and 0.0 <= back[0, 1] < h):
            return True
        # a first blob cut by the frame's edge is partly outside it, whichever way it moves
        # (thrown outward from above the view, its first steps can run along the edge); it
        # may have come a step in before it was big enough to be seen (3-D benchmark, tower
        # dev seed 601: back into view at 2.5 px from the top, 0.9 px a frame)
        (_, x1, y1, *_) = tr.points[start + 1]
        r = 0.5 * math.sqrt(a0) + 1.0 + math.hypot(x1 - x0, y1 - y0)
        if min(x0, y0, w - 1 - x0, h - 1 - y0) <= r:
            return True
        zones = self._zone_sets[tr.facade].for_size(w, h).values()
        return not any(bool(z.contains(back)[0]) for z in zones)

    def _lowest_watched_z(self, i: int) -> float:
        """Height (m) of the lowest point of façade ``i``'s zone, the ground at the least: a
        fall can be watched down to there and no further."""
        assert self._size is not None
        grid, cfg = self._grids[i], self.facades[i]
        w, h = self._size
        pts = np.array(
            [(x * w, y * h) for z in self.zones if z.id == cfg.zone for x, y in z.polygon],
            np.float64,
        )
        low = float(grid.to_metres(pts)[:, 1].min()) if len(pts) else 0.0
        return max(low, ground_z(cfg))

    def _min_drop(self, facade: int, release_z: float) -> float:
        """Drop a fall must show: ``min_fall_floors``, or most of what the view allows below
        the release (a throw from the 3rd floor of a low building reaches the ground or the
        frame's edge within 2 floors), and never under most of a floor."""
        fh = self.facades[facade].floor_height_m
        visible = release_z - self._low_z[facade]
        return max(
            _MIN_DROP_FLOORS * fh,
            min(self.rule.min_fall_floors * fh, _VISIBLE_DROP_SHARE * visible),
        )

    def _metres(self, tr: _Track) -> NDArray[np.float64]:
        """The track's points on the façade in metres (converted once per point)."""
        if len(tr.xz) < len(tr.points):
            self._convert([tr])
        return tr.xz

    def _convert(self, tracks: Sequence[_Track]) -> None:
        """Every point of these tracks not yet in metres, converted: one homography a façade
        for all of them (a call per track and frame was a twentieth of the analysis among
        leaves), each point the same numbers alone or among others (the homography maps
        each point by itself)."""
        for i, grid in enumerate(self._grids):
            due = [tr for tr in tracks if tr.facade == i and len(tr.xz) < len(tr.points)]
            if not due:
                continue
            px = [p[1:3] for tr in due for p in tr.points[len(tr.xz) :]]
            metres = grid.to_metres(np.array(px, np.float64))
            at = 0
            for tr in due:
                k = len(tr.points) - len(tr.xz)
                new, at = metres[at : at + k], at + k
                lo, hi = tr.z_span if len(tr.xz) else (math.inf, -math.inf)
                tr.z_span = (min(lo, float(new[:, 1].min())), max(hi, float(new[:, 1].max())))
                tr.xz = np.concatenate([tr.xz, new])

    def _may_drop(self, tr: _Track) -> bool:
        """Whether any part of the track could pass the 3-D fit's first test (``_world``: a
        drop on the façade of ``_ROUGH_DROP_SHARE`` of the least a release asks). Most tracks
        that end among leaves never moved that far; their fit, asked as each ended, was a
        fifth of the analysis's time on foliage. Without the 3-D fit, always."""
        if not self._cameras or not self._use_3d[tr.facade]:
            return True
        self._metres(tr)
        least = _ROUGH_DROP_SHARE * _MIN_DROP_FLOORS * self.facades[tr.facade].floor_height_m
        return tr.z_span[1] - tr.z_span[0] >= least

    def _may_fall(self, tr: _Track) -> bool:
        """Cheap pre-test: has the track spanned at least half the minimum fall? (Most tracks
        are people, birds and leaves moving about a floor; the full fit is for the rest.)"""
        self._metres(tr)
        floor_h = self._grids[tr.facade].cfg.floor_height_m
        return tr.z_span[1] - tr.z_span[0] >= 0.5 * self.rule.min_fall_floors * floor_h

    def _alert(self, t: float) -> list[EventNotice]:
        notices = []
        self._convert(
            [tr for tr in self._tracks if len(tr.points) >= self.rule.min_points and not tr.misses]
        )
        for tr in self._tracks:
            if tr.event_id or tr.part_of or len(tr.points) < self.rule.min_points or tr.misses:
                continue
            if self._held(tr, t):
                continue
            if not tr.stitched:
                self._stitch(tr)
            # The full fit costs ~1 ms; a track that failed it is tested again every few new
            # points (≤ 80 ms later at 25 fps), not on every frame.
            every = _RETEST_POINTS
            if tr.points[-1][0] - tr.points[0][0] > _RETEST_AFTER_S:
                every = max(every, len(tr.points) // _RETEST_SHARE)
            if len(tr.points) < tr.tested_at + every or not self._may_fall(tr):
                continue
            tr.tested_at = len(tr.points)
            fit = self._evaluate(tr)
            tr.guide = None
            if fit.short_drop and fit.ballistic is not None:
                camera = self._cameras[tr.facade]
                tr.guide = _Guide(fit.ballistic, camera, tr.points[fit.start][0])
            if not fit.ok:
                continue
            same = self._same_throw(tr, fit)
            if same is not None:
                tr.part_of = same
                continue
            tr.event_id = self._new_id(self._utc(t))
            tr.alerted_at = t
            tr.verdict = fit
            self._recent.append((tr, t))
            notices.append(self._notice(tr, fit, EventState.STARTED, None))
        return notices

    def _stitch(self, tr: _Track) -> None:
        """Prepend the track this one continues, if any.

        A falling object's track breaks where its blob splits (body and motion-blur streak),
        grows as it comes towards the camera, or crosses glass of its own shade; the rest of
        the fall then starts a new track, and neither piece alone shows enough of the fall.
        The earlier piece must be established, must have ended (or gone unseen, or stayed on a
        leaf) just before this one began, and the two must lie on one smooth curve; its points
        after it lost the object are dropped for that (the leaf, the noise or the patch of
        foliage it took once the object had gone on without it; a dropped point costs a pixel
        of curve error). If the joined track then fails the fit, its own points are tested
        alone (``_evaluate``).
        """
        tr.stitched = True
        t1 = tr.points[0][0]
        best: tuple[float, _Track, int] | None = None
        # (asked of every new track among hundreds of leaf tracks: what cannot be the
        # answer is passed over before the curve fits)
        for other in [*self._ended, *self._tracks]:
            if len(other.points) < _ESTABLISHED or other.points[_ESTABLISHED - 1][0] >= t1:
                continue  # no established piece before this track began
            if other is tr or other.event_id or other.part_of or other.facade != tr.facade:
                continue
            n = bisect.bisect_left(other.points, (t1,))  # its points before this one began
            if n < _ESTABLISHED or t1 - other.points[n - 1][0] > _STITCH_S:
                continue
            # one still alive must have lost the object to this track (it sits on the leaf or
            # the noise it took instead), not be a fragment of the object falling beside it
            if self._falls_beside(other.points[n:], tr.points):
                continue
            descends = other.descents(n)
            for cut in range(n):
                end = n - cut  # the piece is other.points[:end]
                if end < _ESTABLISHED or t1 - other.points[end - 1][0] > _STITCH_S:
                    break
                if best is not None and cut >= best[0]:
                    break  # each later cut costs more than the best's whole score
                if not descends[end]:
                    continue  # no descent for a later piece to go on from
                d = _curve_error(other.points[end - _ESTABLISHED : end], tr.points)
                # a dropped point costs a pixel: strays go, the object's own points stay
                if d is not None and (best is None or d + cut < best[0]):
                    best = (d + cut, other, end)
        if best is None:
            return
        _, other, keep = best
        tr.points = other.points[:keep] + tr.points
        tr.joined = keep
        tr.xz = np.zeros((0, 2))
        other.part_of = "stitched"  # its points live on in this track
        self._ended = [o for o in self._ended if o is not other]

    @staticmethod
    def _falls_beside(
        rest: list[tuple[float, float, float, float, float]],
        after: list[tuple[float, float, float, float, float]],
    ) -> bool:
        """Whether a track's points from another's start on (``rest``) go down the image with
        it, over at least half of its drop in the same time."""
        if len(rest) < 2:
            return False
        ours = [p[2] for p in after if p[0] <= rest[-1][0]]
        if len(ours) < 2:
            return False
        return rest[-1][2] - rest[0][2] >= 0.5 * max(ours[-1] - ours[0], 1.0)

    def _same_throw(self, tr: _Track, fit: _Fit) -> str | None:
        """Event id of a throw already reported that this track is another view of.

        A falling object can split into two blobs (its body and its motion-blur streak, or a
        dark and a light half at dusk), or a track can lose the object and a new one pick it
        up; both then pass the physics test. Tracks on the same façade whose falls overlap in
        time and whose release points lie within a column and two floors are one throw (two
        objects thrown together from one window are one incident as well).
        """
        grid = self._grids[tr.facade]
        x_r, z_r = self._release_xz(fit)
        t_first, t_last = tr.points[fit.start][0], tr.points[-1][0]
        self._recent = [(o, at) for o, at in self._recent if t_last - at <= _SAME_THROW_S]
        for other, _ in self._recent:
            if other.facade != tr.facade or other.verdict is None or other.event_id is None:
                continue
            o_first = other.points[other.verdict.start][0]
            if o_first > t_last + _SAME_THROW_S or other.points[-1][0] < t_first - _SAME_THROW_S:
                continue
            ox, oz = self._release_xz(other.verdict)
            if (abs(ox - x_r) <= grid.cfg.column_width_m * 1.0
                    and abs(oz - z_r) <= grid.cfg.floor_height_m * 2.0):  # fmt: skip
                return other.event_id
            # ...or it picks up where the other lost the object: its first point lies on the
            # other's fitted fall
            c2, c1, c0 = other.verdict.coef_z
            b1, b0 = other.verdict.coef_x
            dt = t_first - o_first
            first = grid.to_metres(np.array([tr.points[fit.start][1:3]], np.float64))[0]
            expected = np.array([b0 + b1 * dt, c0 + c1 * dt + c2 * dt * dt])
            if float(np.hypot(*(first - expected))) <= 1.5:
                return other.event_id
        return None

    @staticmethod
    def _release_xz(fit: _Fit) -> tuple[float, float]:
        if fit.ballistic is not None:
            x, _, z = fit.ballistic.release_point
            return float(x), float(z)
        c2, c1, c0 = fit.coef_z
        b1, b0 = fit.coef_x
        t_rel = -c1 / (2 * c2) if c2 < 0 else 0.0
        t_rel = float(min(max(t_rel, -3.0), fit.t_end))
        return b0 + b1 * t_rel, c0 + c1 * t_rel + c2 * t_rel * t_rel

    def _retire(self, t: float) -> list[EventNotice]:
        notices: list[EventNotice] = []
        keep = []
        for tr in self._tracks:
            limit = _MAX_MISSES if len(tr.points) >= _ESTABLISHED else _MAX_MISSES_YOUNG
            if tr.guide is not None:
                limit = _MAX_MISSES_GUIDED
            if tr.misses <= limit:
                keep.append(tr)
                continue
            notices.extend(self._finish(tr, t))
            if tr.event_id is None and tr.part_of is None and len(tr.points) >= _ESTABLISHED:
                self._ended.append(tr)
        self._tracks = keep
        self._ended = [o for o in self._ended if t - o.points[-1][0] <= _STITCH_KEEP_S]
        return notices

    def _finish(self, tr: _Track, t: float) -> list[EventNotice]:
        """A track ended: complete its event with the whole trajectory, or raise one late."""
        if len(tr.points) < self.rule.min_points or tr.part_of is not None:
            return []
        if not tr.stitched and tr.event_id is None:
            self._stitch(tr)
        if tr.event_id is None and not self._may_drop(tr):
            return []
        fit = self._evaluate(tr)
        if tr.event_id is None:
            if fit.ok and self._same_throw(tr, fit) is not None:
                return []
            if not fit.ok or self._held(tr, t):
                if len(tr.points) >= self.rule.min_points * 2:
                    logger.debug(
                        "camera %s: track rejected (%d points, %s): %s",
                        self.camera_id,
                        len(tr.points),
                        tr.points[0][1:3],
                        fit.reason,
                    )
                if not fit.ok and not self._held(tr, t):
                    self._queue_second_look(tr)
                return []
            return self._late_event(tr, fit, t)
        final = fit if fit.ok else (tr.verdict or fit)
        return [self._notice(tr, final, EventState.ENDED, tr.points[-1][0])]

    def _late_event(self, tr: _Track, fit: _Fit, t: float) -> list[EventNotice]:
        """A fall found once its track had ended: raised and ended at once."""
        tr.event_id = self._new_id(self._utc(t))
        tr.alerted_at = t
        tr.verdict = fit
        self._recent.append((tr, t))
        started = self._notice(tr, fit, EventState.STARTED, None)
        # the same fall, now over: its report as started (details, floors) is final
        ended = replace(started.event, state=EventState.ENDED, ended_at=self._utc(tr.points[-1][0]))
        return [started, replace(started, event=ended)]

    # -- a second look at failed falls -----------------------------------------------------

    def _remember(self, sample: MotionSample) -> None:
        b = sample.blobs
        act = b.activity if b.activity is not None else np.zeros(len(b), np.float32)
        self._history.append(_Seen(sample.time_s, b.xy, b.area, act))
        while self._history and sample.time_s - self._history[0].t > _HISTORY_S:
            self._history.popleft()

    def _queue_second_look(self, tr: _Track) -> None:
        """Queue a failed track for a second look from the end of its last steady descent: a
        track that lost the object often went on with a leaf or the noise for a while (3-D
        benchmark, office seed 6060 scene 8: 0.6 s more of a palm's fronds). Only what the
        kept frames can still follow counts."""
        oldest = tr.points[-1][0] + _SECOND_LOOK_S - _HISTORY_S + _MAX_UNSEEN_GAP
        for k in range(len(tr.points), 3, -1):
            if tr.points[k - 1][0] < oldest:
                return
            if _went_down(tr.points[:k]):
                self._second.append((tr.points[:k], tr.facade))
                return

    def _second_looks(self, t: float, *, now: bool = False) -> list[EventNotice]:
        """Failed falls whose time has come, looked at again (see _second_look)."""
        if not self._second:
            return []
        due: list[tuple[list[_Point], int]] = []
        waiting: list[tuple[list[_Point], int]] = []
        for s in self._second:
            (due if now or t - s[0][-1][0] >= _SECOND_LOOK_S else waiting).append(s)
        self._second = waiting
        notices: list[EventNotice] = []
        for points, facade in due:
            if t < self._hold_until:
                continue  # rain: no alerts, not even late ones
            notices.extend(self._second_look(points, facade, t))
        return notices

    def _second_look(self, points: list[_Point], facade: int, t: float) -> list[EventNotice]:
        """Follow a failed fall again over the blobs of the frames around it, by its own curve.

        Frame by frame association is greedy and forgets: where the object goes unseen for a
        few frames (a wall of its own shade, a low bitrate), its track ends, takes a leaf or
        the object's ghost, and the rest of the fall starts new tracks that each show too
        little of it (3-D benchmark's office misses: a track followed 0.3 s of the fall and
        took noise, the object came back 0.3 s later as one new track a frame). Once the
        track has ended, the frames after it are known: the curve through its last points,
        refitted as each blob is added, is followed through every blob those frames had,
        whichever track took it (see _chains), and the chain is tested as any track is; a
        pass is a late event, unless it is a throw already reported (_same_throw)."""
        own = _trim(points)
        for chain in _chains(own, list(self._history)):
            if len(chain) < len(own) + 2:
                continue
            tr = _Track(chain, facade, stitched=True)
            if self._held(tr, t) or not self._may_drop(tr):
                continue
            fit = self._evaluate(tr)
            if fit.ok:
                return [] if self._same_throw(tr, fit) is not None else self._late_event(tr, fit, t)
        return []

    def _finish_all(self, t: float) -> list[EventNotice]:
        notices = [n for tr in self._tracks for n in self._finish(tr, t)]
        self._tracks = []
        notices.extend(self._second_looks(t, now=True))
        self._history.clear()  # what follows is another stream, or a changed picture
        return notices

    # -- events ----------------------------------------------------------------------------

    def _notice(
        self, tr: _Track, fit: _Fit, state: EventState, ended_at: float | None
    ) -> EventNotice:
        assert tr.event_id is not None
        details = self._details(tr, fit)
        t_release = details.t0_s + details.release_time_s
        event = Event(
            event_id=tr.event_id,
            event_type=EventType.HIGH_ALTITUDE_THROWING,
            state=state,
            camera_id=self.camera_id,
            zone_id=self.facades[tr.facade].zone,
            rule_id=self.rule_id,
            started_at=min(t_release, details.t0_s),
            alerted_at=self._utc(tr.alerted_at),
            updated_at=self._utc(tr.points[-1][0]),
            ended_at=None if ended_at is None else self._utc(ended_at),
            score=round(self._score(fit), 4),
            details=details,
            stream_offset_s=None,
        )
        return EventNotice(event=event, frame=self._latest)

    @staticmethod
    def _score(fit: _Fit) -> float:
        """Confidence from how well gravity explains the track (1 = textbook fall)."""
        g_term = math.exp(-((fit.accel / G - 0.9) ** 2) / 0.5)
        fit_term = math.exp(-fit.rms / 0.3)
        length = min(1.0, fit.n / 20)
        return max(0.05, min(1.0, 0.4 * g_term + 0.4 * fit_term + 0.2 * length))

    def _as_toss(self, tr: _Track, fit: _Fit, b: Ballistic) -> Ballistic | None:
        """The fall ``b`` fitted again as a toss (``TOSS_PRIOR_MEAN``) on the same points,
        where that fits within the same error: only for a report."""
        t0 = tr.points[fit.start][0]
        pts = [p for p in tr.points[fit.start :] if p[0] - t0 <= b.t_end + 1e-6]
        t = np.array([p[0] for p in pts], np.float64) - pts[0][0]
        px = np.array([(p[1], p[2]) for p in pts], np.float64)
        sigma = _fit_sigma(pts)
        toss = fit_ballistic(
            t, px, self._cameras[tr.facade], sigma, _FIT_TOL * sigma, TOSS_PRIOR_MEAN
        )
        return toss if toss.rms_px <= _FIT_TOL * sigma else None

    def _details(self, tr: _Track, fit: _Fit) -> ThrowingDetails:
        grid = self._grids[tr.facade]
        cfg = grid.cfg
        points = tr.points[fit.start :]
        t0 = points[0][0]
        c2, c1, c0 = fit.coef_z
        b1, b0 = fit.coef_x
        # Apex of the parabola: where a dropped object was let go (at rest). Bounded to the
        # physically plausible (a release at most 3 s before the first sighting).
        t_rel = -c1 / (2 * c2) if c2 < 0 else 0.0
        t_rel = float(min(max(t_rel, -3.0), fit.t_end))
        z_rel = c0 + c1 * t_rel + c2 * t_rel * t_rel
        x_rel = b0 + b1 * t_rel
        z_first = c0
        var_fit = 0.0
        if fit.cov_z is not None:
            j = np.array([t_rel * t_rel, t_rel, 1.0])
            var_fit = float(j @ fit.cov_z @ j)
        b = fit.ballistic
        if b is not None:
            t_rel = b.release_time
            x_rel, _, z_rel = (float(v) for v in b.release_point)
            z_first = float(b.position(np.array([0.0]))[0, 2])
            var_fit = b.sigma(3) ** 2

        def sigma_z_of(z: float, var: float) -> float:
            # Beyond the fit: the calibration (clicked corners, ~1/5 floor), where on the
            # storey a hand lets go, and the part of the fall nobody saw before the object
            # was detected.
            unseen = max(0.0, z - z_first)
            return math.sqrt(max(var, 0.0) + (0.2 * cfg.floor_height_m) ** 2 + (0.15 * unseen) ** 2)

        sigma_z = sigma_z_of(z_rel, var_fit)
        sigma_x = math.sqrt(
            (0.15 * cfg.column_width_m) ** 2 + (0.2 * abs(b1 * t_rel)) ** 2 + fit.rms**2
        )
        # Outer edges open: nothing falls from above the roof or beside the building, so mass
        # beyond the grid belongs to the top floor or the outermost column.
        floor_edges = np.arange(grid.n_floors + 1, dtype=np.float64) * cfg.floor_height_m
        col_edges = np.arange(grid.n_cols + 1, dtype=np.float64) * cfg.column_width_m
        floor_edges[0] = col_edges[0] = -np.inf
        floor_edges[-1] = col_edges[-1] = np.inf
        pf = _interval_probs(z_rel, sigma_z, floor_edges)
        toss = self._as_toss(tr, fit, b) if b is not None else None
        if b is not None and toss is not None:
            # a drop and a toss explain the same pixels with releases at different heights
            # (see trajectory.TOSS_PRIOR_MEAN): the floors are weighed over both
            w_toss = math.exp(max(-50.0, min(50.0, b.cost - toss.cost)))
            z_toss = float(toss.release_point[2])
            p_toss = _interval_probs(z_toss, sigma_z_of(z_toss, toss.sigma(3) ** 2), floor_edges)
            pf = (pf + w_toss * p_toss) / (1.0 + w_toss)
        pc = _interval_probs(x_rel, sigma_x, col_edges)
        joint = np.outer(pf, pc)
        total = float(joint.sum())
        order = np.argsort(joint, axis=None)[::-1][:5]
        candidates = []
        for flat in order:
            fi, ci = divmod(int(flat), grid.n_cols)
            p = float(joint[fi, ci])
            if p < 0.01 or total <= 0:
                break
            candidates.append(
                OriginCandidate(
                    cfg.building,
                    cfg.unit,
                    cfg.bottom_floor + fi,
                    cfg.columns[ci],
                    round(p / total, 4),
                )
            )

        def floor_of(z: float) -> int:
            return cfg.bottom_floor + int(np.clip(z // cfg.floor_height_m, 0, grid.n_floors - 1))

        release_px = grid.metres_to_image(np.array([[x_rel, z_rel]]))[0]
        ts = np.linspace(t_rel, fit.t_end, 24)
        curve = grid.metres_to_image(np.stack([b0 + b1 * ts, c0 + c1 * ts + c2 * ts * ts], axis=1))
        extra: dict[str, float | str | None] = {}
        if b is not None:
            camera = self._cameras[tr.facade]
            release_px = camera.project(b.release_point[None, :])[0]
            curve = camera.project(b.position(ts))
            extra = {
                "model": "3d",
                "fit_rms_px": round(b.rms_px, 2),
                "release_out_m": round(float(b.release_point[1]), 2),
                "outward_speed_mps": round(float(b.release_velocity[1]), 2),
            }
        return ThrowingDetails(
            facade_id=cfg.id,
            building=cfg.building,
            unit=cfg.unit,
            frame_size=self._size or (0, 0),
            t0_s=self._utc(t0),
            trajectory=tuple((round(p[0] - t0, 4), round(p[1], 1), round(p[2], 1)) for p in points),
            accel_mps2=round(fit.accel, 3),
            g_ratio=round(fit.accel / G, 3),
            v0_z_mps=round(fit.v0z, 3),
            v0_x_mps=round(fit.v0x, 3),
            final_speed_mps=round(fit.final_speed, 3),
            fall_height_m=round(
                b.drop() if b is not None else z_rel - (c0 + c1 * fit.t_end + c2 * fit.t_end**2),
                3,
            ),
            fit_rms_m=round(fit.rms, 4),
            release_time_s=round(t_rel, 4),
            release_xz_m=(round(x_rel, 3), round(z_rel, 3)),
            release_sigma_m=(round(sigma_x, 3), round(sigma_z, 3)),
            release_px=(round(float(release_px[0]), 1), round(float(release_px[1]), 1)),
            floor_range=(floor_of(z_first), floor_of(z_rel)),
            candidates=tuple(candidates),
            object_size_px=round(float(statistics.median(p[3] for p in points)), 1),
            fitted_curve=tuple((round(float(x), 1), round(float(y), 1)) for x, y in curve),
            entered_view=fit.entered,
            **extra,  # type: ignore[arg-type]
        )


# -- what evidence shows of this rule: report section, snapshots ---------------------------


def summary(_event: Event, d: ThrowingDetails) -> tuple[str, str]:
    """(中文, English) one-line summary for the report's title block."""
    where_zh = f"{d.building}号楼" + (f"{d.unit}单元" if d.unit else "")
    where_en = f"building {d.building}" + (f" unit {d.unit}" if d.unit else "")
    lo, hi = d.floor_range
    best = d.candidates[0] if d.candidates else None
    top_zh = f"，最可能 {best.floor}层 {best.column}列（{best.probability:.0%}）" if best else ""
    top_en = (
        f"; most likely floor {best.floor}, column {best.column} ({best.probability:.0%})"
        if best
        else ""
    )
    outside_zh = "（进入画面时已在下落，起点为推算）" if d.entered_view else ""
    outside_en = " (already falling when it came into view: extrapolated)" if d.entered_view else ""
    summary_zh = (
        f"{where_zh}外立面坠落物，下落约{d.fall_height_m:.1f}米（加速度{d.g_ratio:.2f}g），"
        f"来源楼层约{lo}–{hi}层{top_zh}{outside_zh}；须人工复核"
    )
    summary_en = (
        f"Object falling down the facade of {where_en}, about {d.fall_height_m:.1f} m "
        f"({d.g_ratio:.2f} g); origin floors {lo}-{hi}{top_en}{outside_en}; "
        "human review required"
    )
    return summary_zh, summary_en


def detection(d: ThrowingDetails, tz: ZoneInfo) -> dict[str, Any]:
    """This rule's fields of the report's ``detection`` block."""
    w, h = d.frame_size
    best = d.candidates[0] if d.candidates else None
    return {
        "trajectory": [
            {"t": t, "x_norm": round(x / w, 5), "y_norm": round(y / h, 5), "x_px": x, "y_px": y}
            for t, x, y in d.trajectory
        ],
        "trajectory_t0": iso(d.t0_s, tz),
        "frame_size": list(d.frame_size),
        "fit": {
            "model": (
                "ballistic body with drag in 3-D, through the camera solved from the facade "
                "calibration (metres, z up)"
                if d.model == "3d"
                else "z(t) = z0 + v0·t − a·t²/2 on the calibrated facade plane (metres, z up)"
            ),
            "accel_mps2": d.accel_mps2,
            "g_ratio": d.g_ratio,
            "v0_z_mps": d.v0_z_mps,
            "v0_x_mps": d.v0_x_mps,
            "final_speed_mps": d.final_speed_mps,
            "fall_height_m": d.fall_height_m,
            "rms_m": d.fit_rms_m,
            **(
                {
                    "rms_px": d.fit_rms_px,
                    "release_out_m": d.release_out_m,
                    "outward_speed_mps": d.outward_speed_mps,
                }
                if d.model == "3d"
                else {}
            ),
        },
        "object_size_px": d.object_size_px,
        "source_estimate": {
            "building_id": d.building,
            "unit": d.unit,
            "facade": d.facade_id,
            "floor_min": d.floor_range[0],
            "floor_max": d.floor_range[1],
            "window_column": best.column if best else None,
            "confidence": best.probability if best else 0.0,
            "release_offset_s": d.release_time_s,
            "release_xz_m": list(d.release_xz_m),
            "release_sigma_m": list(d.release_sigma_m),
            "release_px": list(d.release_px),
            # came into the watched area already falling (from above the view, or back into
            # it after leaving it): the release is extrapolated beyond what was seen
            "entered_view": d.entered_view,
            "method": (
                "3-D ballistic fit through the solved camera; release = top of the flight"
                if d.model == "3d"
                else "parabola fit on calibrated facade homography; apex = release"
            ),
            "candidates": [
                {
                    "building_id": c.building, "unit": c.unit, "floor": c.floor,
                    "window_column": c.column, "probability": c.probability,
                }
                for c in d.candidates
            ],
        },
        "review_required": True,
    }  # fmt: skip


def draw(snap: Snapshot, d: ThrowingDetails) -> NDArray[np.uint8]:
    from pipeline.evidence.overlay import draw_throw

    facade = next((f for f in snap.camera.facades if f.id == d.facade_id), None)
    best = d.candidates[0] if d.candidates else None
    caption = snap.caption
    if best is not None:
        caption += f"  origin {best.building}#{best.unit or ''} {best.floor}F-{best.column}"
    return draw_throw(snap.image, d, facade, caption)


def composite(
    clip: str, d: ThrowingDetails, clip_start_s: float, camera_id: str, tz: ZoneInfo
) -> tuple[NDArray[np.uint8], float] | None:
    """The whole fall in one picture, from the event's clip (timed at the fall's start)."""
    from pipeline.evidence.overlay import composite_from_clip

    stamp = datetime.fromtimestamp(d.t0_s, tz=tz).strftime("%Y-%m-%d %H:%M:%S%z")
    caption = f"{stamp}  {camera_id} trajectory composite ({len(d.trajectory)} positions)"
    image = composite_from_clip(clip, d, clip_start_s, caption)
    return None if image is None else (image, d.t0_s)


def build(camera: CameraConfig, rule: ThrowingRule, _site: SiteConfig, _ev: EvidenceConfig,
          _models: SharedModels) -> ThrowingAnalyzer:  # fmt: skip
    return ThrowingAnalyzer(camera.id, rule, camera.facades, camera.zones)


KIND = RuleKind("throwing", ThrowingRule, ThrowingDetails, build, summary, detection, draw,
                profile="throwing", end_snapshot="trajectory", composite=composite)  # fmt: skip
