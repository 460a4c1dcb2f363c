"""The motion stage's frame-wide changes: a low-bitrate keyframe is not one, a jolt or a sway
is registered, a moved view is one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.config import ZoneConfig
from pipeline.ingest.media import encode_h264
from pipeline.rules.motion import MotionExtractor
from pipeline.types import MotionSample
from tests.media import PoleSway

W, H, FPS = 1280, 720, 25
T0 = 1_700_000_000.0
ZONE = ZoneConfig(id="z", kind="facade", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])


def facade(
    shake_at: int | None = None, shift_px: int = 12, sway_px: float = 0.0, grain_px: float = 1.5
) -> Iterator[NDArray[np.uint8]]:
    """4 s of a finely textured façade with sensor noise and an object falling through it;
    from ``shake_at`` on, the view is shifted by ``shift_px``; with ``sway_px``, the camera
    sways (a smooth random shift of that standard deviation, as on a pole in wind); ``grain_px``
    is the texture's fineness (tiles, brick: finer than the analysis scale resolves)."""
    rng = np.random.default_rng(7)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (H, W)).astype(np.uint8), (0, 0), grain_px)
    tex = cv2.normalize(tex, None, 40, 220, cv2.NORM_MINMAX)
    sway = PoleSway(sway_px, FPS, seed=7)
    for i in range(100):
        dx = 0 if shake_at is None or i < shake_at else shift_px  # the camera moved
        f = cv2.cvtColor(np.roll(tex, dx, axis=1), cv2.COLOR_GRAY2BGR).astype(np.int16)
        f += rng.integers(-3, 4, f.shape).astype(np.int16)
        y = 50 + 6 * i
        f[y : y + 10, 600 + dx : 610 + dx] = 10
        yield sway(np.clip(f, 0, 255).astype(np.uint8))


