"""高空抛物 physics on synthetic tracks: falls pass, birds / leaves / rain / shake do not."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import FacadeConfig, ZoneConfig
from pipeline.rules.facade import FacadeGrid
from pipeline.rules.throwing import (
    _FIT_WINDOW,
    _MAX_UNSEEN_GAP,
    ThrowingAnalyzer,
    ThrowingDetails,
    ThrowingRule,
    _descended,
    _descends,
    _extrapolate,
    _may_have_gone_down,
    _predictions,
    _Track,
    _trim,
    _went_down,
    fit_fall,
    monotonic_share,
    rise_then_fall_share,
    seen_descent,
    size_switches,
)
from pipeline.types import Blobs, EventState, EventType, MotionSample

W, H, FPS = 1280, 720, 25
CORNERS = [(0.32, 0.06), (0.68, 0.06), (0.78, 0.93), (0.22, 0.93)]
FACADE = FacadeConfig(
    id="b3", building="3", unit="1", zone="f", corners=CORNERS, bottom_floor=1, top_floor=18,
    columns=["01", "02", "03", "04", "05", "06"], floor_height_m=2.9, column_width_m=3.2,
)  # fmt: skip
ZONE = ZoneConfig(
    id="f", kind="facade", polygon=[(0.28, 0.0), (0.72, 0.0), (0.81, 0.93), (0.19, 0.93)]
)
GRID = FacadeGrid(FACADE, W, H)
RULE = ThrowingRule(analyzer="throwing")
T0 = 1_700_000_000.0


def analyzer(**rule: object) -> ThrowingAnalyzer:
    ids = iter(f"ev{i}" for i in range(1, 100))
    r = ThrowingRule(analyzer="throwing", **rule)
    return ThrowingAnalyzer("cam", r, [FACADE], [ZONE], new_id=lambda _t: next(ids))


def sample(
    i: int, points: list[tuple[float, float]], *, global_change: bool = False
) -> MotionSample:
    xy = np.array(points, np.float32).reshape(-1, 2)
    n = len(xy)
    blobs = Blobs(
        xy=xy,
        area=np.full((n,), 30.0, np.float32),
        bbox=np.concatenate([xy - 3, xy + 3], axis=1).astype(np.float32),
        contrast=np.full((n,), 40.0, np.float32),
    )
    return MotionSample("cam", i, 1, i / FPS, T0 + i / FPS, blobs, global_change, 0.0, (W, H))


def fall_xz(
    floor: int, col: float, t: float, v0z: float = 0.0, vx: float = 0.3, drag_vt: float = 60.0
) -> tuple[float, float]:
    """Metres on the façade of an object released at the window sill of ``floor``."""
    z0 = (floor - 1) * 2.9 + 1.0
    # quadratic drag, integrated finely
    x, z, vxx, vz, dt = (col + 0.5) * 3.2, z0, vx, v0z, 1e-3
    for _ in range(int(t / dt)):
        sp = math.hypot(vxx, vz)
        drag = 9.81 * (sp / drag_vt) ** 2
        vxx -= (drag * vxx / sp if sp else 0) * dt
        vz += (-9.81 - (drag * vz / sp if sp else 0)) * dt
        x, z = x + vxx * dt, z + vz * dt
    return x, z


def run(a: ThrowingAnalyzer, frames: list[list[tuple[float, float]]]) -> list:  # type: ignore[type-arg]
    notices = []
    for i, pts in enumerate(frames):
        notices.extend(a.observe_motion(sample(i, pts)))
    notices.extend(a.observe_motion(sample(len(frames) + 10, [])))
    for k in range(len(frames) + 11, len(frames) + 20):
        notices.extend(a.observe_motion(sample(k, [])))
    return notices


def to_px(xz: tuple[float, float], grid: FacadeGrid = GRID) -> tuple[float, float]:
    p = grid.metres_to_image(np.array([xz], float))[0]
    return float(p[0]), float(p[1])


def dropped_from(
    floor: int,
    col: int,
    frames: int = 60,
    start: int = 3,
    ground: float = -1.0,
    grid: FacadeGrid = GRID,
    **kw: float,
) -> list[list[tuple[float, float]]]:
    out: list[list[tuple[float, float]]] = [[] for _ in range(start)]
    for k in range(frames):
        x, z = fall_xz(floor, col, (k + 3) / FPS, **kw)  # first visible 3 frames after release
        if z < ground:
            break
        out.append([to_px((x, z), grid)])
    return out


def test_facade_grid_roundtrip() -> None:
    uv = np.array([[0.0, 0.0], [6.0, 18.0], [2.5, 11.5]])
    np.testing.assert_allclose(GRID.to_facade(GRID.to_image(uv)), uv, atol=1e-6)
    assert GRID.cell(2.5, 11.5) is not None and GRID.cell(2.5, 11.5).floor == 12  # type: ignore[union-attr]
    assert GRID.cell(-0.1, 3) is None


def test_parabola_passes_fit() -> None:
    t = np.arange(0, 1.5, 1 / FPS)
    z = 30.0 - 0.5 * 9.81 * t**2
    x = 5.0 + 0.2 * t
    fit = fit_fall(t, np.stack([x, z], axis=1), RULE, 2.9)
    assert fit.ok, fit.reason
    assert fit.accel == pytest.approx(9.81, rel=0.01)


def test_fast_gappy_chain_of_streaks_fails_for_want_of_a_measured_acceleration() -> None:
    """Rain at dusk (benchmark seed 5531): faint streak fragments chained into 9 points over
    0.52 s, first seen at 9.7 m/s. Its fit allows 0.78 g but equally constant speed."""
    pts = [
        (0.00, 17.85, 10.82), (0.04, 17.54, 10.89), (0.12, 17.06, 10.03),
        (0.16, 17.40, 9.83), (0.28, 16.70, 8.28), (0.32, 16.76, 7.47),
        (0.36, 16.76, 6.66), (0.40, 16.81, 6.66), (0.52, 17.17, 5.27),
    ]  # fmt: skip
    t = np.array([p[0] for p in pts])
    xz = np.array([(p[1], p[2]) for p in pts])
    fit = fit_fall(t, xz, RULE, 2.9)
    assert not fit.ok and "not established" in fit.reason, fit.reason
    # the same span sampled densely along a true fall from that speed passes
    t2 = np.arange(0, 0.53, 1 / FPS)
    z2 = 10.9 - 9.7 * t2 - 0.5 * 9.81 * t2**2
    fit2 = fit_fall(t2, np.stack([17.3 + 0 * t2, z2], axis=1), RULE, 2.9)
    assert fit2.ok, fit2.reason


def test_chain_that_ends_sitting_still_fails() -> None:
    """Benchmark seed 5930: a blob drifting on a balcony, a hop across a 4-frame gap, then
    still on a blinking light: a fall on average (0.5 g, 6.2 m) that ends at rest."""
    t = np.array(
        [12.04, 12.08, 12.12, 12.16, 12.20, 12.24, 12.28, 12.32, 12.36, 12.40, 12.44, 12.48,
         12.52, 12.56, 12.60, 12.64, 12.68, 12.72, 12.76, 12.80, 12.84, 12.88, 12.92, 12.96,
         13.12, 13.28, 13.32, 13.36, 13.40, 13.44]
    )  # fmt: skip
    z = np.array(
        [43.75, 43.75, 43.77, 43.81, 43.78, 43.76, 43.67, 43.60, 43.37, 43.31, 43.28, 43.26,
         43.01, 42.71, 42.48, 42.22, 42.18, 42.14, 41.59, 41.73, 41.65, 41.39, 41.92, 40.83,
         40.15, 38.32, 38.32, 38.32, 38.34, 38.21]
    )  # fmt: skip
    x = np.linspace(5.07, 7.43, len(t))
    fit = fit_fall(t - t[0], np.stack([x, z], axis=1), RULE, 2.9)
    assert not fit.ok and fit.reason.startswith("ends at") and ";" not in fit.reason, fit.reason


def test_fall_that_swings_sideways_faster_and_faster_fails() -> None:
    """Benchmark seed 5991 (rain at dusk): streak fragments chained across gaps drift sideways
    ever faster (0.9 g sideways) while they drop; a throw sideways keeps or loses its speed."""
    t = np.arange(0, 1.4, 1 / FPS)
    z = 38.2 - 0.5 * 9.0 * t**2
    swinging = fit_fall(t, np.stack([18.5 - 0.5 * 8.5 * t**2, z], axis=1), RULE, 2.9)
    assert not swinging.ok and "sideways speed grew" in swinging.reason, swinging.reason
    tossed = fit_fall(t, np.stack([18.5 - 3.0 * t + 0.4 * t**2, z], axis=1), RULE, 2.9)
    assert tossed.ok, tossed.reason  # 3 m/s sideways, slowed by drag


def test_drift_then_hops_across_gaps_fails_for_want_of_a_seen_descent() -> None:
    """Benchmark seed 6404 (day): a blob drifting on the top floor for 0.7 s, then chained
    across two 4-frame gaps to blobs lower down: 0.62 g over 5.8 m, but 80 % of that descent
    happens where no frame saw anything."""
    t = np.array(
        [0.00, 0.04, 0.08, 0.12, 0.16, 0.20, 0.24, 0.28, 0.32, 0.36, 0.40, 0.44, 0.48, 0.52,
         0.56, 0.60, 0.64, 0.68, 0.88, 0.92, 0.96, 1.00, 1.12, 1.32, 1.44]
    )  # fmt: skip
    z = np.array(
        [46.63, 46.74, 46.72, 46.91, 46.75, 46.71, 46.75, 46.74, 46.66, 46.66, 46.58, 46.41,
         46.36, 46.26, 46.20, 46.20, 46.08, 46.10, 44.22, 44.20, 44.04, 44.07, 43.17, 41.59,
         41.72]
    )  # fmt: skip
    x = np.linspace(49.0, 48.9, len(t))
    fit = fit_fall(t, np.stack([x, z], axis=1), RULE, 2.9, 1 / FPS)
    assert not fit.ok and "of the descent seen" in fit.reason and ";" not in fit.reason, fit.reason
    # A real fall is seen in most frames: the same fall with one frame in three lost passes.
    t2 = np.arange(0, 1.45, 1 / FPS)
    z2 = 46.6 - 0.5 * 6.0 * t2**2
    keep = np.arange(len(t2)) % 3 != 1
    fit2 = fit_fall(t2[keep], np.stack([49.0 + 0 * t2, z2], axis=1)[keep], RULE, 2.9, 1 / FPS)
    assert fit2.ok, fit2.reason
    # ...but a fall seen only in bursts a third of a second apart does not
    sparse = np.arange(len(t2)) % 9 < 2
    fit3 = fit_fall(t2[sparse], np.stack([49.0 + 0 * t2, z2], axis=1)[sparse], RULE, 2.9, 1 / FPS)
    assert not fit3.ok and "of the descent seen" in fit3.reason, fit3.reason


def test_jitter_while_hovering_is_not_a_watched_descent() -> None:
    """Benchmark seed 17879 (384 kbit/s): a blob hovering on a balcony for half a second,
    jittering up and down by up to a metre, then chained across gaps of 5, 6 and 4 unseen
    frames to noise blobs lower down: 0.70 g over 8 m. Its small downward steps add up to 37 %
    of the descent, but it watched only a 1.7 m net drop of the 7.3 m."""
    t = np.array(
        [0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24, 0.28, 0.32, 0.36, 0.4, 0.44, 0.48, 0.52, 0.72,
         0.96, 1.0, 1.16, 1.2, 1.28]
    )  # fmt: skip
    z = np.array(
        [39.9, 39.65, 40.06, 39.69, 39.49, 39.48, 39.24, 39.1, 38.96, 38.84, 38.33, 39.21,
         38.14, 38.21, 37.27, 34.41, 34.41, 32.8, 32.63, 32.63]
    )  # fmt: skip
    x = np.array(
        [6.07, 5.99, 6.13, 6.16, 6.13, 6.12, 6.04, 6.09, 6.21, 6.38, 6.25, 6.25, 6.29, 6.2,
         5.49, 5.63, 5.63, 5.76, 5.68, 5.61]
    )  # fmt: skip
    seen, gap = seen_descent(t, z, 1 / FPS)
    assert seen == pytest.approx(1.86 / 7.27, abs=0.005) and gap < _MAX_UNSEEN_GAP
    fit = fit_fall(t, np.stack([x, z], axis=1), RULE, 2.9, 1 / FPS)
    assert not fit.ok and fit.reason == "only 26% of the descent seen", fit.reason
    # A real fall, jittering by a few centimetres and lost twice for three frames, is watched
    # for most of its descent.
    t2 = np.arange(0, 1.8, 1 / FPS)
    z2 = 40.0 - 0.5 * 6.8 * t2**2 + np.where(np.arange(len(t2)) % 2, 0.04, -0.04)
    keep = ((t2 < 0.6) | (t2 > 0.7)) & ((t2 < 1.2) | (t2 > 1.3))
    xz2 = np.stack([6.0 + 0 * t2, z2], axis=1)[keep]
    assert seen_descent(t2[keep], xz2[:, 1], 1 / FPS)[0] > 0.7
    fit2 = fit_fall(t2[keep], xz2, RULE, 2.9, 1 / FPS)
    assert fit2.ok, fit2.reason


@pytest.mark.parametrize(
    ("name", "z", "x"),
    [
        ("gliding bird", lambda t: 40 - 2.5 * t, lambda t: 7 * t),
        ("rising bird", lambda t: 20 + 1.8 * t, lambda t: 7 * t),
        ("flapping bird", lambda t: 30 + 0.4 * np.sin(12 * t), lambda t: 7 * t),
        ("leaf", lambda t: 30 - 1.5 * t, lambda t: 5 + 0.6 * np.sin(2.5 * t)),
        ("laundry", lambda t: 20 + 0.1 * np.sin(3 * t), lambda t: 5 + 0.3 * np.sin(3 * t)),
    ],
)
def test_distractor_tracks_fail_fit(name: str, z: object, x: object) -> None:
    t = np.arange(0, 3.0, 1 / FPS)
    xz = np.stack([x(t), z(t)], axis=1)  # type: ignore[operator]
    fit = fit_fall(t, xz, RULE, 2.9)
    assert not fit.ok, f"{name} passed: {fit}"


def test_dropped_object_gives_one_event_with_the_right_floor() -> None:
    a = analyzer()
    notices = run(a, dropped_from(12, 2))
    states = [n.event.state for n in notices]
    assert states == [EventState.STARTED, EventState.ENDED]
    ev = notices[-1].event
    assert ev.event_type == EventType.HIGH_ALTITUDE_THROWING
    d = ev.details
    assert isinstance(d, ThrowingDetails)
    assert d.candidates[0].floor in (11, 12, 13)
    assert d.candidates[0].column == "03"
    assert d.floor_range[0] <= 12 <= d.floor_range[1] + 1
    assert 0.8 < d.g_ratio < 1.2
    assert d.release_time_s < 0  # released before the first sighting
    # the alert comes while the object is still falling, the end with the whole track
    assert notices[0].event.alerted_at < ev.updated_at
    assert len(d.trajectory) > len(notices[0].event.details.trajectory)


def test_fall_made_of_one_long_blind_jump_fails() -> None:
    """Benchmark seed 10140 (camera bitrate): an insect at the lens, then noise blobs, then
    7 unseen frames, then the insect again 5.8 m lower: 56 % of the "fall" in one gap."""
    t = np.array([0.00, 0.04, 0.08, 0.12, 0.16, 0.20, 0.24, 0.28, 0.32, 0.60, 0.68])
    z = np.array([12.69, 12.72, 12.43, 11.60, 11.11, 10.31, 9.44, 9.44, 9.44, 3.68, 2.49])
    x = np.array([9.27, 9.59, 9.71, 9.71, 9.84, 10.29, 9.50, 9.91, 10.23, 9.78, 7.33])
    fit = fit_fall(t, np.stack([x, z], axis=1), RULE, 2.9, 1 / FPS)
    assert not fit.ok and fit.reason == "56% of the descent in one unseen gap", fit.reason
    # a fall lost for a few frames on its way down is still one
    t2 = np.arange(0, 1.2, 1 / FPS)
    z2 = 30.0 - 0.5 * 9.81 * t2**2
    keep = (t2 < 0.5) | (t2 > 0.62)
    fit2 = fit_fall(t2[keep], np.stack([5.0 + 0 * t2, z2], axis=1)[keep], RULE, 2.9, 1 / FPS)
    assert fit2.ok, fit2.reason


def test_seen_descent_follows_the_cameras_own_frame_rate() -> None:
    """A camera sending 8 fps with jittery timestamps: every step of the fall is 0.12 s, three
    25 fps frames, yet each is the next frame the camera sent, so the fall counts as seen."""
    rng = np.random.default_rng(7)
    frames = dropped_from(12, 2)
    a = analyzer()
    notices = []
    for i in range(0, len(frames) + 30, 3):
        pts = frames[i] if i < len(frames) else []
        s = sample(i, pts)
        jitter = float(rng.uniform(-0.004, 0.004))
        notices.extend(a.observe_motion(replace(s, time_s=s.time_s + jitter)))
    assert [n.event.state for n in notices] == [EventState.STARTED, EventState.ENDED]
    assert notices[-1].event.details.candidates[0].floor == 12  # type: ignore[union-attr]


def test_light_object_with_drag_and_a_toss_still_counts() -> None:
    a = analyzer()
    notices = run(a, dropped_from(9, 4, v0z=1.5, vx=-0.8, drag_vt=14.0))
    ended = [n for n in notices if n.event.state == EventState.ENDED]
    assert len(ended) == 1
    d = ended[0].event.details
    assert isinstance(d, ThrowingDetails)
    assert abs(d.candidates[0].floor - 9) <= 1


def test_short_fall_below_minimum_is_ignored() -> None:
    a = analyzer(min_fall_floors=2.0)
    # from floor 2's sill to the ground: 3.9 m, under the 1.5 floors a fall that reaches the
    # ground must show
    frames = dropped_from(2, 1, frames=60, ground=0.0)
    assert run(a, frames) == []


def test_rain_of_parallel_falling_tracks_is_suppressed() -> None:
    a = analyzer()
    frames: list[list[tuple[float, float]]] = []
    for k in range(40):
        pts = []
        for j in range(12):  # twelve drops at once, all falling fast and straight
            x, z = fall_xz(16, j % 6, (k + 3) / FPS, v0z=-8.0)
            pts.append(to_px((x + 0.8 * (j // 6), z)))
        frames.append(pts)
    assert run(a, frames) == []


def test_rain_streaks_at_dusk_hold_alerts_while_they_last() -> None:
    """Faint rain breaks into short streak fragments that never make falling tracks; their
    shape (tall and thin, several per frame, frame after frame) is enough."""
    rng = np.random.default_rng(3)

    def with_streaks(frames: list[list[tuple[float, float]]], every: int) -> list[MotionSample]:
        out = []
        for i, pts in enumerate(frames):
            base = sample(i, pts)
            if i % every:
                out.append(base)
                continue
            tops = rng.uniform([100, 50], [W - 100, H - 100], (6, 2)).astype(np.float32)
            streaks = np.concatenate(
                [tops, tops + np.array([3, 20], np.float32)], axis=1
            )  # 3 px wide, 20 px tall
            b = base.blobs
            blobs = Blobs(
                xy=np.concatenate([b.xy, tops + np.array([1.5, 10], np.float32)]),
                area=np.concatenate([b.area, np.full(6, 20, np.float32)]),
                bbox=np.concatenate([b.bbox, streaks]),
                contrast=np.concatenate([b.contrast, np.full(6, 15, np.float32)]),
            )
            out.append(replace(base, blobs=blobs))
        return out

    def alerts(samples: list[MotionSample]) -> int:
        a = analyzer()
        return sum(len(a.observe_motion(smp)) for smp in samples)

    throw = dropped_from(12, 2)
    assert alerts(with_streaks(throw, every=1)) == 0  # raining throughout: held
    assert alerts(with_streaks(throw, every=2)) == 1  # never 3 frames in a row: not rain


def test_exposure_jump_resets_tracks_without_events() -> None:
    a = analyzer()
    frames = dropped_from(12, 2, frames=10)  # only the first 10 frames...
    notices = []
    for i, pts in enumerate(frames):
        notices.extend(a.observe_motion(sample(i, pts)))
    for k in range(3):  # ...then the whole picture changes for longer than a keyframe does
        notices.extend(a.observe_motion(sample(len(frames) + k, [], global_change=True)))
    assert notices == []
    assert a._tracks == []


def test_a_fall_goes_on_across_a_keyframe_refresh() -> None:
    """A camera at a low bitrate repaints the picture at each keyframe: one or two frames in
    the middle of a fall are a global change (3-D benchmark, office at 384 kbit/s). The fall
    is one track across them, reported as a whole."""

    def trajectories(at: int, n: int) -> list[tuple[tuple[float, float, float], ...]]:
        a = analyzer()
        notices = []
        for i, pts in enumerate(dropped_from(12, 2)):
            notices.extend(a.observe_motion(sample(i, pts, global_change=at <= i < at + n)))
        for k in range(80, 90):
            notices.extend(a.observe_motion(sample(k, [])))
        ended = [n.event.details for n in notices if n.event.state == EventState.ENDED]
        return [d.trajectory for d in ended if isinstance(d, ThrowingDetails)]

    (whole,) = trajectories(0, 0)
    (across,) = trajectories(20, 2)
    assert len(across) == len(whole) - 2  # the same fall less the two repainted frames
    assert across[0] == whole[0]


def test_falling_start_skips_the_hand_before_the_release() -> None:
    from pipeline.rules.throwing import falling_start

    lifted = [20.0, 20.3, 20.6, 20.9]  # raised overhead
    held = [21.0, 21.02, 20.99]  # a moment of rest
    fall = [21.0 - 0.5 * 9.81 * (k / 25) ** 2 for k in range(1, 30)]
    z = np.array(lifted + held + fall)
    start = falling_start(z)
    # the last lifting step may stay in (centroid smoothing); the fall itself must be whole
    assert len(lifted) - 1 <= start <= len(lifted) + len(held)


def test_object_waved_then_dropped_is_one_event_from_the_release() -> None:
    a = analyzer()
    frames = dropped_from(12, 2)
    wave = [[to_px(fall_xz(12, 2, 0.0))] for _ in range(0)]
    # before the drop, the hand moves the object up and down in front of the window
    x0, z0 = fall_xz(12, 2, 0.0)
    wave = [[to_px((x0 + 0.1 * math.sin(k), z0 + 0.4 * math.sin(k / 2)))] for k in range(12)]
    notices = run(a, wave + frames[3:])
    ended = [n for n in notices if n.event.state == EventState.ENDED]
    assert len(ended) == 1
    d = ended[0].event.details
    assert isinstance(d, ThrowingDetails)
    assert d.candidates[0].floor in (11, 12, 13)
    assert 0.7 < d.g_ratio < 1.3


def test_composite_patches_match_the_full_frame_conversion(tmp_path: Path) -> None:
    """The composite converts only the boxes around the object to BGR; they must show what a
    whole-frame conversion shows there (within rounding), at chroma-aligned positions."""
    import av

    from pipeline.evidence.overlay import _FramePixels
    from pipeline.ingest.display import IDENTITY
    from tests.media import Actor, Scene, write_h264

    scene = Scene(duration_s=1, fps=10, gop=10,
                  actors=(Actor(box=(37, 51, 61, 83), t0=0, t1=9, color=(30, 200, 90)),))  # fmt: skip
    with av.open(str(write_h264(tmp_path / "s.mp4", scene))) as c:
        frame = next(iter(c.decode(video=0)))
    full = frame.to_ndarray(format="bgr24")
    pixels = _FramePixels(frame, IDENTITY)
    for box in [(33, 47, 65, 87), (-5, -5, 9, 9), (300, 220, 400, 300), (101, 77, 102, 78)]:
        patch, x0, y0 = pixels.crop(*box)
        assert x0 % 2 == 0 and y0 % 2 == 0 and x0 <= max(0, box[0]) and y0 <= max(0, box[1])
        ref = full[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]]
        assert patch.shape == ref.shape and patch.size > 0
        assert np.abs(patch.astype(int) - ref.astype(int)).max() <= 4


def test_a_track_that_comes_back_on_a_falling_object_after_a_gap_is_judged_by_what_follows() -> (
    None
):
    """A leaf's track drifts about, loses its leaf for a few frames and comes back on a
    falling object's blob beside it (3-D benchmark, office seed 4711): the leaf's wanderings
    spoil the whole track's fit, so what follows the gap is tested as the new track it would
    have been, and the fall is reported from its first point after the gap."""
    fall = [pts for pts in dropped_from(12, 2) if pts]
    x0, y0 = fall[0][0]
    rng = np.random.default_rng(5)
    leaf = [
        [(x0 - 60 + 2.0 * k + rng.normal(0, 1.5), y0 - 25 + 0.8 * k + rng.normal(0, 1.5))]
        for k in range(28)
    ]
    notices = run(analyzer(), [*leaf, [], [], [], [], [], *fall])
    started = [n for n in notices if n.event.state == EventState.STARTED]
    assert len(started) == 1
    d = started[0].event.details
    assert isinstance(d, ThrowingDetails)
    assert d.trajectory[0][1:] == pytest.approx(fall[0][0], abs=0.1)
    assert abs(d.candidates[0].floor - 12) <= 1


def test_a_long_lived_track_that_never_falls_is_refitted_ever_more_rarely(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bird circling in front of the façade for 8 s, over two floors: fitted every 3 new
    points for its first 3 s, then after an eighth of its points (a fall lives 1-3 s)."""
    a = analyzer()
    fits = []
    evaluate = a._evaluate

    def counted(tr: object) -> object:
        fits.append(len(tr.points))  # type: ignore[attr-defined]
        return evaluate(tr)  # type: ignore[arg-type]

    monkeypatch.setattr(a, "_evaluate", counted)
    # (its descents are looked at again once it has ended: other tracks, other fits)
    monkeypatch.setattr(a, "_second_look", lambda *_: [])
    frames = [
        [to_px((8.0 + 3.0 * math.sin(k / 30), 20.0 + 3.0 * math.cos(k / 20)))] for k in range(200)
    ]
    assert run(a, frames) == []
    early = [n for n in fits if n <= 75]
    late = [n for n in fits if n > 80]
    assert len(early) >= 15  # every 3 points while young
    assert late and min(np.diff(late)) >= 10  # ≥ 80 // 8 apart


