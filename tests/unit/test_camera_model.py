"""The camera behind a façade calibration, and falls fitted in 3-D through it.

The cameras here are built by hand (position, aim, lens) and the façade corners are what they
see, so the solver is checked against a camera it did not make.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.config import FacadeConfig, ZoneConfig
from pipeline.rules import throwing, trajectory
from pipeline.rules.camera_model import camera_for, fit_summary, fitting_column_widths, warnings
from pipeline.rules.throwing import (
    ThrowingAnalyzer,
    ThrowingDetails,
    ThrowingRule,
    _ballistic_checks,
    _curve_error,
    _descends,
    _Track,
    _World,
    fit_fall,
    summary as throwing_summary,
)
from pipeline.rules.trajectory import fit_ballistic
from pipeline.types import Blobs, EventNotice, EventState, MotionSample
from tests.scenes.facade_plane import HandCamera, corners_seen_by

W, H, FPS = 1280, 720, 25
T0 = 1_700_000_000.0


def facade_seen_by(
    cam: HandCamera, bottom: int, top: int, cols: int, fh: float, cw: float
) -> FacadeConfig:
    """The calibration an integrator clicks: the grid's corners as the camera sees them.
    World z is from the ground; the grid starts at the bottom of floor ``bottom``."""
    lo, hi, wide = (bottom - 1) * fh, top * fh, cols * cw
    corners = cam.project(np.array([[0, 0, hi], [wide, 0, hi], [wide, 0, lo], [0, 0, lo]]))
    return FacadeConfig(
        id="f1", building="5", zone="z", bottom_floor=bottom, top_floor=top,
        columns=[f"{i + 1:02d}" for i in range(cols)], floor_height_m=fh, column_width_m=cw,
        corners=[(float(x) / W, float(y) / H) for x, y in corners], image_size=(W, H),
    )  # fmt: skip


CAM = HandCamera(out_m=22.0, height_m=1.5, x_m=9.0, tilt_deg=45.0, f=900.0, size=(W, H))
FACADE = facade_seen_by(CAM, bottom=5, top=16, cols=6, fh=3.0, cw=3.0)
GRID_Z = 12.0  # the grid's bottom edge above the ground
ZONE = ZoneConfig(id="z", kind="facade", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])


def test_solver_recovers_a_hand_made_camera() -> None:
    fit = camera_for(FACADE, W, H)
    assert fit.ok, fit.reason
    assert fit.rms_px < 0.5
    assert fit.focal_px == pytest.approx(900.0, rel=0.03)
    assert fit.tilt_deg == pytest.approx(45.0, abs=1.5)
    np.testing.assert_allclose(fit.centre, CAM.c - [0, 0, GRID_Z], atol=0.6)
    # a point on the façade and its pixel map onto each other through the solved camera
    p = np.array([[7.3, 0.0, 21.4], [2.0, 0.0, 5.5]])
    np.testing.assert_allclose(fit.on_facade(fit.project(p)), p, atol=1e-6)
    np.testing.assert_allclose(
        fit.project(p), CAM.project(p + np.array([0.0, 0.0, GRID_Z])), atol=1.0
    )
    assert warnings(FACADE, fit) == []


def test_grid_with_wrong_dimensions_fits_no_camera_and_the_check_says_which_widths_would() -> None:
    wrong = FACADE.model_copy(update={"column_width_m": 7.0})
    fit = camera_for(wrong, W, H)
    assert not fit.ok and "no pinhole camera fits" in fit.reason
    widths = fitting_column_widths(wrong, W, H)
    assert widths is not None and widths[0] <= 3.0 <= widths[1]


def test_a_recorder_channel_squeezing_the_picture_fits_once_shown_at_its_aspect() -> None:
    """The same clicks (relative corners) on a 16:9 picture a D1 channel stores as 704 × 576
    samples: no camera fits the squeezed picture, and the check says what to set."""
    squeezed = camera_for(FACADE, 704, 576)
    assert not squeezed.ok and "display_aspect" in squeezed.reason
    shown = camera_for(FACADE, round(576 * W / H), 576)
    assert shown.ok, shown.reason
    wrong = camera_for(FACADE.model_copy(update={"column_width_m": 7.0}), W, H)
    assert not wrong.ok and "display_aspect" not in wrong.reason  # not a recorder's size


def test_a_level_view_is_placed_by_the_lens_when_its_field_of_view_is_given() -> None:
    # A low building across the street, seen nearly level: with its corners clicked a few
    # pixels off, lenses from wide to tele fit about equally well, and the distance with them.
    cam = HandCamera(out_m=30.0, height_m=1.5, x_m=9.0, tilt_deg=5.0, f=650.0)
    level = facade_seen_by(cam, bottom=1, top=6, cols=6, fh=3.0, cw=3.0)
    lens = math.degrees(2.0 * math.atan(W / 2.0 / 650.0))
    rng = np.random.default_rng(1)
    guessed, placed = [], []
    for _ in range(6):
        off = rng.uniform(-3.0, 3.0, (4, 2)) / [W, H]
        moved = zip(level.corners, off, strict=True)
        clicked = level.model_copy(
            update={"corners": [(x + dx, y + dy) for (x, y), (dx, dy) in moved]}
        )
        guessed.append(camera_for(clicked, W, H))
        placed.append(camera_for(clicked.model_copy(update={"hfov_deg": lens}), W, H))
    far = [float(f.centre[1]) for f in guessed if f.ok]
    assert max(far) > 2 * min(far)  # 18-57 m for a camera 30 m away
    for fit in placed:
        assert fit.ok, fit.reason
        assert fit.focal_px == pytest.approx(650.0, rel=0.09)
        assert float(fit.centre[1]) == pytest.approx(30.0, rel=0.12)
    ok, line = fit_summary(level.model_copy(update={"hfov_deg": lens}), W, H)
    assert ok and "(the lens as given)" in line


def test_a_lens_with_which_no_camera_sees_the_grid_is_named_in_the_check() -> None:
    ok, line = fit_summary(FACADE.model_copy(update={"hfov_deg": 30.0}), W, H)  # it is 71°
    assert not ok
    assert "30° lens" in line and "hfov_deg" in line


def test_the_tower_clips_calibrations_as_annotated() -> None:
    # shared/data ANNOTATIONS.json, tower clip: its calibration note's 13-floor grid fits a
    # camera, the 12-floor grid the project used before fits none
    def tower(corners: list[tuple[float, float]], floors: int) -> FacadeConfig:
        return FacadeConfig(
            id="t", building="t", zone="z", corners=corners, top_floor=floors,
            columns=list("abcdef"), floor_height_m=3.0, column_width_m=3.5, image_size=(W, H),
        )  # fmt: skip

    good = camera_for(
        tower([(0.339, 0.010), (0.623, 0.010), (0.857, 0.884), (0.034, 0.884)], 13), W, H
    )
    bad = camera_for(tower([(0.15, 0.01), (0.65, 0.01), (0.86, 0.98), (0.01, 0.98)], 12), W, H)
    assert good.ok and good.rms_px < 1.0
    assert not bad.ok and bad.rms_px > 4.0


def throw_px(
    floor: int, col: float, out_mps: float, *, terminal: float = 40.0, d0: float = 0.3
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """A throw from a window sill in world metres, seen by CAM every frame until it lands."""
    p = np.array([(col + 0.5) * FACADE.column_width_m, d0, (floor - 1) * 3.0 + 1.0])
    ts, ps = flight(p, np.array([0.4, out_mps, 0.5]), terminal)
    return ts, CAM.project(ps), float(p[2])


def flight(
    p0: NDArray[np.float64], v0: NDArray[np.float64], terminal: float = 40.0, low: float = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Times and world positions, once a frame (40 ms), of a body with quadratic drag let go
    at ``p0`` with ``v0``, until it is down to height ``low`` or 4 s have passed."""
    p, v = p0.astype(np.float64), v0.astype(np.float64)
    ts, ps, t, dt = [], [], 0.0, 1e-3
    while p[2] > low and t < 4.0:
        if round(t * 1000) % 40 == 0:
            ts.append(t)
            ps.append(p.copy())
        sp = float(np.linalg.norm(v))
        v = v + (np.array([0, 0, -9.81]) - 9.81 * (sp / terminal) ** 2 * v / max(sp, 1e-9)) * dt
        p = p + v * dt
        t += dt
    return np.array(ts), np.array(ps)


