"""The façade-plane scene renderer: throws drawn onto a flat, textured façade through the
calibration's homography, with foliage, birds, rain and other distractors (regression scenes
for 高空抛物; ``benchmarks/throwing_synth.py`` scores the analyzer on them).

This renderer shares the analyzer's flat-façade assumption, so it cannot find that
assumption's mistakes: accuracy claims come from ``tests/scenes/facade_3d.py`` (a 3-D world
and a real camera model drawn onto real footage) and from real clips.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config import FacadeConfig
from pipeline.ingest.media import encode_h264
from pipeline.rules.facade import FacadeGrid

G = 9.81
# Camera looks up. With the default grid (18 floors of 2.9 m, 6 columns of 3.2 m) the only
# pinhole camera these corners fit would stand 75 m below the ground (camera_model.warnings),
# so the analyzer keeps to the façade plane; a scene that must run the 3-D fit gives corners
# from ``corners_seen_by``.
CORNERS = ((0.32, 0.06), (0.68, 0.06), (0.78, 0.93), (0.22, 0.93))
Corners = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Throw:
    t: float  # release time, s
    floor: int
    column: int  # index into the façade's columns
    size_px: float = 8.0
    v0: tuple[float, float] = (0.0, 0.0)  # (x, z) m/s at release; z > 0 = tossed upwards
    terminal_mps: float = 60.0  # quadratic drag: a = g − g·(v/vt)²
    dark: bool = True
    offset_m: tuple[float, float] = (0.0, 1.0)  # release point inside the cell (x from centre, z)


@dataclass(frozen=True)
class Distractors:
    birds: int = 0
    leaves: int = 0
    rain: bool = False
    snow: bool = False
    insects: int = 0
    lights: int = 0
    balcony_people: int = 0
    shake_at: tuple[float, ...] = ()
    exposure_at: tuple[float, ...] = ()


@dataclass(frozen=True)
class SceneSpec:
    width: int = 1280
    height: int = 720
    fps: int = 25
    duration_s: float = 8.0
    floors: int = 18
    columns: int = 6
    bottom_floor: int = 1
    floor_height_m: float = 2.9
    column_width_m: float = 3.2
    throws: tuple[Throw, ...] = ()
    distractors: Distractors = field(default_factory=Distractors)
    dusk: bool = False
    noise: float = 2.5
    seed: int = 0
    corners: Corners = CORNERS  # TL, TR, BR, BL of the grid, relative to the frame

    def facade(self) -> FacadeConfig:
        return FacadeConfig(
            id="bldg3",
            building="3",
            unit="1",
            zone="facade_3",
            corners=list(self.corners),
            bottom_floor=self.bottom_floor,
            top_floor=self.bottom_floor + self.floors - 1,
            columns=[f"{i + 1:02d}" for i in range(self.columns)],
            floor_height_m=self.floor_height_m,
            column_width_m=self.column_width_m,
        )

    def camera(self, url: str, **rule: Any) -> dict[str, Any]:
        """A cameras.toml camera entry (as a dict) for this scene."""
        return {
            "id": "facade_cam",
            "name": "3号楼东立面",
            "url": url,
            "zones": [{"id": "facade_3", "kind": "facade", "polygon": zone_polygon(self.corners)}],
            "facades": [self.facade().model_dump(mode="json")],
            "rules": [{"analyzer": "throwing", **rule}],
        }


def zone_polygon(corners: Corners = CORNERS) -> list[list[float]]:
    """The façade zone: the calibrated grid plus a margin above the roof and to the sides."""
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = corners
    return [
        [tlx - 0.04, max(0.0, tly - 0.05)],
        [trx + 0.04, max(0.0, try_ - 0.05)],
        [brx + 0.03, bry],
        [blx - 0.03, bly],
    ]


class HandCamera:
    """A pinhole camera on the ground in front of a façade, looking up at it: world x along
    the façade, d out of it, z up; ``f`` in pixels of a ``size`` picture."""

    def __init__(
        self,
        out_m: float,
        height_m: float,
        x_m: float,
        tilt_deg: float,
        f: float,
        size: tuple[int, int] = (1280, 720),
    ) -> None:
        self.c = np.array([x_m, out_m, height_m])
        self.f = f
        self.size = size
        t = math.radians(tilt_deg)
        fwd = np.array([0.0, -math.cos(t), math.sin(t)])  # towards the façade, tilted up
        right = np.array([1.0, 0.0, 0.0])
        down = np.cross(right, fwd)
        self.rows = np.stack([right, down, fwd])

    def project(self, xdz: NDArray[np.float64]) -> NDArray[np.float64]:
        cam = (np.asarray(xdz, np.float64).reshape(-1, 3) - self.c) @ self.rows.T
        return np.asarray(cam[:, :2] / cam[:, 2:3] * self.f + [self.size[0] / 2, self.size[1] / 2])


def corners_seen_by(
    width_m: float, height_m: float, *, distance_m: float, eye_m: float, hfov_deg: float
) -> Corners:
    """The grid's corners (TL, TR, BR, BL, relative to a 16:9 frame) as a camera with
    ``hfov_deg`` sees a ``width_m`` × ``height_m`` façade from ``distance_m`` out, in front of
    its middle, ``eye_m`` above its bottom edge, tilted up to centre it."""
    w, h = 1920, 1080
    up = math.atan2(height_m - eye_m, distance_m) + math.atan2(-eye_m, distance_m)
    f = w / 2 / math.tan(math.radians(hfov_deg) / 2)
    cam = HandCamera(distance_m, eye_m, width_m / 2, math.degrees(up / 2), f, (w, h))
    grid = [[0, 0, height_m], [width_m, 0, height_m], [width_m, 0, 0], [0, 0, 0]]
    return tuple((float(x) / w, float(y) / h) for x, y in cam.project(np.array(grid, float)))


# -- physics -------------------------------------------------------------------------------


def fall_path(th: Throw, spec: SceneSpec, t: float) -> tuple[float, float] | None:
    """(x, z) metres of a thrown object at scene time t, or None before release / after landing."""
    if t < th.t:
        return None
    x = (th.column + 0.5) * spec.column_width_m + th.offset_m[0]
    z = (th.floor - spec.bottom_floor) * spec.floor_height_m + th.offset_m[1]
    vx, vz = th.v0
    dt = 1.0 / (spec.fps * 8)
    steps = int((t - th.t) / dt)
    for _ in range(steps):
        speed = math.hypot(vx, vz)
        drag = G * (speed / th.terminal_mps) ** 2
        ax = -drag * vx / speed if speed > 0 else 0.0
        az = -G - (drag * vz / speed if speed > 0 else 0.0)
        vx, vz = vx + ax * dt, vz + az * dt
        x, z = x + vx * dt, z + vz * dt
        if z < -2.0:  # below the bottom edge of the grid: on the ground
            return None
    return x, z


# -- rendering -----------------------------------------------------------------------------


class Renderer:
    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.grid = FacadeGrid(spec.facade(), spec.width, spec.height)
        self.background = self._background()
        d = spec.distractors
        r = self.rng
        u = r.uniform
        self.birds = [
            (u(0, 6), u(0.1, 0.5), r.choice([-1, 1]), r.integers(0, 3)) for _ in range(d.birds)
        ]
        self.leaves = [
            (u(0, spec.duration_s - 4), u(0, spec.columns), u(6, 16)) for _ in range(d.leaves)
        ]
        self.insects = [
            (u(0, 3), u(0.2, 0.8) * spec.width, u(0.2, 0.8) * spec.height) for _ in range(d.insects)
        ]
        self.lights = [
            (r.integers(0, spec.floors), r.integers(0, spec.columns), u(0.5, 1.5))
            for _ in range(d.lights)
        ]
        self.people = [
            (r.integers(1, spec.floors - 1), r.integers(0, spec.columns), u(0.3, 1.0))
            for _ in range(d.balcony_people)
        ]
        n_drops = 70 if d.rain else (120 if d.snow else 0)
        self.drops = r.uniform(0, 1, (n_drops, 3))
        # Sensor noise: a bank of independent frames, cycled (drawing fresh Gaussian noise for
        # every 720p frame costs more than everything else in the renderer together).
        sigma = spec.noise * (1.6 if spec.dusk else 1.0)
        shape = (spec.height, spec.width, 3)
        # Kept as its positive and negative parts so that adding it is two saturating uint8
        # operations, the same pixels as clip(img + noise) at a third of the cost.
        self.noise: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]] = []
        for _ in range(12):
            n = r.normal(0, sigma, shape).astype(np.int16)
            self.noise.append(
                (np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8))
            )

    def _background(self) -> NDArray[np.uint8]:
        s = self.spec
        h, w = s.height, s.width
        img = np.zeros((h, w, 3), np.float32)
        sky = np.linspace(0, 1, h)[:, None, None]
        img[:] = (235 - 60 * sky) * np.array([1.0, 0.97, 0.9])  # pale sky (BGR)
        wall = self.grid.to_image(
            np.array([[0, 0], [s.columns, 0], [s.columns, s.floors], [0, s.floors]], float)
        )
        cv2.fillPoly(img, [np.round(wall).astype(np.int32)], (150, 160, 170))
        for f in range(s.floors):
            for c in range(s.columns):
                cell = np.array(
                    [
                        [c + 0.18, f + 0.3],
                        [c + 0.82, f + 0.3],
                        [c + 0.82, f + 0.85],
                        [c + 0.18, f + 0.85],
                    ]
                )
                glass = 70 + 40 * self.rng.random()
                cv2.fillPoly(
                    img,
                    [np.round(self.grid.to_image(cell)).astype(np.int32)],
                    (glass + 20, glass + 10, glass),
                )
            rail = self.grid.to_image(np.array([[0, f + 0.25], [s.columns, f + 0.25]], float))
            cv2.line(
                img, *(tuple(int(v) for v in p) for p in rail), (120, 125, 130), 1, cv2.LINE_AA
            )  # type: ignore[call-overload]
        ground_y = int(self.grid.to_image(np.array([[0, 0]], float))[0][1])
        img[ground_y:] = (95, 105, 100)
        img += self.rng.normal(0, 4, img.shape)  # static texture
        return np.clip(img, 0, 255).astype(np.uint8)

    def _px(self, x: float, z: float) -> tuple[float, float]:
        p = self.grid.metres_to_image(np.array([[x, z]], float))[0]
        return float(p[0]), float(p[1])

    def frame(self, i: int) -> NDArray[np.uint8]:
        s = self.spec
        t = i / s.fps
        img = self.background.copy()
        d = s.distractors
        for f, c, period in self.lights:  # windows switching on and off
            if int(t / period) % 2:
                cell = np.array(
                    [
                        [c + 0.18, f + 0.3],
                        [c + 0.82, f + 0.3],
                        [c + 0.82, f + 0.85],
                        [c + 0.18, f + 0.85],
                    ]
                )
                cv2.fillPoly(
                    img, [np.round(self.grid.to_image(cell)).astype(np.int32)], (120, 200, 235)
                )
        for f, c, speed in self.people:  # someone moving about on a balcony / laundry swaying
            u = c + 0.5 + 0.3 * math.sin(t * speed * 3)
            p0, p1 = (
                self._px(u * s.column_width_m, (f + 0.3) * s.floor_height_m),
                self._px(u * s.column_width_m, (f + 0.85) * s.floor_height_m),
            )
            cv2.line(img, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), (40, 60, 90), 4)
        for th in s.throws:
            self._draw_object(img, th, t)
        for t0, height, direction, kind in self.birds:
            self._draw_bird(img, t - t0, height, direction, int(kind))
        for t0, u, size in self.leaves:  # type: ignore[assignment]
            tt = t - t0
            if tt < 0:
                continue
            x = u * s.column_width_m + 0.6 * math.sin(tt * 2.5)
            z = (s.floors - 2) * s.floor_height_m - 1.5 * tt
            px = self._px(x, z)
            r = size * (0.6 + 0.4 * abs(math.sin(tt * 5)))  # tumbling
            cv2.ellipse(
                img,
                (int(px[0]), int(px[1])),
                (int(r), int(r / 2)),
                int(tt * 200) % 180,
                0,
                360,
                (40, 110, 60),
                -1,
            )
        if len(self.drops):
            self._draw_weather(img, t, rain=d.rain)
        for t0, x0, y0 in self.insects:
            tt = t - t0
            if 0 <= tt < 3:
                x = x0 + 120 * math.sin(tt * 7.3) + 60 * math.sin(tt * 13.1)  # type: ignore[assignment]
                y = y0 + 90 * math.cos(tt * 5.9)
                cv2.circle(img, (int(x), int(y)), 22, (30, 30, 30), -1)
                y0, y1 = max(0, int(y) - 40), min(img.shape[0], int(y) + 40)
                x0, x1 = max(0, int(x) - 40), min(img.shape[1], int(x) + 40)
                if y1 > y0 and x1 > x0:  # out of focus, right in front of the lens
                    img[y0:y1, x0:x1] = cv2.GaussianBlur(img[y0:y1, x0:x1], (0, 0), 7)
        gain = 0.42 if s.dusk else 1.0
        for te in d.exposure_at:
            if t >= te:
                gain *= 1.18
        if gain != 1.0:
            img = cv2.convertScaleAbs(img, alpha=gain)  # type: ignore[assignment]
        up, down = self.noise[i % len(self.noise)]
        frame = cv2.subtract(cv2.add(img, up), down)
        for ts in d.shake_at:
            if ts <= t < ts + 0.4:
                dx, dy = self.rng.integers(-3, 4, 2)
                frame = np.roll(frame, (int(dy), int(dx)), axis=(0, 1))
        return frame  # type: ignore[return-value]

    def _draw_object(self, img: NDArray[np.uint8], th: Throw, t: float) -> None:
        now = fall_path(th, self.spec, t)
        if now is None:
            return
        before = fall_path(th, self.spec, max(th.t, t - 1 / 50))  # 1/50 s exposure: blur
        p1 = self._px(*now)
        p0 = self._px(*(before or now))
        color = (25, 25, 30) if th.dark else (245, 245, 240)
        r = max(1.0, th.size_px / 2)
        cv2.line(
            img,
            (round(p0[0]), round(p0[1])),
            (round(p1[0]), round(p1[1])),
            color,
            max(1, int(2 * r)),
            cv2.LINE_AA,
        )
        cv2.circle(img, (round(p1[0]), round(p1[1])), max(1, round(r)), color, -1, cv2.LINE_AA)

    def _draw_bird(
        self, img: NDArray[np.uint8], tt: float, height: float, direction: int, kind: int
    ) -> None:
        if tt < 0 or tt > 6:
            return
        s = self.spec
        w_m = s.columns * s.column_width_m
        x = (0.0 if direction > 0 else w_m) + direction * 7.0 * tt  # 7 m/s across
        z0 = height * s.floors * s.floor_height_m
        if kind == 0:  # flapping level flight
            z = z0 + 0.4 * math.sin(tt * 12)
        elif kind == 1:  # gliding down at constant speed
            z = z0 - 2.5 * tt
        else:  # rising
            z = z0 + 1.8 * tt
        px = self._px(x, z)
        span = 8 + 5 * abs(math.sin(tt * 12))  # wings flapping
        cv2.ellipse(img, (int(px[0]), int(px[1])), (int(span), 3), 0, 0, 360, (40, 40, 40), -1)

    def _draw_weather(self, img: NDArray[np.uint8], t: float, *, rain: bool) -> None:
        h, w = img.shape[:2]
        speed = 900.0 if rain else 60.0  # px/s
        for fx, fy, phase in self.drops:
            y = (fy * h + speed * t + phase * h) % h
            x = (fx * w + (20 if rain else 15 * math.sin(t + phase * 6))) % w
            if rain:
                cv2.line(img, (int(x), int(y)), (int(x - 3), int(y - 26)), (200, 200, 205), 1)
            else:
                cv2.circle(img, (int(x), int(y)), 2, (250, 250, 250), -1)


def render(spec: SceneSpec, path: Path, bitrate_kbps: int | None = None) -> Path:
    """Write the scene as H.264 (GOP 2 s) to ``path`` (.mp4 or .h264): constant quality, or
    the constant bitrate of a camera where ``bitrate_kbps`` is given."""
    r = Renderer(spec)
    frames: Iterator[NDArray[np.uint8]] = (
        r.frame(i) for i in range(round(spec.duration_s * spec.fps))
    )
    return encode_h264(
        path, frames, fps=spec.fps, gop=2 * spec.fps, crf=23, bitrate_kbps=bitrate_kbps
    )


def truth(spec: SceneSpec) -> list[dict[str, Any]]:
    """Ground truth for each throw: release, expected floor/column, visible fall height."""
    out = []
    for th in spec.throws:
        pts = [fall_path(th, spec, th.t + k / spec.fps) for k in range(int(12 * spec.fps))]
        zs = [p[1] for p in pts if p is not None]
        out.append(
            {
                **asdict(th),
                "release_floor": th.floor,
                "release_column": spec.facade().columns[th.column],
                "fall_m": round(zs[0] - min(zs), 2) if zs else 0.0,
                "fall_floors": round((zs[0] - min(zs)) / spec.floor_height_m, 2) if zs else 0.0,
            }
        )
    return out


# -- benchmark -----------------------------------------------------------------------------