def test_a_stray_centroid_now_and_then_is_no_rise_but_a_rise_over_two_points_is() -> None:
    # tossed up, then the slow top: a low-contrast object's blob pulled up 10 cm now and then
    up = np.array([9.5, 9.6, 9.7, 9.8, 9.9])
    top = np.tile([10.0, 10.1, 10.0], 4)
    fall = 10.0 - 4.9 * np.arange(1, 25, dtype=np.float64) ** 2 / FPS**2
    z = np.concatenate([up, top, fall])
    assert float(np.mean(np.diff(z) < 0.05)) < 0.8 <= monotonic_share(z)
    # a chain of leaf blobs, up and down over two or three points at a time
    leaf = np.array([10.0, 9.8, 9.6, 9.8, 10.0, 10.1, 9.9, 9.7, 9.5, 9.7, 9.9, 9.6, 9.3, 9.0])
    assert monotonic_share(leaf) < 0.7
    # a track hopping between two leaves, one above the other
    assert monotonic_share(np.tile([10.0, 10.2], 12)) < 0.7
    assert monotonic_share(np.array([1.0])) == 0.0


def test_where_a_track_went_over_to_another_object_by_its_blob_sizes() -> None:
    specks, fall = [5.0, 8.0, 4.0, 12.0, 6.0], [120.0, 130.0, 150.0, 160.0, 200.0, 260.0]
    # the object's first blob is 5; medians of three see the change from 4 to 6, and the
    # last of those (the object's second point) is where the track is tested from
    assert size_switches(specks + fall, 0)[-1:] == [6]
    assert size_switches(specks + fall, 3)[-1:] == [6]
    assert size_switches(specks + fall, 4) == []  # too near the fit's start to tell
    # a fall nearing the camera grows smoothly, its blob split now and then: no switch
    growing = [20.0 * 1.25**k for k in range(14)]
    growing[6] = 5.0
    assert size_switches(growing, 0) == []
    assert size_switches([5.0, 120.0], 0) == []  # too short to tell