@pytest.mark.parametrize("out_mps", [0.0, 2.0, 4.0])
def test_ballistic_fit_recovers_an_outward_throw(out_mps: float) -> None:
    ts, px, z_release = throw_px(11, 2, out_mps)
    rng = np.random.default_rng(3)
    seen = slice(3, None)  # first detected 3 frames after the release
    b = fit_ballistic(
        ts[seen] - ts[seen][0], px[seen] + rng.normal(0, 0.7, px[seen].shape),
        camera_for(FACADE, W, H), 1.5,
    )  # fmt: skip
    assert b.rms_px < 1.5
    assert abs(b.release_point[2] + GRID_Z - z_release) < 3.0  # within a floor
    # the outward speed itself is the weakly observed direction (one camera, drag unknown):
    # it is not asserted, the release height and the acceleration are
    assert ThrowingRule(analyzer="throwing").min_g_ratio < b.mean_accel() / 9.81 < 1.2


@pytest.mark.parametrize(
    "params",
    [
        [-0.3, 5.0, 0.4, 20.0, 0.2, 1.5, 0.5, 1.0, 0.8],
        # at its bounds (release at the first sighting, no drag: steps turned back) and
        # behind the camera for part of the flight (those residuals are constant)
        [0.0, 5.0, -1.0, 20.0, -8.0, 8.0, 0.0, 2.5, 0.0],
        [-2.9, 7.0, 3.99, 40.0, 0.0, 0.0, -5.0, 0.3, 11.99],
    ],
)
def test_the_fits_jacobian_is_scipys_two_point_jacobian_to_the_bit(params: list[float]) -> None:
    from scipy.optimize._numdiff import approx_derivative  # what least_squares calls

    ts, px, _ = throw_px(11, 2, 2.0)
    problem = trajectory._Problem(ts - ts[0], px, camera_for(FACADE, W, H), 1.5,
                                  trajectory.TOSS_PRIOR_MEAN)  # fmt: skip
    p = np.array(params)
    # the batched model is the one-at-a-time model, element by element
    assert np.array_equal(trajectory._positions(p[None, :], ts)[0], trajectory._position(p, ts))
    scipy_jac = approx_derivative(
        problem.residuals, p, method="2-point", bounds=(trajectory._LOWER, trajectory._UPPER)
    )
    assert np.array_equal(problem.jacobian(p), scipy_jac)


def analyzer() -> ThrowingAnalyzer:
    ids = iter(f"ev{i}" for i in range(1, 100))
    rule = ThrowingRule(analyzer="throwing")
    return ThrowingAnalyzer("cam", rule, [FACADE], [ZONE], new_id=lambda _t: next(ids))


def feed(a: ThrowingAnalyzer, px: NDArray[np.float64], start: int = 3) -> list:  # type: ignore[type-arg]
    notices = []
    none: list[tuple[float, float]] = []
    seen = [[(float(p[0]), float(p[1]))] for p in px[start:]]
    frames = [none] * start + seen + [none] * 20
    for i, pts in enumerate(frames):
        notices.extend(a.observe_motion(motion(i, pts)))
    return notices


def motion(i: int, pts: Sequence[tuple[float, ...]], t0: float = T0) -> MotionSample:
    """Frame ``i``'s motion: a small blob at each point."""
    xy = np.array(pts, np.float32).reshape(-1, 2)
    blobs = Blobs(
        xy=xy, area=np.full(len(xy), 12.0, np.float32),
        bbox=np.concatenate([xy - 2, xy + 2], axis=1).astype(np.float32),
        contrast=np.full(len(xy), 40.0, np.float32),
    )  # fmt: skip
    return MotionSample("cam", i, 1, i / FPS, t0 + i / FPS, blobs, False, 0.0, (W, H))


@pytest.mark.parametrize("out_mps", [0.0, 2.0, 4.0])
def test_outward_throws_are_reported_with_their_floor(out_mps: float) -> None:
    _, px, _ = throw_px(10, 3, out_mps)
    notices = feed(analyzer(), px)
    assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails)
    assert d.model == "3d"
    assert abs(d.candidates[0].floor - 10) <= 1
    assert d.candidates[0].column == "04"
    assert not d.entered_view  # seen from just after the release, mid-view


# A high-rise seen steeply from below, as the tower development clip sees it: floors 4-16
# from 14 m out.
STEEP = HandCamera(out_m=14.0, height_m=1.5, x_m=9.0, tilt_deg=52.0, f=600.0)
STEEP_FACADE = facade_seen_by(STEEP, bottom=4, top=16, cols=6, fh=3.0, cw=3.0)


