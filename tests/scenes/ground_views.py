"""Parking scenes seen by a real camera model: a 3-D car on a ground textured with real footage.

The world is flat ground (metres; X right, Y forward along the aisle, Z up). Its texture is
each frame of the real development clip ``shared/data/parking/intel_car-detection.mp4`` — a
top-down view of a parking-lot aisle, taken as an orthophoto at ``PX_PER_M`` (a car 1.8 m wide is
~120 px in it) — so the real clip's passing cars, asphalt grain, sensor noise and two
auto-exposure jumps are all there. A low-poly car (body, cabin with glass, wheels; Lambertian
shading, a sun shadow) drives in, stands and drives off, and everything is seen through a
pinhole camera at a height, pitch and yaw (``View``), rendered at twice the size and averaged
down. Nothing here shares code or assumptions with the analyzer: the analyzer gets the encoded
video and a zone drawn as an integrator would (its image corners, optionally its size in
metres).

The real clip's moving cars become flat stickers on the ground in oblique views (their height
is lost); they still move, which is what pass-through negatives need.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.common import SHARED
from pipeline.ingest.media import encode_h264

CLIP = SHARED / "data" / "parking" / "intel_car-detection.mp4"
PX_PER_M = 66.0
FPS = Fraction(25, 2)
SIZE = (960, 540)
HFOV_DEG = 70.0
SUN = np.array([0.45, -0.35, 0.82])  # towards the sun
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class View:
    """A camera: height (m), pitch below the horizon (deg, 90 = straight down), yaw (deg, 0 =
    looking along +Y, 90 = along +X), and the ground point it looks at."""

    name: str
    height_m: float
    pitch_deg: float
    yaw_deg: float
    target: tuple[float, float] = (3.4, 1.0)


VIEWS = (
    View("overhead_90", 11.0, 90.0, 0.0),
    View("steep_60_along", 9.0, 60.0, 0.0),
    View("oblique_40_across", 7.0, 40.0, 90.0),
    View("shallow_28_along", 6.0, 28.0, 180.0),
)


@dataclass(frozen=True)
class Car:
    colour_bgr: tuple[int, int, int]
    length_m: float = 4.5
    width_m: float = 1.8
    height_m: float = 1.45


@dataclass(frozen=True)
class Motion:
    """Drives in along the aisle (+Y) to ``stop_xy``, stands from ``stop_s`` to ``leave_s``,
    drives on; ``None`` times: never stops (passes through at ``speed``)."""

    stop_xy: tuple[float, float]
    stop_s: float | None
    leave_s: float | None
    speed: float = 3.0
    pass_s: float = 20.0  # for a pass-through: when it is at stop_xy

    def pose(self, t: float) -> tuple[float, float, float] | None:
        """(X, Y, heading) at time t, or None when far out of the scene."""
        x, y = self.stop_xy
        if self.stop_s is None or self.leave_s is None:
            dy = (t - self.pass_s) * self.speed
        elif t < self.stop_s:
            # decelerates uniformly over the last 2 s: constant speed before
            dt = self.stop_s - t
            dy = -(self.speed * (dt - 1.0) if dt > 2.0 else self.speed * dt * dt / 4.0)
        elif t <= self.leave_s:
            dy = 0.0
        else:
            dt = t - self.leave_s
            dy = self.speed * dt * dt / 4.0 if dt < 2.0 else self.speed * (dt - 1.0)
        if abs(dy) > 60.0:
            return None
        return (x, y + dy, 0.0)


def camera(view: View) -> tuple[F64, F64, F64]:
    """(K, R, t): world → camera (x right, y down, z forward)."""
    w, h = SIZE
    f = (w / 2) / math.tan(math.radians(HFOV_DEG) / 2)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)
    yaw, pitch = math.radians(view.yaw_deg), math.radians(view.pitch_deg)
    fwd_h = np.array([math.sin(yaw), math.cos(yaw), 0.0])
    forward = math.cos(pitch) * fwd_h + np.array([0, 0, -math.sin(pitch)])
    # no roll: the image x axis is horizontal (also straight down, where it follows the yaw)
    right = np.cross(fwd_h, np.array([0.0, 0.0, 1.0]))
    down = np.cross(forward, right)
    r = np.stack([right, down, forward])
    # the camera stands back from the target along the viewing direction, at height_m
    tx, ty = view.target
    back = view.height_m / max(math.tan(pitch), 1e-9)
    centre = np.array([tx, ty, 0.0]) - back * fwd_h + np.array([0, 0, view.height_m])
    return k, r, -r @ centre


def project(points: F64, k: F64, r: F64, t: F64) -> tuple[F64, F64]:
    cam = points @ r.T + t
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:3], cam[:, 2]


def ground_homography(k: F64, r: F64, t: F64) -> F64:
    """Ground (X, Y, 1) → image pixels."""
    return np.asarray(k @ np.column_stack([r[:, 0], r[:, 1], t]), np.float64)


def texture_to_ground() -> F64:
    """Texture pixels (u, v) of the clip → ground metres (X, Y): v up is +Y."""
    s = 1.0 / PX_PER_M
    return np.array([[s, 0, -384 * s], [0, -s, 216 * s], [0, 0, 1]], np.float64)


def ground_maps(view: View, scale: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """For each output pixel (at ``scale``× size), where in the clip's texture to sample."""
    k, r, t = camera(view)
    k = k.copy()
    k[:2] *= scale
    img_to_tex = np.linalg.inv(ground_homography(k, r, t) @ texture_to_ground())
    w, h = SIZE[0] * scale, SIZE[1] * scale
    us, vs = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pts = np.stack([us, vs, np.ones_like(us)], -1) @ img_to_tex.T
    z = pts[..., 2]
    z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    return (pts[..., 0] / z).astype(np.float32), (pts[..., 1] / z).astype(np.float32)