def test_a_throw_rising_in_the_picture_before_it_falls_reaches_the_3d_fit() -> None:
    """Thrown out towards a camera below, an object rises in the picture (it comes nearer)
    for a while before it falls; its slow top is no leaf. Where a camera fits, such a track
    goes on to the 3-D fit (here a stand-in that says it was asked); a leaf going up and down
    repeatedly does not, and without a camera the façade-plane tests still want a fall."""
    t = np.arange(36) / FPS
    rise = 8.0 + 0.07 * np.arange(12)  # 0.07 m a frame, under the walk-back's noise
    fall = rise[-1] - 4.9 * np.arange(1, 25, dtype=np.float64) ** 2 / FPS**2
    z = np.concatenate([rise, fall])
    assert monotonic_share(z) < 0.8 <= rise_then_fall_share(z)
    xz = np.stack([10.0 + 0 * t, z], axis=1)
    asked = fit_fall(t, xz, RULE, 2.9, 1 / FPS, lambda: "asked")
    assert asked.reason == "asked"
    leaf = np.tile([9.0, 9.2, 9.4, 9.2, 9.0, 8.8], 6)[:36] - 0.03 * np.arange(36)
    assert rise_then_fall_share(leaf) < 0.8
    swaying = fit_fall(t, np.stack([10.0 + 0 * t, leaf], axis=1), RULE, 2.9, 1 / FPS,
                       lambda: "asked")  # fmt: skip
    assert "rising then falling" in swaying.reason
    assert "monotonic" in fit_fall(t, xz, RULE, 2.9, 1 / FPS).reason