def steep_analyzer() -> ThrowingAnalyzer:
    ids = iter(f"ev{i}" for i in range(1, 9))
    return ThrowingAnalyzer("cam", ThrowingRule(analyzer="throwing"), [STEEP_FACADE], [ZONE],
                            new_id=lambda _t: next(ids))  # fmt: skip


def steep_report(out_mps: float, floor: int) -> ThrowingDetails:
    p, v = np.array([10.5, 0.3, (floor - 1) * 3.0 + 1.0]), np.array([0.3, out_mps, 0.0])
    _, seen = flight(p, v, 30.0, low=9.0)  # down to the grid's bottom edge
    notices = feed(steep_analyzer(), STEEP.project(seen), start=8)
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails)
    return d


def test_a_throw_out_towards_a_camera_below_is_not_put_a_floor_too_high() -> None:
    # Seen from below, the outward distance lies along a viewing ray that climbs towards the
    # wall: fitted as a drop only (no outward speed assumed), a throw at 3.5 m/s from floor 12
    # came first as floor 13; weighed as a toss too, floor 12 comes first, and a drop keeps
    # its floor.
    assert steep_report(3.5, 12).candidates[0].floor == 12
    assert steep_report(0.0, 12).candidates[0].floor == 12


@pytest.mark.parametrize(("x_m", "column"), [(1.5, "01"), (4.5, "02"), (16.5, "06")])
def test_a_throw_out_towards_a_camera_below_falls_along_the_plumb_lines(
    x_m: float, column: str
) -> None:
    # Thrown out at 4 m/s from floor 15, off to the side of a camera that looks steeply up,
    # the object moves out towards the picture's side more than down its rows (an image path
    # ~0.2 down), but it falls along the façade's converging verticals: it must be reported.
    p, v = np.array([x_m, 0.3, 14 * 3.0 + 1.0]), np.array([0.0, 4.0, 0.0])
    _, seen = flight(p, v, 60.0, low=9.0)
    px = STEEP.project(seen)
    notices = feed(steep_analyzer(), px[px[:, 0] >= 0], start=2)
    assert notices, "not reported"
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails)
    assert abs(d.candidates[0].floor - 15) <= 1 and d.candidates[0].column == column


def test_leaf_sinking_at_its_terminal_speed_in_front_of_the_facade_is_not_a_throw() -> None:
    # a leaf 1.5 m/s terminal speed, let go 4 floors up, drifting outward on the wind
    _, px, _ = throw_px(5, 2, 1.0, terminal=1.5)
    assert feed(analyzer(), px) == []


def observed(
    facade: FacadeConfig,
    frames: list[list[tuple[float, float]]],
    rule: ThrowingRule,
    t0: float = T0,
) -> list[EventNotice]:
    """What an analyzer of ``facade`` raises over these frames and 20 empty ones after, the
    first at ``t0``."""
    ids = iter(f"ev{i}" for i in range(1, 9))
    a = ThrowingAnalyzer("cam", rule, [facade], [ZONE], new_id=lambda _t: next(ids))
    none: list[tuple[float, float]] = []
    return [
        n
        for i, pts in enumerate([*frames, *[none] * 20])
        for n in a.observe_motion(motion(i, pts, t0))
    ]


def test_fall_from_a_low_building_counts_by_its_drop_to_the_ground() -> None:
    # a 4-storey building seen from 18 m: from floor 3's sill (7 m) to the ground, where the
    # object stops, is less than min_fall_floors of 3 floors but most of what the view allows
    cam = HandCamera(out_m=18.0, height_m=1.5, x_m=9.0, tilt_deg=15.0, f=900.0)
    low = facade_seen_by(cam, bottom=1, top=4, cols=6, fh=3.0, cw=3.0)
    p, v = np.array([7.5, 0.3, 7.0]), np.array([0.3, 0.5, 0.0])
    frames: list[list[tuple[float, float]]] = [[], [], []]
    while p[2] > 0.0:
        px = cam.project(p[None, :])[0]
        frames.append([(float(px[0]), float(px[1]))])
        for _ in range(40):  # 1 ms steps, one frame
            v = v + np.array([0.0, 0.0, -9.81]) * 1e-3
            p = p + v * 1e-3
    notices = observed(low, frames, ThrowingRule(analyzer="throwing", min_fall_floors=3.0))
    assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails) and d.model == "3d"
    assert d.candidates[0].floor == 3


def blinking_fall(
    seed: int,
) -> tuple[FacadeConfig, list[list[tuple[float, float]]], list[tuple[float, float]]]:
    """A 4-storey building seen from 18 m; an object let go at floor 4's sill is seen in every
    frame of the first 40 % of its fall, then as at a camera's 384 kbit/s: 2 frames seen and
    3 not (its contrast against the wall swings with every slab and window it passes), its
    blobs 1.5 px off, and in the last unseen frame of each gap a speck 15 px beside its path.
    Returns the calibration, the frames and the specks."""
    cam = HandCamera(out_m=18.0, height_m=1.5, x_m=9.0, tilt_deg=15.0, f=900.0)
    low = facade_seen_by(cam, bottom=1, top=4, cols=6, fh=3.0, cw=3.0)
    _, ps = flight(np.array([7.5, 0.3, 10.0]), np.array([0.3, 0.5, 0.0]), 30.0)
    rng = np.random.default_rng(seed)
    frames: list[list[tuple[float, float]]] = [[], [], []]
    k0, specks = int(0.4 * len(ps)), []
    for k, (x, y) in enumerate(cam.project(ps)):
        phase = (k - k0) % 5
        if k < k0 or phase < 2:
            frames.append([(float(x + rng.normal(0, 1.5)), float(y + rng.normal(0, 1.5)))])
        elif phase == 4:
            specks.append((float(x + 14.0), float(y - 6.0)))
            frames.append([specks[-1]])
        else:
            frames.append([])
    return low, frames, specks


def reported(low: FacadeConfig, frames: list[list[tuple[float, float]]]) -> list[ThrowingDetails]:
    notices = observed(low, frames, ThrowingRule(analyzer="throwing"))
    out = [n.event.details for n in notices if n.event.state == EventState.ENDED]
    assert all(isinstance(d, ThrowingDetails) for d in out)
    return out  # type: ignore[return-value]


