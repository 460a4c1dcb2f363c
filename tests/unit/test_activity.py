"""Where motion is normal: the motion stage's activity map, and what the analyzer makes of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config import ZoneConfig
from pipeline.rules.motion import MotionExtractor
from pipeline.rules.throwing import _ACTIVE
from pipeline.types import Blobs, EventState, MotionSample
from tests.unit.test_camera_model import FPS, T0, H, W, analyzer, throw_px

ZONE = ZoneConfig(id="z", kind="facade", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])


def test_swaying_leaves_become_active_and_a_passing_object_does_not() -> None:
    ex = MotionExtractor("cam", [ZONE], scale=0.5)
    rng = np.random.default_rng(0)
    base = rng.integers(90, 110, (H, W), dtype=np.uint8)
    for i in range(500):
        frame = base.copy()
        # a "tree" at the top left: its leaves move about every frame
        leaves = rng.random((80, 120)) < 0.3
        frame[40:120, 60:180][leaves] = 200
        # a small object falling once through the middle
        y = 100 + 5 * i
        if y < H - 10:
            frame[y : y + 6, 640:646] = 20
        ex.process(frame, seq=i, epoch=1, pts_s=i / FPS, time_s=T0 + i / FPS)
    heat = ex.activity_map()
    assert heat is not None
    x1, y1, _, _ = ex.activity_region
    cell = 2 * 4  # full-resolution pixels per activity cell (scale 1/2, 4×4 cells)

    def at(x: int, y: int) -> float:
        assert heat is not None
        return float(heat[(y - y1) // cell, (x - x1) // cell]) / 255.0

    assert at(120, 80) > 0.2  # the tree
    assert at(643, 400) < 0.02  # where the object fell, once
    assert at(1000, 600) < 0.02  # still façade


def feed(px: np.ndarray, active_until: int, every: int = 1) -> list:  # type: ignore[type-arg]
    """The fall's points as blobs, those before index ``active_until`` where leaves move;
    ``every``: a camera that sends only every so many of the frames."""
    a = analyzer()
    notices = []
    for i in range(0, len(px) + 20, every):
        xy = np.asarray(px[i : i + 1] if 3 <= i < len(px) else [], np.float32).reshape(-1, 2)
        n = len(xy)
        act = 0.4 if i < active_until else 0.0
        blobs = Blobs(
            xy=xy, area=np.full(n, 12.0, np.float32),
            bbox=np.concatenate([xy - 2, xy + 2], axis=1).astype(np.float32),
            contrast=np.full(n, 40.0, np.float32), activity=np.full(n, act, np.float32),
        )  # fmt: skip
        s = MotionSample("cam", i, 1, i / FPS, T0 + i / FPS, blobs, False, 0.0, (W, H))
        notices.extend(a.observe_motion(s))
    return notices


def test_a_fall_among_foliage_is_reported_once_watched_falling_clear_of_it_or_across_it() -> None:
    _, px, _ = throw_px(8, 2, 0.0)
    both = [EventState.STARTED, EventState.ENDED]
    assert [n.event.state for n in feed(px, 0)] == both
    # leaves around the window it came from, then the open façade below
    assert [n.event.state for n in feed(px, len(px) // 3)] == both
    # every point where leaves move all the time: a dozen or so blobs along a curve is what
    # chains of leaf blobs make now and then...
    assert feed(px, len(px), every=3) == []
    # ...but not frame after frame of a fall down a good part of the picture
    assert [n.event.state for n in feed(px, len(px))] == both


def test_activity_map_survives_a_restart(tmp_path: Path) -> None:
    def run(ex: MotionExtractor, frames: int) -> None:
        rng = np.random.default_rng(1)
        base = np.full((H, W), 100, np.uint8)
        for i in range(frames):
            frame = base.copy()
            frame[40:120, 60:180][rng.random((80, 120)) < 0.3] = 200
            ex.process(frame, seq=i, epoch=1, pts_s=i / FPS, time_s=T0 + i / FPS)

    first = MotionExtractor("cam", [ZONE], scale=0.5)
    run(first, 200)
    before = first.activity_map()
    assert before is not None and before.max() > 50
    path = tmp_path / "cam.npz"
    first.save_activity(path)
    again = MotionExtractor("cam", [ZONE], scale=0.5)
    assert again.load_activity(path)
    run(again, 3)  # the first frames set the region up; the saved map applies from then
    after = again.activity_map()
    assert after is not None and np.abs(after.astype(int) - before.astype(int)).max() <= 3
    # a different zone (another region) starts afresh
    other = MotionExtractor(
        "cam",
        [ZONE.model_copy(update={"polygon": [(0, 0), (0.5, 0), (0.5, 0.5), (0, 0.5)]})],
        scale=0.5,
    )
    assert other.load_activity(path)
    run(other, 3)
    fresh = other.activity_map()
    assert fresh is None or fresh.max() < 50


def test_a_new_cameras_leaves_count_as_foliage_within_seconds_and_a_falling_object_does_not() -> (
    None
):
    # a leaf that swings into view and out again, stirring every other sample; an object
    # falling through open façade
    ex = MotionExtractor("cam", [ZONE], scale=0.5)
    base = np.full((H, W), 100, np.uint8)
    seen: dict[bool, list[float]] = {False: [], True: []}  # by "is the object"
    for i in range(25):  # one second: ~12 learning samples, far from a warmed-up map
        frame = base.copy()
        if i % 4 < 2:
            frame[80:88, 100:108] = 200
        frame[100 + 20 * i : 106 + 20 * i, 640:646] = 20
        sample = ex.process(frame, seq=i, epoch=1, pts_s=i / FPS, time_s=T0 + i / FPS)
        if i >= 12 and sample is not None and sample.blobs.activity is not None:
            for (x, _), a in zip(sample.blobs.xy, sample.blobs.activity, strict=True):
                seen[bool(x > 400)].append(float(a))
    assert seen[False] and seen[True]
    # the leaf: the map alone would still say ~6/(12 + 100), under the threshold
    assert min(seen[False]) >= _ACTIVE
    assert max(seen[True]) < _ACTIVE  # the object