def test_a_speck_beside_the_path_while_the_object_goes_unseen_is_not_taken_for_it() -> None:
    """A fast fall goes unseen for a frame (compression, a dark patch behind it) and a noise
    speck lies beside its path, inside a round gate as wide as the fall's pace allows: taken,
    it spoiled the whole fall's fit (3-D benchmark, office seed 6060 scene 2) or, where the
    fall passed anyway, stood in its trajectory. The gate is narrow across the predicted
    step, so the speck is left and the fall goes on."""
    # 6 floors over the same pixels: a close camera; the object thrown down
    low = FACADE.model_copy(update={"top_floor": 6})
    fall = dropped_from(6, 2, start=0, ground=0.0, grid=FacadeGrid(low, W, H), v0z=-6.0)
    steps = [math.dist(a[0], b[0]) for a, b in itertools.pairwise(fall)]
    k = 10  # 13 px a frame, established
    (x0, y0), (x1, y1) = fall[k - 1][0], fall[k][0]
    ux, uy = (x1 - x0) / steps[k - 1], (y1 - y0) / steps[k - 1]
    off = 2.6 * steps[k - 1]  # inside the round gate of that pace, outside the narrow one
    speck = [(x1 - uy * off, y1 + ux * off)]
    ids = iter(f"ev{i}" for i in range(1, 100))
    a = ThrowingAnalyzer("cam", RULE, [low], [ZONE], new_id=lambda _t: next(ids))
    notices = run(a, [[], [], *fall[:k], speck, *fall[k + 1 :]])
    started = [n for n in notices if n.event.state == EventState.STARTED]
    assert len(started) == 1
    d = started[0].event.details
    assert isinstance(d, ThrowingDetails)
    assert all(math.dist(p[1:], speck[0]) > 1.0 for p in d.trajectory)
    assert abs(d.candidates[0].floor - 6) <= 1