def test_a_blinking_fall_short_of_its_drop_follows_its_fitted_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A track that passes every 3-D test but the watched drop is followed along its fitted
    fall, across gaps of unseen frames and mostly past a speck beside the path, which a
    prediction from its last few points takes (3-D benchmark, low-rise view at 384 kbit/s,
    seed 5151 scene 14: the object's blob in 65 % of the frames of its fall, its track taken
    by a neighbour's blob at a gap after 3.6 m of the 5 m needed)."""
    scenes = [blinking_fall(seed) for seed in range(8)]
    for low, frames, specks in scenes:
        assert len(specks) >= 3
        (d,) = reported(low, frames)
        assert d.model == "3d" and d.candidates[0].floor == 4
    # followed from its last points instead, the track loses some of them (and the second
    # look, once the track has ended, finds them again: left out here)
    monkeypatch.setattr(throwing._Guide, "at", lambda _self, _t: None)
    monkeypatch.setattr(throwing, "_MAX_MISSES_GUIDED", throwing._MAX_MISSES)
    monkeypatch.setattr(throwing.ThrowingAnalyzer, "_second_look", lambda *_: [])
    assert sum(len(reported(low, frames)) for low, frames, _ in scenes) <= 6


def test_the_same_scene_is_judged_alike_whenever_it_is_watched() -> None:
    """Frame times are epoch seconds, whose float64 steps near 1.8e9 are 2.4e-7 s: replayed
    from another start, a 3-D benchmark background piece raised an event at one and not at
    the other (frame intervals at a threshold, the fit's optimiser on another path). The
    analyzer's reports of a scene do not depend on when it was watched."""

    def reports(t0: float) -> list[tuple[object, ...]]:
        out: list[tuple[object, ...]] = []
        for seed in range(6):
            low, frames, _ = blinking_fall(seed)
            for n in observed(low, frames, ThrowingRule(analyzer="throwing"), t0):
                d = n.event.details
                assert isinstance(d, ThrowingDetails)
                times = (n.event.alerted_at - t0, n.event.started_at - t0, d.t0_s - t0)
                out.append((n.event.state, *(round(v, 4) for v in times), d.trajectory,
                            d.candidates, d.fitted_curve, d.release_px))  # fmt: skip
        return out

    at_zero = reports(0.0)
    assert len(at_zero) >= 10
    assert reports(1_800_000_000.0) == at_zero
    assert reports(1_765_432_109.87) == at_zero


def test_a_camera_that_would_stand_underground_falls_back_to_the_facade_plane() -> None:
    # a symmetric keystone fits a tele lens far below the ground: depth is then too loose
    # for a 3-D fit, and the façade-plane tests decide
    sym = FACADE.model_copy(update={
        "corners": [(0.32, 0.06), (0.68, 0.06), (0.78, 0.93), (0.22, 0.93)], "bottom_floor": 1,
        "top_floor": 18, "floor_height_m": 2.9, "column_width_m": 3.2,
    })  # fmt: skip
    fit = camera_for(sym, W, H)
    assert fit.ok and warnings(sym, fit)
    ids = iter(f"ev{i}" for i in range(1, 9))
    a = ThrowingAnalyzer("cam", ThrowingRule(analyzer="throwing"), [sym], [ZONE],
                         new_id=lambda _t: next(ids))  # fmt: skip
    a.observe_motion(MotionSample("cam", 0, 1, 0.0, T0, Blobs.empty(), False, 0.0, (W, H)))
    assert a._use_3d == [False]


def test_a_posed_scenes_corners_give_back_its_camera() -> None:
    """The corners a scene (the throughput benchmark's façade) is drawn with are those of a
    real camera: the solver finds its lens, distance and tilt, with no doubt to raise."""
    wide, high = 12 * 3.6, 18 * 2.9
    corners = corners_seen_by(wide, high, distance_m=45.0, eye_m=1.5, hfov_deg=90.0)
    cfg = FACADE.model_copy(update={
        "corners": list(corners), "bottom_floor": 1, "top_floor": 18,
        "columns": [f"{i + 1:02d}" for i in range(12)], "floor_height_m": 2.9,
        "column_width_m": 3.6,
    })  # fmt: skip
    fit = camera_for(cfg, 1920, 1080)
    assert fit.ok and warnings(cfg, fit) == []
    assert fit.hfov_deg == pytest.approx(90.0, abs=0.5)
    np.testing.assert_allclose(fit.centre, [wide / 2, 45.0, 1.5], atol=0.3)
    top, bottom = math.atan2(high - 1.5, 45.0), math.atan2(-1.5, 45.0)
    assert fit.tilt_deg == pytest.approx(math.degrees(top + bottom) / 2, abs=0.3)


def one_event(
    frames: Sequence[Sequence[tuple[float, ...]]],
    sample: Callable[[int, Sequence[tuple[float, ...]]], MotionSample] = motion,
) -> ThrowingDetails:
    """The details of the one event the frames (then 20 empty ones) raise, each frame's
    points made into blobs by ``sample`` (``sized``: (x, y, area))."""
    none: list[tuple[float, ...]] = []
    a = analyzer()
    notices = [
        n for i, f in enumerate([*frames, *[none] * 20]) for n in a.observe_motion(sample(i, f))
    ]
    assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails)
    return d


def test_a_fall_broken_by_a_leaf_is_stitched_back_from_its_first_sighting() -> None:
    # the object's track takes a swaying leaf for two frames while the object goes unseen;
    # the rest of the fall starts a new track, which continues the first once the leaf's
    # points are dropped: the event's trajectory starts where the object was first seen
    _, px, _ = throw_px(10, 3, 0.0)
    frames: list[list[tuple[float, float]]] = [[], [], []]
    for i in range(3, len(px)):
        if 15 <= i < 17:
            leaf = px[14] + [14.0, -4.0 + (i - 15)]
            frames.append([(float(leaf[0]), float(leaf[1]))])
        else:
            frames.append([(float(px[i][0]), float(px[i][1]))])
    d = one_event(frames)
    assert d.t0_s == pytest.approx(T0 + 3 / FPS, abs=1e-3)
    assert len(d.trajectory) == len(px) - 3 - 2  # every sighting of the object, no leaf
    assert d.candidates[0].floor == 10


def out_and_back_px() -> NDArray[np.float64]:
    """A throw from the 16th floor, 4 m/s out towards CAM: it rises in the image above
    y = 40 px before it falls back through the whole view."""
    _, ps = flight(np.array([10.5, 0.3, 46.0]), np.array([0.4, 4.0, 0.5]))
    return CAM.project(ps)