def _box(cx: float, cy: float, z0: float, length: float, width: float, height: float,
         heading: float) -> F64:  # fmt: skip
    """8 corners of a box standing at (cx, cy) from z0 up, long side along the heading."""
    c, s = math.cos(heading), math.sin(heading)
    along, across = np.array([-s, c]), np.array([c, s])
    pts = []
    for zz in (z0, z0 + height):
        for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            xy = np.array([cx, cy]) + a * across * width / 2 + b * along * length / 2
            pts.append([xy[0], xy[1], zz])
    return np.array(pts, np.float64)


_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))


def car_parts(car: Car, x: float, y: float, heading: float) -> list[Part]:
    """(corners, colour) boxes: wheels, body, cabin (glass), roof."""
    colour = car.colour_bgr
    glass = (45, 40, 35)
    tyre = (25, 25, 25)
    c, s = math.cos(heading), math.sin(heading)
    along, across = np.array([-s, c]), np.array([c, s])
    parts: list[Part] = []
    for a in (-1, 1):
        for b in (-1, 1):
            wx, wy = np.array([x, y]) + a * across * (car.width_m / 2 - 0.12) + b * along * 1.35
            parts.append((_box(wx, wy, 0.0, 0.65, 0.22, 0.62, heading), tyre))
    parts.append((_box(x, y, 0.3, car.length_m, car.width_m, 0.55, heading), colour))
    cx, cy = np.array([x, y]) - along * 0.25
    cabin_h = car.height_m - 0.85
    parts.append((_box(cx, cy, 0.85, 2.5, car.width_m - 0.2, cabin_h - 0.06, heading), glass))
    parts.append((_box(cx, cy, car.height_m - 0.06, 2.3, car.width_m - 0.3, 0.06, heading), colour))
    return parts


Part = tuple[F64, tuple[int, ...]]