def test_a_track_unseen_for_frames_does_not_share_a_passing_falls_blob() -> None:
    """An established track falling (down the image at each of its last steps) may share its
    blob with another established track: a fall passing a swaying branch's track keeps its
    own blob. A leaf's track that was drifting down and has gone unseen for frames is not
    falling now: it took a passing fall's blob 45 px from where it lost its leaf and reported
    the fall from the leaf (3-D benchmark, office seed 6060 scene 16)."""
    a = analyzer()
    for i in range(18):  # (the leaf's track is retired after 6 frames unseen)
        pts = [(600.0, 100.0 + 6.0 * i)]  # a fall, 6 px a frame
        if i < 12:
            pts.append((640.0, 150.0 + 3.0 * i))  # a leaf drifting down beside it, then unseen
        a.observe_motion(sample(i, pts))
    (leaf,) = [tr for tr in a._tracks if tr.points[0][1] == 640.0]
    assert [p[1] for p in leaf.points] == [640.0] * 12


def _seen_in_two_pieces(
    first: int, again: int, until: int, others: list[tuple[float, float]] | None = None
) -> tuple[ThrowingAnalyzer, list[list[tuple[float, float]]]]:
    """A close camera's fall from the 6th floor, seen for ``first`` frames, unseen until
    ``again``, seen until ``until`` (and ``others`` in every frame after ``first``)."""
    low = FACADE.model_copy(update={"top_floor": 6})
    fall = dropped_from(6, 2, start=0, ground=0.0, grid=FacadeGrid(low, W, H))
    frames = [[], [], *fall[:first]]
    frames += [[] for _ in range(again - first)] + fall[again:until]
    frames += [[] for _ in range(len(fall) - until)]
    for f in frames[2 + first :]:
        f.extend(others or [])
    ids = iter(f"ev{i}" for i in range(1, 100))
    return ThrowingAnalyzer("cam", RULE, [low], [ZONE], new_id=lambda _t: next(ids)), frames