def test_a_throw_that_comes_back_into_view_already_fast_counts_only_if_it_came_from_outside() -> (
    None
):
    px = out_and_back_px()
    top = 40.0
    hidden = px[:, 1] < top
    assert hidden[10:].any() and not hidden[-20:].any()  # out of view, then back
    none: list[tuple[float, float]] = []
    frames = [[(float(x), float(y))] if y >= top and i > 10 else none for i, (x, y) in
              enumerate(px)] + [none] * 20  # fmt: skip

    def run(zone_top: float) -> list:  # type: ignore[type-arg]
        zone = ZONE.model_copy(update={"polygon": [(0, zone_top), (1, zone_top), (1, 1), (0, 1)]})
        ids = iter(f"ev{i}" for i in range(1, 9))
        a = ThrowingAnalyzer("cam", ThrowingRule(analyzer="throwing"), [FACADE], [zone],
                             new_id=lambda _t: next(ids))  # fmt: skip
        return [n for i, f in enumerate(frames) for n in a.observe_motion(motion(i, f))]

    # the watched area ends at y = 40 px: it came in from outside, ~15 m/s when first seen
    notices = run(top / H)
    assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails)
    assert abs(d.candidates[0].floor - 16) <= 1
    assert d.entered_view  # the report says its origin lies beyond what was seen
    zh, en = throwing_summary(notices[-1].event, d)
    assert "起点为推算" in zh and "extrapolated" in en
    # the same blobs where the whole frame is watched: something already that fast first
    # seen in the middle of the view did not fall from any window of it
    assert run(0.0) == []


def test_a_fall_keeps_its_object_where_a_branchs_track_sits_nearer_to_its_blob() -> None:
    # A branch sways beside the path and its blob is tracked for a second before the fall
    # passes; in the frame the object passes it, the branch's own blob merges with the
    # object's and its track sits nearer that blob than the fall's prediction does, while a
    # speck of leaf lies a little further off the fall's way. The fall must keep its object.
    _, px, _ = throw_px(10, 3, 0.0)
    k = 20  # the frame the object passes the branch
    side = np.array([-(px[k] - px[k - 1])[1], (px[k] - px[k - 1])[0]])
    side /= np.linalg.norm(side)
    branch = px[k] + 10.0 * side
    merged = px[k] + 0.6 * (branch - px[k])  # nearer the branch than the object
    speck = px[k] - 9.0 * side
    frames: list[list[tuple[float, float]]] = []
    for i in range(len(px)):
        pts = [(float(px[i][0]), float(px[i][1]))] if 3 <= i != k else []
        if i < k:  # the branch, swaying a pixel or two
            pts.append((float(branch[0]) + (i % 3) - 1, float(branch[1]) + (i % 2)))
        elif i == k:
            pts += [(float(merged[0]), float(merged[1])), (float(speck[0]), float(speck[1]))]
        frames.append(pts)
    d = one_event(frames)
    assert len(d.trajectory) == len(px) - 3  # every sighting of the object...
    passing = d.trajectory[k - 3]
    assert math.hypot(passing[1] - merged[0], passing[2] - merged[1]) < 1.0  # ...no speck
    assert d.candidates[0].floor == 10


def test_ballistic_fit_error_ignores_a_few_blobs_merged_with_a_ghost() -> None:
    # two of the blobs merged with the difference image's ghost of the object, ~12 px back
    # along its path: the fit and its error are those of the other points
    ts, px, z_release = throw_px(11, 2, 2.0)
    seen = slice(3, 33)
    t, obs = ts[seen] - ts[seen][0], px[seen].copy()
    for i in (12, 21):
        back = obs[i - 1] - obs[i]
        obs[i] += 12.0 * back / np.linalg.norm(back)
    b = fit_ballistic(t, obs, camera_for(FACADE, W, H), 1.5)
    assert b.rms_px < 1.0
    assert b.max_px > 8.0  # the ghosts are still seen as such
    assert abs(b.release_point[2] + GRID_Z - z_release) < 3.0


def test_a_first_blob_cut_by_the_frames_edge_came_from_outside_whichever_way_it_moves() -> None:
    a = analyzer()
    a.observe_motion(motion(0, []))
    along_top = [(0.0, 370.0, 4.0, 116.0, 0.0), (0.04, 359.0, 5.0, 168.0, 0.0),
                 (0.08, 357.0, 5.0, 212.0, 0.0)]  # fmt: skip
    assert a._entered(_Track(along_top, 0), 0)
    # the same steps in the middle of the view: it was there all along
    inside = [(t, x, y + 300.0, area, act) for t, x, y, area, act in along_top]
    assert not a._entered(_Track(inside, 0), 0)
    # back into view over the top, first seen small, a step in (its centroid 2.5 px below the
    # edge), coming down slowly at first: it came a step in before it could be seen
    back_in = [(0.0, 390.5, 2.5, 8.0, 0.0), (0.04, 388.3, 3.4, 36.0, 0.0),
               (0.08, 384.1, 4.1, 60.0, 0.0)]  # fmt: skip
    assert a._entered(_Track(back_in, 0), 0)
    lower = [(t, x, y + 20.0, area, act) for t, x, y, area, act in back_in]
    assert not a._entered(_Track(lower, 0), 0)


def test_among_leaves_every_point_of_the_fit_counts() -> None:
    # the same fall with two stray points: on a clear façade they are the object's ghost and
    # the fit's error is that of the rest; where motion is normal they may be leaves
    ts, px, _ = throw_px(11, 2, 2.0)
    seen = slice(3, 33)
    t, obs = ts[seen] - ts[seen][0], px[seen].copy()
    for i in (12, 21):
        obs[i] += [9.0, -9.0]
    b = fit_ballistic(t, obs, camera_for(FACADE, W, H), 1.5)
    fit = fit_fall(t, np.zeros((len(t), 2)), ThrowingRule(analyzer="throwing"), 3.0)

    def verdict(active_share: float) -> str:
        world = _World(b, 2.25, 3.0, 0.0, active_share, 30.0, len(t), 0.5)
        return _ballistic_checks(fit, world, ThrowingRule(analyzer="throwing")).reason

    assert "3-D fit rms" not in verdict(0.0)
    assert "3-D fit rms" in verdict(0.9)


