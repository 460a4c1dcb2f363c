"""Metres on the ground from image points: a zone whose real size is known (``size_m``).

A 4-corner zone drawn on flat ground, together with its width and length in metres, fixes the
planar homography from the image to the ground. That is enough to measure what stands on the
ground: a static object's outline projected to the ground has the size of its footprint (plus,
seen obliquely, the shadow of its height away from the camera), which tells a parked car
(≈ 4.5 × 1.8 m) from a bag or a person without any detector class.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import ZoneConfig


class GroundPlane:
    """Image (relative 0-1) → ground (metres) for one calibrated zone."""

    def __init__(self, image_rel: NDArray[np.float64], ground_m: NDArray[np.float64]) -> None:
        self._h = cv2.getPerspectiveTransform(
            np.asarray(image_rel, np.float32), np.asarray(ground_m, np.float32)
        )
        # Points on the camera's side of the horizon map with the sign the corners have; a
        # point past the horizon (sky, far façade) has no place on the ground.
        w = self._h[2] @ np.vstack([np.asarray(image_rel).T, np.ones(len(image_rel))])
        self._sign = float(np.sign(w[0]))

    @classmethod
    def of_zone(cls, zone: ZoneConfig) -> GroundPlane | None:
        if zone.size_m is None:
            return None
        width, length = zone.size_m
        ground = np.array([[0.0, 0.0], [width, 0.0], [width, length], [0.0, length]])
        return cls(np.asarray(zone.polygon, np.float64), ground)

    def to_ground(self, points_rel: NDArray[np.float32]) -> NDArray[np.float64] | None:
        """(N, 2) relative image points → (N, 2) metres; None if any lies past the horizon."""
        pts = np.hstack([np.asarray(points_rel, np.float64), np.ones((len(points_rel), 1))])
        proj = pts @ self._h.T
        if np.any(proj[:, 2] * self._sign <= 1e-9):
            return None
        return np.asarray(proj[:, :2] / proj[:, 2:3], np.float64)

    def footprint(
        self, points_px: NDArray[np.float32], size: tuple[int, int]
    ) -> tuple[float, float] | None:
        """(long side, short side) in metres of the smallest rectangle around the points."""
        if len(points_px) < 3:
            return None
        rel = np.asarray(np.asarray(points_px, np.float32) / np.array(size, np.float32), np.float32)
        ground = self.to_ground(rel)
        if ground is None:
            return None
        (_, _), (a, b), _ = cv2.minAreaRect(ground.astype(np.float32))
        return (float(max(a, b)), float(min(a, b)))
