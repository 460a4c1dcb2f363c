"""Façade calibration: image pixels ↔ (window column, floor) ↔ metres on the façade plane.

An integrator clicks the four image corners of a floor grid (top-left, top-right, bottom-right,
bottom-left), spanning from the bottom edge of ``bottom_floor`` to the top edge of
``top_floor`` and from the left edge of the first window column to the right edge of the last.
A homography then maps any image point to façade coordinates even when the camera looks up at
the building at an angle (keystone perspective), which is how 高空抛物 cameras are mounted.

Façade coordinates: ``u`` in columns (0 at the left edge, ``len(columns)`` at the right edge),
``v`` in floors counted from the bottom edge of ``bottom_floor`` (v = 0) upwards. Metres follow
from ``column_width_m`` and ``floor_height_m``; the physics of a fall is checked in metres so that
"g" means the same thing at every height of the building despite the perspective.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import FacadeConfig


@dataclass(frozen=True, slots=True)
class FacadeCell:
    floor: int
    column: str


class FacadeGrid:
    """One calibrated façade in an image of ``width`` × ``height`` pixels."""

    def __init__(self, cfg: FacadeConfig, width: int, height: int) -> None:
        self.cfg = cfg
        self.width, self.height = width, height
        self.n_floors = cfg.top_floor - cfg.bottom_floor + 1
        self.n_cols = len(cfg.columns)
        img = np.array([(x * width, y * height) for x, y in cfg.corners], dtype=np.float32)
        fac = np.array(
            [(0, self.n_floors), (self.n_cols, self.n_floors), (self.n_cols, 0), (0, 0)],
            dtype=np.float32,
        )
        self._to_facade = cv2.getPerspectiveTransform(img, fac)
        self._to_image = cv2.getPerspectiveTransform(fac, img)

    def to_facade(self, xy_px: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 2) image pixels → (N, 2) façade (u columns, v floors)."""
        pts = np.asarray(xy_px, dtype=np.float64).reshape(-1, 1, 2)
        return np.asarray(cv2.perspectiveTransform(pts, self._to_facade), np.float64).reshape(-1, 2)

    def to_image(self, uv: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 2) façade (u, v) → (N, 2) image pixels."""
        pts = np.asarray(uv, dtype=np.float64).reshape(-1, 1, 2)
        return np.asarray(cv2.perspectiveTransform(pts, self._to_image), np.float64).reshape(-1, 2)

    def to_metres(self, xy_px: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 2) image pixels → (N, 2) metres on the façade: x to the right, z up."""
        uv = self.to_facade(xy_px)
        return np.asarray(uv * np.array([self.cfg.column_width_m, self.cfg.floor_height_m]))

    def metres_to_image(self, xz_m: NDArray[np.float64]) -> NDArray[np.float64]:
        uv = np.asarray(xz_m, np.float64) / np.array(
            [self.cfg.column_width_m, self.cfg.floor_height_m]
        )
        return self.to_image(uv)

    def cell(self, u: float, v: float) -> FacadeCell | None:
        """The window cell containing façade point (u, v), or None outside the grid."""
        if not (0.0 <= u < self.n_cols and 0.0 <= v < self.n_floors):
            return None
        return FacadeCell(self.cfg.bottom_floor + int(v), self.cfg.columns[int(u)])

    def contains_px(self, xy_px: NDArray[np.float64], margin: float = 0.0) -> NDArray[np.bool_]:
        """Which image points lie on the grid (``margin`` in columns/floors around it)."""
        uv = self.to_facade(xy_px)
        return np.asarray(
            (uv[:, 0] >= -margin) & (uv[:, 0] <= self.n_cols + margin)
            & (uv[:, 1] >= -margin) & (uv[:, 1] <= self.n_floors + margin),
            dtype=np.bool_,
        )  # fmt: skip

    def px_per_metre(self, xy_px: tuple[float, float]) -> float:
        """Local vertical scale (image pixels per metre of height) at an image point."""
        z = self.to_metres(np.array([xy_px], np.float64))[0]
        above = self.metres_to_image(np.array([[z[0], z[1] + 1.0]]))[0]
        return float(np.hypot(*(above - np.array(xy_px))))