def sized(
    i: int, pts: Sequence[tuple[float, ...]], fps: float = FPS, size: tuple[int, int] = (W, H)
) -> MotionSample:
    """Frame ``i``'s motion: a blob of the given area (px) at each (x, y[, area[, activity]])."""
    xy = np.array([p[:2] for p in pts], np.float32).reshape(-1, 2)
    area = np.array([p[2] for p in pts], np.float32)
    activity = np.array([p[3] if len(p) > 3 else 0.0 for p in pts], np.float32)
    half = np.sqrt(area)[:, None] / 2
    blobs = Blobs(
        xy=xy, area=area, bbox=np.concatenate([xy - half, xy + half], axis=1).astype(np.float32),
        contrast=np.full(len(xy), 40.0, np.float32), activity=activity,
    )  # fmt: skip
    return MotionSample("cam", i, 1, i / fps, T0 + i / fps, blobs, False, 0.0, size)


def test_a_big_falling_blob_is_not_traded_for_a_nearer_speck() -> None:
    # A 20 px object's blurred blob lags its true place by a few pixels (the difference
    # image's ghost); in one frame a 3 px speck of leaf lies nearer the fall's prediction
    # than the object's own blob. The fall keeps its object.
    _, px, _ = throw_px(10, 3, 0.0)
    k = 20
    step = px[k] - px[k - 1]
    lagged = px[k] - 0.5 * step  # the blob's centroid, half a step behind
    side = np.array([-step[1], step[0]]) / np.linalg.norm(step)
    speck = px[k] + 2.0 * side
    assert np.linalg.norm(speck - px[k]) < np.linalg.norm(lagged - px[k])  # nearer
    frames: list[list[tuple[float, float, float]]] = []
    for i in range(len(px)):
        if i < 3:
            frames.append([])
        elif i == k:
            frames.append([(*lagged.tolist(), 400.0), (*speck.tolist(), 9.0)])
        else:
            frames.append([(float(px[i][0]), float(px[i][1]), 400.0)])
    a = analyzer()
    notices = [
        n for i, f in enumerate([*frames, *[[]] * 20]) for n in a.observe_motion(sized(i, f))
    ]
    assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails)
    passing = d.trajectory[k - 3]
    assert math.hypot(passing[1] - lagged[0], passing[2] - lagged[1]) < 1.0  # not the speck


def test_a_fall_whose_first_track_stays_on_the_leaves_it_merged_with_is_stitched() -> None:
    # The object's first track follows it for half a second; then the object merges with a
    # patch of foliage for six frames and the track stays on the patch's blob from then on,
    # a second after the object has come out below it and started a track of its own.
    # Neither piece shows enough of the fall alone; together they do, without the patch.
    _, px, _ = throw_px(10, 3, 0.0)
    patch = px[14] + [5.0, -2.0]
    frames: list[list[tuple[float, float]]] = []
    for i in range(45):
        pts = [(float(px[i][0]), float(px[i][1]))] if 3 <= i < 15 or 21 <= i < 33 else []
        if i >= 15:  # the patch, swaying a pixel
            pts.append((float(patch[0]) + (i % 2), float(patch[1])))
        frames.append(pts)
    d = one_event(frames)
    assert d.t0_s == pytest.approx(T0 + 3 / FPS, abs=1e-3)  # from the first sighting
    seen = [(round(x), round(y)) for _, x, y in d.trajectory]
    assert len(seen) == 12 + 12  # every sighting of the object, none of the patch
    assert all(math.hypot(x - patch[0], y - patch[1]) > 3.0 for x, y in seen)
    assert d.candidates[0].floor == 10


def test_a_fall_taken_over_by_a_track_of_specks_is_tested_from_where_the_size_changed() -> None:
    # A track hopping along 5 px specks (a moth near the lens, flickering noise) comes down
    # to the window just as a 120 px object is let go there and takes its blobs from then
    # on: the specks in front spoil the fit, the object's own points make the fall.
    _, px, _ = throw_px(10, 3, 0.0)
    x0, y0 = float(px[0][0]), float(px[0][1])
    frames = [[(x0 - 8.0 * (12 - i), y0 - 2.5 * (12 - i) + 3.0 * (i % 2), 5.0)] for i in range(12)]
    frames += [[(float(p[0]), float(p[1]), 120.0)] for p in px]
    d = one_event(frames, sized)
    assert d.t0_s >= T0 + 12 / FPS - 1e-3  # not from the specks
    assert abs(d.candidates[0].floor - 10) <= 1


def test_a_leafs_track_stitched_in_front_of_a_fall_does_not_sink_it() -> None:
    # The piece stitched in front of a fall can be a leaf's track that the object passed in
    # the canopy: with the leaf's points (where motion is normal, every point counts) the 3-D
    # fit fails, but the fall's own points still make the event.
    ts, px, _ = throw_px(10, 3, 0.0)
    a = analyzer()
    a.observe_motion(motion(0, []))
    k = 12  # the fall's first point: below a leaf swaying sideways just above its path
    leaf = [
        (T0 + ts[i], float(px[k][0]) + 8.0 * (-1) ** i, float(px[k][1]) - 6.0 + i % 2, 12.0, 0.9)
        for i in range(k - 10, k)
    ]  # fmt: skip
    # a second and a half of the fall, seen clear of the leaves until it leaves the view
    fall = [(T0 + ts[i], float(px[i][0]), float(px[i][1]), 12.0, 0.0) for i in range(k, 42)]
    assert a._evaluate(_Track(fall, 0)).ok  # the fall alone
    assert not a._evaluate(_Track(leaf + fall, 0)).ok  # taken with the leaf's points
    fit = a._evaluate(_Track(leaf + fall, 0, joined=len(leaf)))  # ...which were stitched on
    assert fit.ok and fit.start >= len(leaf)