@pytest.mark.parametrize(("first", "again", "until"), [(20, 28, 34), (16, 24, 32), (24, 31, 37)])
def test_a_fall_lost_for_a_stretch_is_followed_again_by_its_curve(
    first: int, again: int, until: int
) -> None:
    """An object unseen for a stretch of its fall (a wall of its own shade): its track ends,
    and where it is seen again it moves farther a frame than a new track's gate allows, so
    every blob starts a track of its own; neither piece shows enough of the fall (3-D
    benchmark, office seeds 31337 scene 6, 5151 scene 10). Once the track has ended its
    curve is followed again through the frames after it, whichever track took their blobs:
    one event, from the right floor, with the points after the gap."""
    a, frames = _seen_in_two_pieces(first, again, until)
    started = [n for n in run(a, frames) if n.event.state == EventState.STARTED]
    assert len(started) == 1
    d = started[0].event.details
    assert isinstance(d, ThrowingDetails)
    assert d.candidates[0].floor == 6
    assert len(d.trajectory) >= first + 4


def test_a_second_look_does_not_make_a_fall_of_what_lies_beside_the_curve() -> None:
    """The second look takes only blobs near the curve, each lower than the last by half the
    predicted drop, and what it takes is tested as any track is: a fall's first piece
    followed by leaves beside where it would have gone, or by a speck sitting on its path
    (where the object would have been 9 frames after it was lost), and nothing else, stays
    a failed fall; with the rest of the fall seen again it is one."""
    leaf = [(660.0, 420.0), (668.0, 300.0)]
    speck = [(603.0, 330.0)]
    for others in (leaf, speck):
        a, frames = _seen_in_two_pieces(20, 60, 60, others=others)
        assert not [n for n in run(a, frames) if n.event.state == EventState.STARTED]
    a, frames = _seen_in_two_pieces(20, 28, 34, others=leaf)
    assert len([n for n in run(a, frames) if n.event.state == EventState.STARTED]) == 1


