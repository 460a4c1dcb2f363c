"""Zones compiled from relative polygons to pixel geometry for one image size.

Point-in-polygon tests go through shapely's vectorised ``contains_xy`` on a prepared polygon,
so testing every detection of a frame is one call, not a Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from pipeline.config_base import ZoneConfig, ZoneKind


@dataclass(frozen=True, slots=True, eq=False)
class Zone:
    """A zone in pixel coordinates of a ``width`` × ``height`` image."""

    zone_id: str
    kind: ZoneKind
    name: str | None
    polygon_rel: tuple[tuple[float, float], ...]
    polygon_px: NDArray[np.int32]  # (K, 2)
    width: int
    height: int
    _shape: object  # prepared shapely Polygon (shapely ships no types)

    def contains(self, points: NDArray[np.float32]) -> NDArray[np.bool_]:
        """(N,) mask of which (N, 2) pixel points lie inside (or on the edge of) the zone."""
        if len(points) == 0:
            return np.zeros((0,), dtype=np.bool_)
        inside = shapely.contains_xy(self._shape, points[:, 0], points[:, 1])
        edge = shapely.intersects_xy(self._shape.boundary, points[:, 0], points[:, 1])  # type: ignore[attr-defined]
        return np.asarray(inside | edge, dtype=np.bool_)

    def box_overlap(self, xyxy: NDArray[np.float32]) -> NDArray[np.float32]:
        """(N,) fraction of each box's area that lies inside the zone."""
        if len(xyxy) == 0:
            return np.zeros((0,), dtype=np.float32)
        boxes = shapely.box(xyxy[:, 0], xyxy[:, 1], xyxy[:, 2], xyxy[:, 3])
        inter = shapely.area(shapely.intersection(boxes, self._shape))
        area = np.maximum(shapely.area(boxes), 1e-6)
        return np.asarray(inter / area, dtype=np.float32)


def compile_zone(cfg: ZoneConfig, width: int, height: int) -> Zone:
    pts = np.array(cfg.polygon, dtype=np.float64) * np.array([width, height], dtype=np.float64)
    poly = shapely.Polygon(pts)
    shapely.prepare(poly)
    return Zone(
        zone_id=cfg.id,
        kind=cfg.kind,
        name=cfg.name,
        polygon_rel=tuple((float(x), float(y)) for x, y in cfg.polygon),
        polygon_px=np.round(pts).astype(np.int32),
        width=width,
        height=height,
        _shape=poly,
    )


class ZoneSet:
    """A camera's zones, recompiled lazily whenever the image size changes."""

    def __init__(self, zones: Sequence[ZoneConfig]) -> None:
        self._configs = tuple(zones)
        self._size: tuple[int, int] | None = None
        self._compiled: dict[str, Zone] = {}

    def for_size(self, width: int, height: int) -> dict[str, Zone]:
        if self._size != (width, height):
            self._compiled = {z.id: compile_zone(z, width, height) for z in self._configs}
            self._size = (width, height)
        return self._compiled
