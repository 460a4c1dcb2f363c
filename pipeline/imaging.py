"""Image helpers shared by the stages that shrink whole frames on every keyframe."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def area_shrink(
    image: NDArray[np.uint8], size: tuple[int, int], rest: int = cv2.INTER_AREA
) -> NDArray[np.uint8]:
    """``image`` shrunk to ``size`` (width, height) by area averaging, as
    ``cv2.resize(..., INTER_AREA)`` does, at a fraction of its cost.

    OpenCV's area resize has a fast path only for whole-number factors; the change gate's
    160 px thumbnail of a 1080p-wide zone crop (factor 9.6) took the general path, 2.7 times
    slower (``benchmarks/thumbnails.py``). Here the
    whole-number part of the factor is taken first (an exact box average on the fast path)
    and the rest (less than 2) on the small image. The first pass leaves out the last few
    rows and columns that do not fill a box (fewer than the factor: under one thumbnail
    pixel), so the result may differ from one pass by a grey level where the picture changes
    sharply. ``rest=cv2.INTER_LINEAR`` takes the rest bilinearly, cheaper again where the
    picture is only ever compared with one made the same way."""
    w, h = size
    rows, cols = image.shape[:2]
    kx, ky = cols // max(1, w), rows // max(1, h)
    if kx >= 2 or ky >= 2:
        kx, ky = max(1, kx), max(1, ky)
        cut = image[: rows // ky * ky, : cols // kx * kx]
        image = np.asarray(
            cv2.resize(cut, (cols // kx, rows // ky), interpolation=cv2.INTER_AREA), np.uint8
        )
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return np.asarray(cv2.resize(image, (w, h), interpolation=rest), np.uint8)