def test_only_a_track_going_down_at_each_of_its_last_steps_gets_a_second_look() -> None:
    """A falling object's track goes down the image at every step; a leaf's track hopping
    among the fronds' blobs and their ghosts (the same blob twice) went down as much over
    its last points but not at each step, and its second look found a chain of leaf blobs
    that passed as a fall (3-D benchmark background, office view, seed 2323, cold start)."""
    fall = [(i / 25, 600.0, 100.0 + 3.0 * i + 0.4 * i * i, 30.0, 0.0) for i in range(8)]
    assert _went_down(fall)
    leaf = [(i / 25, 391.0, 85.0 + 10.0 * (i // 2), 30.0, 0.0) for i in range(8)]
    assert leaf[-1][2] - leaf[0][2] >= 30.0  # as far down, in pairs of the same blob
    assert not _went_down(leaf)
    assert not _went_down(fall[:3])  # too short to have a curve


def test_all_tracks_are_predicted_at_once_as_each_would_predict_itself() -> None:
    # every length a window can have (1 point, constant velocity, acceleration), a track
    # standing still (its acceleration's system singular in x) and unevenly timed points
    rng = np.random.default_rng(7)
    tracks = []
    for n in [*range(1, 13), 6, 9]:
        ts = np.cumsum(rng.uniform(0.03, 0.09, n))
        xs = 400 + rng.normal(0, 30, n).cumsum()
        ys = 100 + 4.9 * ts**2 * 80 + rng.normal(0, 2, n)
        tracks.append(_Track([(t, x, y, 9.0, 0.0) for t, x, y in zip(ts, xs, ys, strict=True)], 0))
    tracks.append(_Track([(0.04 * i, 500.0, 300.0, 9.0, 0.0) for i in range(8)], 0))
    for t in (tracks[0].points[-1][0] + 0.04, 1.37):
        one_by_one = np.array([_extrapolate(tr.points[-_FIT_WINDOW:], t) for tr in tracks])
        assert np.array_equal(_predictions(tracks, t), one_by_one)


def test_a_tracks_cached_descents_and_metres_follow_its_points() -> None:
    """_stitch's piece test per end and the track's metres (and their height span) are kept
    between frames: they must be what the points give, as points are added and when the
    track is given another list (stitched or pruned)."""
    rng = np.random.default_rng(11)
    fall = [(i / 25, 600.0 + rng.normal(0, 2), 100.0 + 9.0 * i, 30.0, 0.0) for i in range(14)]
    leaf = [(i / 25, 400.0 + rng.normal(0, 3), 300.0 + rng.normal(0, 3), 30.0, 0.0)
            for i in range(14)]  # fmt: skip
    tr = _Track(fall[:9], 0)
    assert tr.descents(9)[8]  # a fall's piece of its first eight points is a descent
    tr.points += fall[9:]  # points only added: the earlier answers stand, the new ones follow
    expected = [end >= 8 and _descends(fall[end - 8 : end]) for end in range(15)]
    assert tr.descents(14) == expected
    tr.points = leaf[:]  # another list: every answer asked again
    assert tr.descents(14) == [end >= 8 and _descends(leaf[end - 8 : end]) for end in range(15)]
    assert not any(tr.descents(14))

    a = analyzer()
    a.observe_motion(sample(0, [(640.0, 300.0)]))  # the analyzer learns the frame size
    tracks = [_Track(fall[:5], 0), _Track(leaf[:3], 0)]
    a._convert(tracks)  # both at once
    tracks[0].points += fall[5:]
    for tr in tracks:
        xz = a._metres(tr)
        alone = a._grids[0].to_metres(np.array([p[1:3] for p in tr.points], np.float64))
        assert np.array_equal(xz, alone)
        assert tr.z_span == (float(alone[:, 1].min()), float(alone[:, 1].max()))
    tracks[0].points, tracks[0].xz = fall[3:7], np.zeros((0, 2))  # as _prune and _stitch do
    a._metres(tracks[0])  # converted again, the span with it
    alone = a._grids[0].to_metres(np.array([p[1:3] for p in fall[3:7]], np.float64))
    assert tracks[0].z_span == (float(alone[:, 1].min()), float(alone[:, 1].max()))


def test_the_cheap_pretest_of_a_descent_never_turns_away_one_the_full_test_passes() -> None:
    # falls (some with the leaf or speck a lost track took at its end) and swaying leaves
    rng = np.random.default_rng(11)
    passed = 0
    for i in range(400):
        n = int(rng.integers(4, 20))
        t = np.arange(n) / FPS
        if i % 2:
            y = 200 + rng.uniform(0, 400) * t**2 + rng.uniform(0, 60) * t
        else:
            y = 300 + rng.normal(0, 3, n).cumsum()
        x = 500 + rng.normal(0, 1.5, n).cumsum()
        pts = [(float(a), float(b), float(c), 9.0, 0.0) for a, b, c in zip(t, x, y, strict=True)]
        for _ in range(int(rng.integers(0, 3))):
            pts.append((pts[-1][0] + 1 / FPS, pts[-1][1] + rng.normal(0, 20), pts[-1][2], 9.0, 0.0))
        if _descended(_trim(pts)[-8:]):  # the full test, without the pretest
            passed += 1
            assert any(_may_have_gone_down(pts, k) for k in range(len(pts) - 3, len(pts) + 1))
            assert _went_down(pts)
    assert passed > 50
