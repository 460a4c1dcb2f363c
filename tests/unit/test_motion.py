"""The motion stage's frame-wide changes: a low-bitrate keyframe is not one, a shake is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config import ZoneConfig
from pipeline.ingest.media import encode_h264
from pipeline.rules.motion import MotionExtractor
from pipeline.types import MotionSample

W, H, FPS = 1280, 720, 25
T0 = 1_700_000_000.0
ZONE = ZoneConfig(id="z", kind="facade", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])


def facade(shake_at: int | None = None) -> Iterator[NDArray[np.uint8]]:
    """4 s of a finely textured façade with sensor noise and an object falling through it;
    from ``shake_at`` on, the view is shifted by 12 px."""
    rng = np.random.default_rng(7)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (H, W)).astype(np.uint8), (0, 0), 1.5)
    tex = cv2.normalize(tex, None, 40, 220, cv2.NORM_MINMAX)
    for i in range(100):
        view = tex if shake_at is None or i < shake_at else np.roll(tex, 12, axis=1)
        f = cv2.cvtColor(view, cv2.COLOR_GRAY2BGR).astype(np.int16)
        f += rng.integers(-3, 4, f.shape).astype(np.int16)
        y = 50 + 6 * i
        f[y : y + 10, 600:610] = 10
        yield np.clip(f, 0, 255).astype(np.uint8)


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


def test_a_camera_shake_is_still_a_global_change(tmp_path: Path) -> None:
    video = encode_h264(tmp_path / "f.mp4", facade(shake_at=60), fps=FPS, gop=2 * FPS)
    assert any(s.global_change for _, s in motion(video) if s.seq >= 60)