def motion(video: Path) -> list[tuple[bool, MotionSample]]:
    ex = MotionExtractor("cam", [ZONE], scale=0.5)
    out = []
    with av.open(str(video)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            luma = np.asarray(frame.to_ndarray(format="gray"), np.uint8)
            s = ex.process(luma, seq=i, epoch=1, pts_s=i / FPS, time_s=T0 + i / FPS)
            if s is not None:
                out.append((bool(frame.key_frame), s))
    return out


def test_a_low_bitrate_keyframe_refreshing_the_whole_picture_is_not_a_global_change(
    tmp_path: Path,
) -> None:
    # at 384 kbit/s the keyframe 2 s in renders the whole texture anew: thousands of pixels
    # change at once, by less than the object does
    video = encode_h264(tmp_path / "f.mp4", facade(), fps=FPS, gop=2 * FPS, bitrate_kbps=384)
    samples = motion(video)
    refresh = [i for i, (key, _) in enumerate(samples) if key and samples[i][1].seq > 10]
    assert refresh
    for i in (refresh[0], refresh[0] + 1):  # the keyframe and the frame after it
        s = samples[i][1]
        assert not s.global_change
        assert any(abs(x - 605) < 8 for x, _ in s.blobs.xy.tolist())  # the object, still seen


def test_a_jolted_camera_is_registered_and_a_moved_one_is_a_global_change(
    tmp_path: Path,
) -> None:
    jolt = encode_h264(tmp_path / "j.mp4", facade(shake_at=60), fps=FPS, gop=2 * FPS)
    after = [s for _, s in motion(jolt) if s.seq >= 60]
    assert not any(s.global_change for s in after)
    assert all(len(s.blobs.xy) <= 2 for s in after)  # the texture's edges do not light up
    assert sum(any(abs(x - 605) < 8 for x, _ in s.blobs.xy.tolist()) for s in after) >= 36
    moved = encode_h264(tmp_path / "m.mp4", facade(shake_at=60, shift_px=40), fps=FPS, gop=50)
    assert any(s.global_change for _, s in motion(moved) if s.seq >= 60)


@pytest.mark.parametrize(("sway_px", "grain_px"), [(0.0, 1.5), (1.0, 1.5), (2.0, 1.5), (1.0, 0.8)])
def test_a_swaying_camera_still_sees_the_object_and_little_else(
    tmp_path: Path, sway_px: float, grain_px: float
) -> None:
    """A camera on a pole sways in wind; unregistered, every edge of the façade moved and
    both development throws were lost at 1 px (``benchmarks/throwing_formats.py``). A texture
    finer than the analysis scale must be shifted before it is reduced (it aliases)."""
    frames = facade(sway_px=sway_px, grain_px=grain_px)
    video = encode_h264(tmp_path / "s.mp4", frames, fps=FPS, gop=2 * FPS)
    samples = [s for _, s in motion(video) if s.seq >= 5]
    assert not any(s.global_change for s in samples)
    seen = sum(any(abs(x - 605) < 8 for x, _ in s.blobs.xy.tolist()) for s in samples)
    assert seen >= 0.9 * len(samples)
    assert np.mean([len(s.blobs.xy) for s in samples]) < 1.5


def test_blobs_match_a_labelling_of_the_whole_region() -> None:
    # The blobs are labelled in the box around the moving pixels only: every statistic must
    # still be the whole region's (objects at odd offsets, at the region's edges, fragments
    # that the merging dilation joins, lone pixels).
    w, h = 240, 160
    ex = MotionExtractor("cam", [ZONE], scale=1.0, min_blob_px=1)
    ex._setup(w, h)
    rng = np.random.default_rng(3)
    cur = rng.integers(0, 256, (h, w)).astype(np.uint8)
    last = rng.integers(0, 256, (h, w)).astype(np.uint8)
    for offset in ((0, 0), (37, 23), (101, 55)):
        moving = np.zeros((h, w), np.uint8)
        ox, oy = offset
        moving[oy + 3 : oy + 8, ox + 5 : ox + 9] = 255  # a square
        moving[oy + 20, ox + 41] = moving[oy + 22, ox + 43] = 255  # fragments, 2 px apart
        moving[oy + 31 : oy + 40, ox + 60] = 255  # a streak...
        moving[oy + 39, ox + 60 : ox + 70] = 255  # ...with a foot
        moving[oy + 50, ox + 11] = 255  # a lone pixel
        if offset == (0, 0):
            moving[h - 2 :, w - 3 :] = 255  # in the corner
        blobs = ex._blobs(moving, cur, last)
        merged = cv2.dilate(moving, np.ones((3, 3), np.uint8))
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(merged, connectivity=8)
        diff = cv2.absdiff(cur, last).astype(np.float64)
        want = []
        for k in range(1, n):
            mine = (labels == k) & (moving > 0)
            x, y, bw, bh = stats[k, :4]
            want.append((*np.round(centroids[k], 3), mine.sum(), x, y, x + bw, y + bh,
                         round(diff[mine].mean(), 3)))  # fmt: skip
        got = [
            (round(float(cx), 3), round(float(cy), 3), a, *box, round(float(c), 3))
            for (cx, cy), a, box, c in zip(
                blobs.xy.tolist(), blobs.area.tolist(), blobs.bbox.tolist(),
                blobs.contrast.tolist(), strict=True,
            )
        ]  # fmt: skip
        assert sorted(got) == sorted(want)


def test_each_blob_gets_the_highest_activity_in_and_next_to_its_box() -> None:
    # Looked up for dozens of foliage blobs a frame at once: small boxes together, big ones
    # alone; both must give each box's own maximum over the cells it touches, at the map's
    # edges too.
    ex = MotionExtractor("cam", [ZONE], scale=1.0)
    rng = np.random.default_rng(5)
    near = rng.random((45, 80)).astype(np.float32)
    ex._activity_near = near
    x0 = rng.integers(0, 330, 300)
    y0 = rng.integers(0, 190, 300)
    side = np.where(rng.random(300) < 0.8, rng.integers(1, 12, 300), rng.integers(12, 120, 300))
    boxes = np.stack([x0, y0, x0 + side, y0 + rng.integers(1, 60, 300)], axis=1).astype(float)
    got = ex._blob_activity(boxes)
    c, (gh, gw) = 4, near.shape
    want = [
        near[min(y // c, gh - 1) : min(max(v - 1, 0) // c, gh - 1) + 1,
             min(x // c, gw - 1) : min(max(u - 1, 0) // c, gw - 1) + 1].max()
        for x, y, u, v in boxes.astype(int).tolist()
    ]  # fmt: skip
    assert got.dtype == np.float32 and got.tolist() == want
    assert ex._blob_activity(np.zeros((0, 4))).shape == (0,)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_registration_recovers_the_sway(scale: float) -> None:
    """The shift found, frame by frame, is the sway put in (up to the background's own
    pose): within 0.1 px at either analysis scale, measured in full-resolution pixels."""
    rng = np.random.default_rng(7)
    grain = cv2.GaussianBlur(rng.integers(0, 255, (H, W)).astype(np.uint8), (0, 0), 1.5)
    wall = np.asarray(cv2.normalize(grain, None, 40, 220, cv2.NORM_MINMAX), np.uint8)
    sway = PoleSway(1.0, FPS, seed=3)
    ex = MotionExtractor("cam", [ZONE], scale=scale)
    errors = []
    for i in range(120):
        ex.process(sway(wall), seq=i, epoch=1, pts_s=i / FPS, time_s=T0 + i / FPS)
        if i > 5:
            found = ex.registration
            assert found is not None  # registered from the start
            errors.append(np.array(found) / scale - sway.seen)
    e = np.array(errors)
    assert float(np.sqrt(((e - e.mean(axis=0)) ** 2).mean())) < 0.1


def test_how_far_a_camera_sways_is_told_and_a_still_one_says_nothing() -> None:
    """The cameras screen tells the integrator a camera sways (in its own pixels), so that
    the mount can be made firmer; registration keeps the analyzer working meanwhile."""
    rng = np.random.default_rng(7)
    grain = cv2.GaussianBlur(rng.integers(0, 255, (H, W)).astype(np.uint8), (0, 0), 1.5)
    wall = np.asarray(cv2.normalize(grain, None, 40, 220, cv2.NORM_MINMAX), np.uint8)
    for sway_px in (0.0, 1.0, 3.0):
        sway = PoleSway(sway_px, FPS, seed=3)
        ex = MotionExtractor("cam", [ZONE], scale=0.5)
        shifts = []
        for i in range(150):
            ex.process(sway(wall), seq=i, epoch=1, pts_s=i / FPS, time_s=T0 + i / FPS)
            shifts.append(sway.shift.copy())
        if sway_px == 0:
            assert ex.sway_px is None
        else:
            s = np.array(shifts[1:])
            assert ex.sway_px == pytest.approx(
                np.percentile(np.hypot(*(s - s.mean(axis=0)).T), 90), rel=0.1
            )