def stall_parts(kind: str, x: float, y: float, colour: tuple[int, int, int]) -> list[Part]:
    """A street stall of ``kind`` standing at (x, y): things no COCO class names as such.

    * ``table``: a folding table with goods on it under a sunshade on a pole;
    * ``cart``: a cargo tricycle (三轮车) loaded with crates;
    * ``tarp``: a tarpaulin spread on the ground with baskets and crates on it.
    """
    parts: list[Part] = []
    goods = ((40, 140, 220), (60, 170, 60), (200, 200, 60), (30, 90, 200), (180, 120, 200))
    if kind == "table":
        legs = [(a, b) for a in (-1, 1) for b in (-1, 1)]
        parts += [(_box(x + a * 0.75, y + b * 0.35, 0.0, 0.05, 0.05, 0.75, 0.0), (70, 70, 70))
                  for a, b in legs]  # fmt: skip
        parts.append((_box(x, y, 0.75, 0.8, 1.6, 0.05, 0.0), (235, 235, 235)))
        for i, g in enumerate(goods):
            parts.append((_box(x - 0.6 + 0.3 * i, y, 0.8, 0.3, 0.25, 0.2, 0.0), g))
        parts.append((_box(x + 0.9, y + 0.5, 0.0, 0.05, 0.05, 2.1, 0.0), (90, 90, 90)))
        parts.append((_box(x + 0.9, y + 0.5, 2.1, 2.2, 2.2, 0.12, 0.0), colour))
    elif kind == "cart":
        parts += [(_box(x + a * 0.6, y - 0.5, 0.0, 0.6, 0.12, 0.6, 0.0), (25, 25, 25))
                  for a in (-1, 1)]  # fmt: skip
        parts.append((_box(x, y + 1.1, 0.0, 0.6, 0.12, 0.6, 0.0), (25, 25, 25)))
        parts.append((_box(x, y - 0.3, 0.4, 1.5, 1.25, 0.55, 0.0), colour))
        parts.append((_box(x, y + 0.9, 0.5, 0.7, 0.5, 0.5, 0.0), (60, 60, 60)))
        for i, g in enumerate(goods[:4]):
            parts.append((_box(x - 0.3 + 0.2 * (i % 2) * 3, y - 0.6 + 0.5 * (i // 2),
                               0.95, 0.45, 0.4, 0.3, 0.0), g))  # fmt: skip
    elif kind == "tarp":
        parts.append((_box(x, y, 0.0, 2.6, 1.9, 0.02, 0.0), colour))
        for i, g in enumerate(goods):
            parts.append((_box(x - 0.9 + 0.45 * i, y - 0.4 + 0.6 * (i % 2), 0.02, 0.4, 0.4,
                               0.3, 0.0), g))  # fmt: skip
    else:
        raise ValueError(f"unknown stall kind {kind!r}")
    return parts


def draw_car(img: NDArray[np.uint8], car: Car, pose: tuple[float, float, float], view: View,
             scale: int) -> None:  # fmt: skip
    x, y, heading = pose
    body = _box(x, y, 0.0, car.length_m, car.width_m, car.height_m, heading)
    draw_parts(img, car_parts(car, x, y, heading), view, scale, shadow_of=body)


def draw_parts(img: NDArray[np.uint8], parts: list[Part], view: View, scale: int,
               shadow_of: F64 | None = None) -> None:  # fmt: skip
    """Boxes with Lambertian shading, painted far to near, over the soft sun shadow of
    ``shadow_of`` (points; default every part's corners)."""
    k, r, t = camera(view)
    k = k.copy()
    k[:2] *= scale
    centre = -r.T @ t
    # shadow: the outline pushed away from the sun onto the ground, darkened
    body = shadow_of if shadow_of is not None else np.vstack([c for c, _ in parts])
    flat = body - np.outer(body[:, 2] / SUN[2], SUN)
    flat[:, 2] = 0.0
    uv, depth = project(flat, k, r, t)
    if np.all(depth > 0.1):
        hull = cv2.convexHull(uv.astype(np.float32)).astype(np.int32)
        outline = np.zeros(img.shape[:2], np.uint8)
        cv2.fillConvexPoly(outline, hull, 255, lineType=cv2.LINE_AA)
        shadow = np.asarray(cv2.GaussianBlur(outline, (0, 0), 1.5 * scale), np.float32)
        img[:] = np.asarray(img * (1.0 - 0.45 * shadow[..., None] / 255.0), np.uint8)
    faces = []
    for corners, colour in parts:
        centroid = corners.mean(axis=0)
        for face in _FACES:
            pts = corners[list(face)]
            normal = np.cross(pts[1] - pts[0], pts[2] - pts[0])
            normal /= np.linalg.norm(normal) + 1e-12
            if np.dot(normal, pts.mean(axis=0) - centroid) < 0:
                normal = -normal
            if np.dot(normal, centre - pts.mean(axis=0)) <= 0:
                continue  # faces away from the camera
            uv, depth = project(pts, k, r, t)
            if np.any(depth <= 0.1):
                continue
            light = 0.55 + 0.45 * max(0.0, float(np.dot(normal, SUN / np.linalg.norm(SUN))))
            shade = tuple(int(min(255, ch * light)) for ch in colour)
            faces.append((float(np.linalg.norm(pts.mean(axis=0) - centre)), uv, shade))
    for _, uv, shade in sorted(faces, key=lambda f: -f[0]):
        cv2.fillConvexPoly(img, np.round(uv).astype(np.int32), shade, lineType=cv2.LINE_AA)


def clip_frames() -> list[NDArray[np.uint8]]:
    with av.open(str(CLIP)) as inp:
        return [
            np.asarray(f.to_ndarray(format="bgr24"), np.uint8)
            for f in inp.decode(inp.streams.video[0])
        ]


@dataclass(frozen=True)
class Placed:
    """Parts standing from ``t0`` to ``t1`` (seconds of the scene)."""

    parts: tuple[Part, ...]
    t0: float
    t1: float


def render(view: View, car: Car | None, motion: Motion | None, duration_s: float,
           frames: list[NDArray[np.uint8]], scale: int = 2, fps: Fraction = FPS,
           placed: tuple[Placed, ...] = ()) -> Iterator[NDArray[np.uint8]]:  # fmt: skip
    """Frames of the scene; the real clip plays forwards and backwards as the ground, one of its
    frames per output frame."""
    mx, my = ground_maps(view, scale)
    n = len(frames)
    for i in range(round(duration_s * float(fps))):
        t = i / float(fps)
        j = i % (2 * n - 2)
        tex = frames[j if j < n else 2 * n - 2 - j]
        img = np.asarray(
            cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), np.uint8
        )
        for p in placed:
            if p.t0 <= t < p.t1:
                draw_parts(img, list(p.parts), view, scale)
        if car is not None and motion is not None:
            pose = motion.pose(t)
            if pose is not None:
                draw_car(img, car, pose, view, scale)
        yield np.asarray(cv2.resize(img, SIZE, interpolation=cv2.INTER_AREA), np.uint8)