def test_a_fast_fall_across_half_the_picture_among_leaves_is_a_fall() -> None:
    # A big object thrown through a canopy in front of the façade: its blurred blobs touch
    # swaying leaves all the way down, so none of its fall is "clear" of them, and falling
    # fast it is seen in only 15 frames. Chains of leaf blobs stay local (within a sixth of
    # the picture's height in the development clips); this one crosses half of it.
    ts, px, _ = throw_px(11, 2, 2.0)
    seen = slice(3, 33)
    t, obs = ts[seen] - ts[seen][0], px[seen]
    b = fit_ballistic(t, obs, camera_for(FACADE, W, H), 1.5)
    fit = fit_fall(t, np.zeros((len(t), 2)), ThrowingRule(analyzer="throwing"), 3.0)

    def verdict(points: int, image_drop: float, per_s: float = 28.0) -> str:
        world = _World(b, 2.25, 3.0, 0.0, 0.93, 0.0, points, image_drop, per_s)
        return _ballistic_checks(fit, world, ThrowingRule(analyzer="throwing")).reason

    assert "in foliage" not in verdict(15, 0.57)
    assert "in foliage" in verdict(15, 0.3)  # a leaf's reach, or a little more
    assert "in foliage" in verdict(8, 0.57)  # too few sightings to tell
    assert "in foliage" in verdict(15, 0.57, per_s=8.0)  # a blob every third of a second


def test_a_leaf_that_sank_and_then_swayed_on_the_spot_is_not_joined_to_a_fall() -> None:
    # Blobs as the 3-D benchmark's office scene (seed 777, scene 15) gave them: a leaf's
    # track sinks 18 px and then sways on the spot; a fall's track starts 0.2 s later just
    # below it. The two lie near enough one curve, but the leaf is not the object's start.
    def pts(rows: list[tuple[float, float, float, float]]) -> list[tuple[float, ...]]:
        return [(t, x, y, area, 0.7) for t, x, y, area in rows]

    leaf = pts([(1.17, 550, 56, 20), (1.2, 549, 60, 32), (1.23, 548, 69, 12), (1.27, 542, 74, 12),
                (1.3, 544, 73, 28), (1.33, 537, 75, 48), (1.37, 536, 73, 36), (1.4, 546, 70, 16),
                (1.43, 540, 74, 24)])  # fmt: skip
    fall = pts([(1.63, 518, 100, 40), (1.67, 523, 106, 92), (1.7, 522, 108, 116),
                (1.73, 520, 116, 188), (1.77, 521, 113, 52), (1.8, 516, 118, 4),
                (1.83, 514, 132, 8), (1.87, 514, 132, 8)])  # fmt: skip
    assert _curve_error(leaf, fall) is not None  # type: ignore[arg-type]
    assert not _descends(leaf)  # type: ignore[arg-type]
    # the same start still sinking at its end is the object's
    sinking = [
        (t, x, y + 2.0 * max(0, i - 4) ** 1.5, a, act) for i, (t, x, y, a, act) in enumerate(leaf)
    ]
    assert _descends(sinking) and _curve_error(sinking, fall) is not None  # type: ignore[arg-type]


def seen_at_30fps(
    facade: FacadeConfig, zone: ZoneConfig, points: Sequence[tuple[float, ...]]
) -> list[EventNotice]:
    """What an analyzer of a 1280 × 720, 30 fps camera raises over 2 s whose frames show one
    blob each at these (frame, x, y, area, activity), or none."""
    a = ThrowingAnalyzer("cam", ThrowingRule(analyzer="throwing"), [facade], [zone])
    seen = {int(f): rest for f, *rest in points}
    return [
        n
        for i in range(60)
        for n in a.observe_motion(
            sized(i, [tuple(seen[i])] if i in seen else [], 30.0, (1280, 720))
        )
    ]


# A swaying clump of the tower development clip's leaves (its blobs 600-1600 px, jittering in
# place for 0.6 s) and the specks of 4-50 px falling below it that its track took next, as
# the motion stage saw them 5 s into a camera's first minute (3-D benchmark background,
# seeds 2323 and 5151, tower view at 30 fps): (frame, x, y, area, activity).
LEAF_CLUMP_THEN_SPECKS = [
    (0, 1221.3, 514.1, 804, 1.0), (1, 1224.7, 513.6, 1200, 1.0), (2, 1225.7, 510.9, 1016, 1.0),
    (3, 1216.4, 513.7, 1532, 1.0), (4, 1216.5, 513.9, 1612, 1.0), (5, 1212.5, 511.7, 1020, 1.0),
    (6, 1218.1, 513.3, 1120, 1.0), (7, 1216.9, 512.0, 1236, 1.0), (8, 1211.8, 512.0, 948, 1.0),
    (9, 1212.3, 510.9, 940, 1.0), (10, 1208.2, 511.3, 616, 1.0), (11, 1200.4, 524.3, 172, 1.0),
    (12, 1199.2, 516.8, 772, 1.0), (13, 1213.5, 513.4, 1524, 1.0), (14, 1207.7, 515.4, 1024, 1.0),
    (15, 1216.8, 515.1, 1512, 1.0), (16, 1217.3, 515.1, 1644, 1.0), (17, 1230.3, 529.0, 48, 1.0),
    (18, 1227.6, 529.8, 36, 1.0), (20, 1232.5, 542.5, 4, 0.87), (21, 1226.6, 563.8, 36, 0.97),
    (22, 1234.5, 576.5, 4, 0.97), (24, 1239.5, 613.5, 8, 0.9), (25, 1252.5, 628.5, 8, 0.86),
    (26, 1253.2, 654.6, 28, 0.86), (27, 1251.6, 651.6, 16, 0.86), (29, 1264.5, 706.5, 4, 0.42),
]  # fmt: skip


# the tower development clip's calibration, as the 3-D benchmark gives it
TOWER = FacadeConfig(
    id="tower", building="tower", zone="z", bottom_floor=4, top_floor=16,
    columns=["01", "02", "03", "04", "05", "06"], floor_height_m=3.0, column_width_m=3.5,
    corners=[(0.3397, 0.0095), (0.6229, 0.0108), (0.8562, 0.8834), (0.0348, 0.8828)],
    image_size=(1280, 720),
)  # fmt: skip


@pytest.mark.parametrize("leafy", [True, False])
def test_a_clump_of_leaves_whose_track_takes_falling_specks_is_not_a_throw(leafy: bool) -> None:
    points = [
        (f, x, y, area, act if leafy else 0.0) for f, x, y, area, act in LEAF_CLUMP_THEN_SPECKS
    ]
    notices = seen_at_30fps(TOWER, ZONE, points)
    if leafy:
        # the clump's track went over to the specks; what they showed alone is no fall
        assert notices == []
    else:
        # on a clear façade a big blob (a hand, a bag) that a small object leaves, falling,
        # is how a throw looks: the rule is for leaves only
        assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]


