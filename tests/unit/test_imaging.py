"""The two-pass area shrink gives what OpenCV's one-pass area resize gives."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.imaging import area_shrink


def scene(rows: int, cols: int, channels: int) -> NDArray[np.uint8]:
    """A street-like picture: smooth light, hard-edged boxes (cars, stalls), a little noise."""
    rng = np.random.default_rng(rows + cols)
    y, x = np.mgrid[0:rows, 0:cols]
    img = 90 + 60 * np.sin(x / 300.0) * np.cos(y / 200.0)
    for _ in range(12):
        x0, y0 = rng.integers(0, cols - 200), rng.integers(0, rows - 120)
        img[y0 : y0 + rng.integers(40, 120), x0 : x0 + rng.integers(60, 200)] = rng.integers(0, 255)
    img = img + rng.normal(0, 2, img.shape)
    out = np.clip(np.repeat(img[..., None], channels, axis=2), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[..., 0] if channels == 1 else out)


@pytest.mark.parametrize(
    ("shape", "size"),
    [((900, 1540, 3), (192, 112)), ((900, 1540, 3), (320, 187)), ((1080, 1920, 1), (160, 90)),
     ((700, 500, 3), (300, 420))],
)  # fmt: skip
def test_matches_one_pass_area_resize(shape: tuple[int, int, int], size: tuple[int, int]) -> None:
    img = scene(*shape)
    ours = area_shrink(img, size)
    ref = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    assert ours.shape == ref.shape and ours.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - ref)
    # the same picture but for edges, shifted by under a thumbnail pixel at the far side
    assert float(diff.mean()) < 1.5
    assert float(np.percentile(diff, 95)) <= 2


def test_whole_factors_are_exact() -> None:
    img = scene(1080, 1920, 3)
    for size in ((320, 180), (480, 270), (960, 540)):
        ref = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        assert np.array_equal(area_shrink(img, size), ref)


def test_the_rest_of_the_factor_may_be_bilinear() -> None:
    img = scene(1080, 1920, 1)
    # 1920 → 640: whole (3), the same area average whatever the rest is
    assert np.array_equal(
        area_shrink(img, (640, 360), rest=cv2.INTER_LINEAR),
        cv2.resize(img, (640, 360), interpolation=cv2.INTER_AREA),
    )
    # 960 → 640 (1.5): no whole part, bilinear
    half = np.ascontiguousarray(img[::2, ::2])
    assert np.array_equal(
        area_shrink(half, (640, 360), rest=cv2.INTER_LINEAR),
        cv2.resize(half, (640, 360), interpolation=cv2.INTER_LINEAR),
    )
    # 1920 → 800 (2.4): halved by area, then 960 → 800 bilinear
    two = cv2.resize(img, (960, 540), interpolation=cv2.INTER_AREA)
    assert np.array_equal(
        area_shrink(img, (800, 450), rest=cv2.INTER_LINEAR),
        cv2.resize(two, (800, 450), interpolation=cv2.INTER_LINEAR),
    )