def zone_polygon(view: View, ground_rect: tuple[float, float, float, float]) -> list[list[float]]:
    """Relative image corners of the ground rectangle (x1, y1, x2, y2) in metres, in the order
    (x1,y1) (x2,y1) (x2,y2) (x1,y2): width along X first, then length along Y."""
    k, r, t = camera(view)
    x1, y1, x2, y2 = ground_rect
    pts = np.array([[x1, y1, 0], [x2, y1, 0], [x2, y2, 0], [x1, y2, 0]], np.float64)
    uv, depth = project(pts, k, r, t)
    if np.any(depth <= 0):
        raise ValueError(f"{view.name}: zone behind the camera")
    rel = uv / np.array(SIZE, np.float64)
    if np.any(rel < 0) or np.any(rel > 1):
        raise ValueError(f"{view.name}: zone corners {rel.round(3).tolist()} leave the image")
    return [[round(float(u), 4), round(float(v), 4)] for u, v in rel]


def write_scene(out: Path, view: View, car: Car | None, motion: Motion | None,
                duration_s: float, frames: list[NDArray[np.uint8]], gop_s: float = 2.0, *,
                fps: Fraction = FPS, scale: int = 2, placed: tuple[Placed, ...] = ()) -> Path:  # fmt: skip
    if out.exists():
        return out
    tmp = out.with_suffix(".part.mp4")
    encode_h264(tmp, render(view, car, motion, duration_s, frames, scale, fps, placed), fps=fps,
                gop=round(gop_s * float(fps)))  # fmt: skip
    tmp.rename(out)
    return out