# A 17 px object falling in front of the office development clip's palm fronds at a camera's
# 384 kbit/s, as the motion stage saw it (3-D benchmark, office view, seed 1212 scene 16): its
# blurred blob grows to 3200 px over 0.5 s of fall, then the encoder leaves specks of 4-24 px
# of it: (frame, x, y, area, activity).
FALL_AMONG_FRONDS = [
    (0, 619.8, 34.2, 144, 0.22), (1, 628.0, 32.1, 368, 0.22), (2, 639.7, 31.2, 440, 0.22),
    (3, 631.2, 37.1, 552, 0.22), (4, 632.4, 42.7, 680, 0.22), (5, 639.4, 56.3, 600, 0.22),
    (6, 639.5, 75.5, 836, 0.27), (7, 638.8, 90.3, 724, 0.27), (8, 635.9, 104.9, 680, 0.22),
    (9, 638.3, 126.1, 932, 0.01), (10, 636.3, 143.6, 928, 0.01), (11, 634.2, 165.1, 1032, 0.01),
    (12, 634.5, 185.2, 1672, 0.01), (13, 630.6, 199.9, 2312, 0.01), (14, 631.1, 227.1, 3104, 0.01),
    (15, 629.9, 259.0, 3232, 0.0), (16, 612.5, 279.5, 4, 0.0), (17, 613.5, 303.5, 24, 0.0),
    (18, 608.5, 324.5, 16, 0.01), (20, 607.6, 423.3, 436, 0.01), (21, 603.7, 467.4, 24, 0.0),
]  # fmt: skip


def test_a_fall_among_leaves_whose_blob_then_fades_is_still_a_throw() -> None:
    # mostly among leaves and bigger before its blob shrank, like the clump above, but
    # falling all the while: not a clump whose track took specks
    office = FacadeConfig(
        id="office", building="office", zone="z", bottom_floor=2, top_floor=3,
        columns=["W", "C", "E"], floor_height_m=3.6, column_width_m=2.0,
        corners=[(0.3410, 0.1076), (0.6489, 0.1107), (0.7499, 0.6626), (0.2383, 0.6597)],
        image_size=(1280, 720),
    )  # fmt: skip
    zone = ZoneConfig(
        id="z", kind="facade", polygon=[(0.22, 0.03), (0.78, 0.03), (0.8, 0.7), (0.2, 0.7)]
    )
    notices = seen_at_30fps(office, zone, FALL_AMONG_FRONDS)
    assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]
    d = notices[-1].event.details
    assert isinstance(d, ThrowingDetails) and d.candidates[0].floor == 3


def test_a_track_among_leaves_that_cannot_pass_the_foliage_test_is_not_fitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 3-D fit costs tens of milliseconds, and among leaves most candidate tracks are
    leaves: one too short, or watched too little clear of them, to pass the foliage test at
    the least drop any release asks is turned away before the fit, for the reason the fit
    would have given; a fall that may pass is fitted."""
    fits: list[int] = []

    def counted(*args: object, **kw: object) -> object:
        fits.append(1)
        return fit_ballistic(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(throwing, "fit_ballistic", counted)
    ts, px, _ = throw_px(10, 3, 0.0)
    a = analyzer()
    a.observe_motion(motion(0, []))

    def judged(points: int, activity: float) -> str:
        fall = [(T0 + ts[i], float(px[i][0]), float(px[i][1]), 12.0, activity)
                for i in range(25, 25 + points)]  # fmt: skip
        return a._evaluate(_Track(fall, 0)).reason

    assert "in foliage" in judged(10, 0.9) and not fits  # 10 points among leaves: no fit
    assert "seen falling" in judged(10, 0.0) and len(fits) == 1  # clear of them: fitted
    assert judged(30, 0.9) == "falls like a thrown object (3-D)"  # watched long among them
    assert len(fits) == 2


def test_a_leaf_clump_behind_a_stitched_piece_is_still_found() -> None:
    """The clump's track and its specks (above), with a leaf's piece stitched on in front:
    the whole fails, and the track's own points, clump and specks, passed and were returned
    before the clump was looked for (3-D benchmark background, tower view, seed 5151 piece 6:
    a false alarm). The clump is looked for whichever fit passed."""
    a = ThrowingAnalyzer("cam", ThrowingRule(analyzer="throwing"), [TOWER], [ZONE])
    a.observe_motion(sized(0, [], 30.0, (1280, 720)))
    # the piece in front, as seen (a leaf sinking beside the tree 0.3 s before)
    piece = [(3.167, 1117.5, 481.5, 8, 0.9), (3.2, 1116.2, 485.7, 40, 0.9),
             (3.233, 1116.1, 483.9, 24, 0.9), (3.267, 1115.7, 494.0, 180, 0.9),
             (3.3, 1116.0, 495.9, 204, 0.9), (3.333, 1117.1, 503.3, 20, 0.9),
             (3.433, 1120.5, 505.5, 16, 0.85), (3.467, 1126.5, 507.5, 8, 0.85)]  # fmt: skip
    own = [(3.733 + f / 30, x, y, area, act) for f, x, y, area, act in LEAF_CLUMP_THEN_SPECKS]
    points = [(T0 + t, x, y, float(area), act) for t, x, y, area, act in piece + own]
    fit = a._evaluate(_Track(points, 0, joined=len(piece)))
    assert not fit.ok
    assert "leaves" in fit.reason or "foliage" in fit.reason


def test_a_leaf_track_that_never_dropped_is_not_fitted_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Among leaves hundreds of tracks end every minute; one that never moved down the façade
    # by what the 3-D fit's first test asks (a share of the least drop any release asks) is
    # not fitted when it ends: the answer is known. A fall still is.
    def counting() -> tuple[ThrowingAnalyzer, list[int]]:
        a, fitted = analyzer(), []
        evaluate = a._evaluate

        def counted(tr: _Track) -> object:
            fitted.append(len(tr.points))
            return evaluate(tr)

        monkeypatch.setattr(a, "_evaluate", counted)
        return a, fitted

    a, fitted = counting()
    leaf = [[(600.0 + 3.0 * math.sin(i / 2), 300.0 + 2.0 * math.cos(i / 3))] for i in range(40)]
    none: list[list[tuple[float, float]]] = [[]] * 20
    assert [n for i, f in enumerate([*leaf, *none]) for n in a.observe_motion(motion(i, f))] == []
    assert fitted == []
    b, fitted = counting()
    _, px, _ = throw_px(10, 3, 2.0)
    assert [n.event.state for n in feed(b, px)] == [EventState.STARTED, EventState.ENDED]
    assert fitted
