"""Analysis frames converted by OpenCV from the decoded planes (``source.to_bgr``) are the
picture swscale makes, within its own rounding; formats it does not take go through swscale."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.ingest.source import analysis_size, to_bgr
from tests.media import Actor, Scene, write_h264


def _textured(w: int, h: int, seed: int = 3) -> NDArray[np.uint8]:
    """Colour gradients, saturated blocks and sensor-like noise: chroma and edges both count."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1).astype(np.int16)
    for _ in range(12):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        img[y : y + int(rng.integers(8, 40)), x : x + int(rng.integers(8, 40))] = rng.integers(
            0, 256, 3
        )
    img += rng.normal(0, 4, img.shape).astype(np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def _compare(ours: NDArray[np.uint8], ref: NDArray[np.uint8]) -> tuple[float, float]:
    diff = ours.astype(np.int16) - ref.astype(np.int16)
    return float(np.abs(diff).mean()), float(np.abs(diff.reshape(-1, 3).mean(0)).max())


@pytest.mark.parametrize("size", [(1920, 1080), (704, 576), (1000, 562)])
def test_a_camera_frame_converts_as_faithfully_as_swscale_does(size: tuple[int, int]) -> None:
    """Judged against the picture the frame was made from (area-averaged to the target size):
    no further from it than swscale's conversion, and with no colour cast."""
    w, h = size
    picture = _textured(w, h)
    vf = av.VideoFrame.from_ndarray(picture, format="bgr24").reformat(format="yuv420p")
    tw, th = analysis_size(w, h, 960)
    truth = picture if (tw, th) == (w, h) else cv2.resize(picture, (tw, th),
                                                          interpolation=cv2.INTER_AREA)  # fmt: skip
    ours = to_bgr(vf, tw, th)
    ref = np.asarray(vf.to_ndarray(width=tw, height=th, format="bgr24"), np.uint8)
    assert ours.shape == ref.shape == (th, tw, 3)
    ours_abs, ours_cast = _compare(ours, np.asarray(truth, np.uint8))
    ref_abs, ref_cast = _compare(ref, np.asarray(truth, np.uint8))
    assert ours_abs <= ref_abs + 0.25, (ours_abs, ref_abs)
    assert ours_cast <= max(2.0, ref_cast), (ours_cast, ref_cast)
    assert _compare(ours, ref)[0] < 3.0  # and close to what swscale gave before


def test_decoded_h264_frames_with_padded_rows_convert_alike(tmp_path: Path) -> None:
    """Frames straight from the decoder, whose planes carry row padding."""
    clip = write_h264(tmp_path / "c.mp4", Scene(duration_s=1, fps=5, gop=5, width=360,
                                                 height=200, actors=(Actor((40, 40, 120, 100), 0, 9),)))  # fmt: skip
    with av.open(str(clip)) as c:
        frames = list(c.decode(video=0))
    assert frames and frames[0].planes[0].line_size > frames[0].width  # padded rows
    for vf in frames:
        ours = to_bgr(vf, 180, 100)
        ref = np.asarray(vf.to_ndarray(width=180, height=100, format="bgr24"), np.uint8)
        assert _compare(ours, ref)[0] < 3.0


def test_other_formats_and_full_range_go_through_swscale_unchanged() -> None:
    bgr = _textured(320, 180)
    for fmt in ("yuvj420p", "nv12", "yuv444p"):
        vf = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format=fmt)
        ref = vf.to_ndarray(width=160, height=90, format="bgr24")
        assert np.array_equal(to_bgr(vf, 160, 90), ref), fmt
