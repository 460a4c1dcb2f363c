"""The 3-D scene renderer: a ballistic object with drag in a 3-D world, seen through a pinhole
camera posed from each development clip's façade calibration (by its own ``cv2.solvePnP``
search, independent of ``pipeline.rules.camera_model``), motion-blurred over the exposure and
drawn onto the real clip's frames. ``CLIPS`` holds those calibrations (``VIRTUAL_CLIPS`` one
posed on real footage that is not its own building); ``camera_entry`` the
camera the analyzer gets (corners with optional clicking noise). Used by
``benchmarks/throwing_3d.py`` and by the real-clip tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.common import SHARED
from pipeline.ingest.media import encode_h264
from tests.media import LowLight, PoleSway

G = 9.81
EXPOSURE_S = 1 / 50
CLIPS_DIR = SHARED / "data" / "throwing"


@dataclass(frozen=True)
class Occluder:
    """Leaves in front of the façade: within ``polygon`` (relative image coordinates, drawn
    generously round the tree), the pixels that are leaf or branch in a frame hide whatever
    falls behind them in that frame; the gaps between leaves (sky, wall) do not. A pixel is
    leaf when it is greener than it is red or blue, or darker than ``dark_below`` (branches,
    shaded leaves and fronds against the sky) and not brick-red."""

    polygon: tuple[tuple[float, float], ...]
    dark_below: int


def leaves(
    img: NDArray[np.uint8],
    occluders: tuple[Occluder, ...],
    x0: int = 0,
    y0: int = 0,
    size: tuple[int, int] | None = None,
) -> NDArray[np.bool_]:
    """Where ``img`` (a crop at ``x0``, ``y0`` of a frame of ``size`` (w, h); the whole frame
    by default) shows leaves of ``occluders`` in front of the façade."""
    h, w = img.shape[:2]
    fw, fh = size or (w, h)
    out = np.zeros((h, w), np.bool_)
    f = img.astype(np.int16)
    b, g, r = f[..., 0], f[..., 1], f[..., 2]
    v = f.max(axis=2)
    sat = v - f.min(axis=2)
    green = (g >= r + 4) & (g >= b - 6) & (sat >= 14)
    for occ in occluders:
        region = np.zeros((h, w), np.uint8)
        pts = np.array([[x * fw - x0, y * fh - y0] for x, y in occ.polygon], np.float64)
        cv2.fillPoly(region, [np.round(pts).astype(np.int32)], 1)
        out |= (region > 0) & (green | (v < occ.dark_below)) & (r < g + 25)
    return out


@dataclass(frozen=True)
class Clip:
    """A development clip, its façade calibration and the spans usable as background."""

    name: str
    file: str
    facade: dict[str, Any]
    zone: list[list[float]]
    background_s: tuple[float, float]
    # image box (x1, y1, x2, y2) holding a real throw, replaced by the clip's median
    mask_box: tuple[int, int, int, int] | None
    real_throw: dict[str, Any]
    # vegetation standing between the camera and the façade (see ``Occluder``)
    occluders: tuple[Occluder, ...] = ()


# Drawn round the trees on frames of the clips: the office's tree on the left (its dark
# window below the leaves left out) and the fronds over the roof; the tower's tree at the
# lower right (its leaves dark green, beside dark louvres, so only the darkest count).
OFFICE_LEAVES = (
    Occluder(((0, 0), (0.40, 0), (0.38, 0.42), (0.30, 0.62), (0.26, 0.62), (0.26, 0.45),
              (0.18, 0.45), (0.14, 0.66), (0, 0.72)), dark_below=80),
    Occluder(((0.27, 0), (0.66, 0), (0.66, 0.13), (0.27, 0.13)), dark_below=150),
    Occluder(((0.80, 0), (1, 0), (1, 0.08), (0.80, 0.08)), dark_below=150),
)  # fmt: skip
TOWER_LEAVES = (
    Occluder(((0.80, 0.66), (0.87, 0.64), (1, 0.62), (1, 1), (0.78, 1), (0.78, 0.75)),
             dark_below=45),
)  # fmt: skip

# Calibrations set from frames of the clips as an integrator would, then checked with
# `gridsight check`: the office's 4.0 m columns fit no camera (65 px); with 3.6 m floors a
# camera fits columns of 0.5-2.4 m, so 2.0 m. The tower's is its annotation's calibration
# note (13 floors × 6 columns), bottom floor 4 so that the camera stands near the ground.
CLIPS = (
    Clip(
        name="office",
        file="bharath_office1.mp4",
        facade={
            "id": "office",
            "building": "office",
            "zone": "facade",
            "bottom_floor": 2,
            "top_floor": 3,
            "columns": ["W", "C", "E"],
            "floor_height_m": 3.6,
            "column_width_m": 2.0,
            "corners": [[0.34, 0.11], [0.65, 0.11], [0.75, 0.66], [0.24, 0.66]],
        },
        zone=[[0.22, 0.03], [0.78, 0.03], [0.80, 0.70], [0.20, 0.70]],
        background_s=(0.0, 6.9),
        mask_box=None,
        real_throw={"span_s": [7.07, 8.74], "floor": 3, "column": "C"},
        occluders=OFFICE_LEAVES,
    ),
    Clip(
        name="tower",
        file="hamonitorsentry_video_2.mp4",
        facade={
            "id": "tower",
            "building": "tower",
            "zone": "facade",
            "bottom_floor": 4,
            "top_floor": 16,
            "columns": ["01", "02", "03", "04", "05", "06"],
            "floor_height_m": 3.0,
            "column_width_m": 3.5,
            "corners": [[0.339, 0.010], [0.623, 0.010], [0.857, 0.884], [0.034, 0.884]],
        },
        zone=[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        background_s=(0.0, 2.46),
        mask_box=(585, 15, 705, 265),
        real_throw={"span_s": [0.07, 2.2], "first_xy": [608, 36]},
        occluders=TOWER_LEAVES,
    ),
)


# A façade the footage does not show, posed on real footage: a 4-storey building seen from
# 25 m with a 10° tilt (corners projected from that camera), on the tower clip's frames. Its
# texture, leaves and compression are real, its geometry is not the clip's own building: it
# stands in for the low buildings and level cameras that the two real views lack.
VIRTUAL_CLIPS = (
    Clip(
        name="low-rise (virtual façade on the tower footage)",
        file="hamonitorsentry_video_2.mp4",
        facade={
            "id": "low",
            "building": "low",
            "zone": "facade",
            "bottom_floor": 1,
            "top_floor": 4,
            "columns": ["A", "B", "C", "D"],
            "floor_height_m": 3.0,
            "column_width_m": 3.5,
            "corners": [[0.2725, 0.1534], [0.7275, 0.1534], [0.7469, 0.8649], [0.2531, 0.8649]],
        },
        zone=[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        background_s=(0.0, 2.46),
        mask_box=(585, 15, 705, 265),
        real_throw={},
        occluders=TOWER_LEAVES,
    ),
)


# -- the world's camera (this script's own solve) --------------------------------------------


@dataclass(frozen=True)
class PinholeCamera:
    k: NDArray[np.float64]
    rvec: NDArray[np.float64]
    tvec: NDArray[np.float64]
    out_sign: float  # world d (outward) along the solver's y axis

    def project(self, xdz: NDArray[np.float64]) -> NDArray[np.float64]:
        p = np.asarray(xdz, np.float64).reshape(-1, 3) * [1.0, self.out_sign, 1.0]
        img, _ = cv2.projectPoints(p, self.rvec, self.tvec, self.k, None)
        return np.asarray(img, np.float64).reshape(-1, 2)

    def distance(self, xdz: NDArray[np.float64]) -> float:
        r = cv2.Rodrigues(self.rvec)[0]
        p = np.asarray(xdz, np.float64).reshape(3) * [1.0, self.out_sign, 1.0]
        return float(np.linalg.norm(r @ p + self.tvec.reshape(3)))

    def px_per_m(self, xdz: NDArray[np.float64]) -> float:
        """Image size of a metre at world point ``xdz`` (never nearer than 0.5 m)."""
        return float(self.k[0, 0]) / max(self.distance(xdz), 0.5)


def ground_z(facade: dict[str, Any]) -> float:
    """The ground's height in the world (z = 0 at the calibrated grid's bottom edge)."""
    return -(int(facade["bottom_floor"]) - 1) * float(facade["floor_height_m"])


def pose_camera(facade: dict[str, Any], w: int, h: int) -> PinholeCamera:
    n_f = facade["top_floor"] - facade["bottom_floor"] + 1
    wm, hm = len(facade["columns"]) * facade["column_width_m"], n_f * facade["floor_height_m"]
    obj = np.array([[0, 0, hm], [wm, 0, hm], [wm, 0, 0], [0, 0, 0]], np.float64)
    img = np.array([[x * w, y * h] for x, y in facade["corners"]], np.float64)
    best: tuple[float, PinholeCamera] | None = None
    for f in np.geomspace(0.3 * w, 6.0 * w, 400):
        k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)
        ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            continue
        proj, _ = cv2.projectPoints(obj, rvec, tvec, k, None)
        err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
        if best is None or err < best[0]:
            centre = -cv2.Rodrigues(rvec)[0].T @ tvec.reshape(3)
            sign = 1.0 if centre[1] > 0 else -1.0
            best = (
                err,
                PinholeCamera(k, np.asarray(rvec, np.float64), np.asarray(tvec, np.float64), sign),
            )
    assert best is not None
    if best[0] > 3.0:
        raise SystemExit(f"{facade['id']}: no camera fits the calibration ({best[0]:.1f} px)")
    return best[1]


# -- throws ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throw3D:
    t: float  # release time in the scene (s)
    p0: tuple[float, float, float]  # release point, world metres (x, d, z)
    v0: tuple[float, float, float]  # m/s
    terminal_mps: float
    size_m: float  # long axis of the object
    aspect: float  # short / long axis
    spin_hz: float
    shade: int  # grey level of the object
    release_floor: int
    release_column: str
    apparent_px: float  # long axis in pixels at the release


def simulate(th: Throw3D, t_end: float, ground_z: float) -> tuple[NDArray[np.float64], ...]:
    """Positions every millisecond from the release until it lands or ``t_end``."""
    dt = 1e-3
    p, v = np.array(th.p0, np.float64), np.array(th.v0, np.float64)
    ts, ps = [th.t], [p.copy()]
    t = th.t
    while t < t_end and p[2] > ground_z:
        sp = float(np.linalg.norm(v))
        a = np.array([0.0, 0.0, -G]) - G * (sp / th.terminal_mps) ** 2 * (v / max(sp, 1e-9))
        v = v + a * dt
        p = p + v * dt
        t += dt
        ts.append(t)
        ps.append(p.copy())
    return np.array(ts), np.array(ps)


class Compositor:
    """Real background frames with throws drawn in, frame by frame."""

    def __init__(
        self,
        clip: Clip,
        frames: list[NDArray[np.uint8]],
        fps: float,
        occlusion: bool = True,
        exposure_s: float = EXPOSURE_S,
    ) -> None:
        """``occlusion``: objects pass behind the clip's trees (False: drawn over them, as
        this renderer did before, for comparison). ``exposure_s``: how long the shutter is
        open (a camera at night keeps it open the whole frame interval: longer streaks)."""
        self.clip, self.frames, self.fps = clip, frames, fps
        self.exposure_s = exposure_s
        h, w = frames[0].shape[:2]
        self.camera = pose_camera(clip.facade, w, h)
        self.occluders = clip.occluders if occlusion else ()
        # where leaves hide the façade in most frames: what a throw there is not seen behind
        some = frames[:: max(1, len(frames) // 40)]
        self.hidden = np.mean([leaves(f, self.occluders) for f in some], axis=0) >= 0.5

    def background(self, i: int, offset: int) -> NDArray[np.uint8]:
        n = len(self.frames)
        k = (i + offset) % (2 * n - 2)  # forward, then backward: no seam
        return self.frames[k if k < n else 2 * n - 2 - k].copy()

    def draw(self, img: NDArray[np.uint8], th: Throw3D, path: tuple[Any, ...], t: float) -> None:
        ts, ps = path
        exposure = self.exposure_s
        if t < ts[0] or t - exposure > ts[-1]:
            return
        subs = max(6, round(6 * exposure / EXPOSURE_S))  # as densely along a longer streak
        shapes = []
        for s in range(subs):
            tt = t - exposure * s / (subs - 1)
            if tt < ts[0] or tt > ts[-1]:
                continue
            p = ps[int(np.searchsorted(ts, tt).clip(0, len(ts) - 1))]
            c = self.camera.project(p[None, :])[0]
            major = max(0.5, th.size_m * self.camera.px_per_m(p) / 2)
            angle = math.degrees(2 * math.pi * th.spin_hz * (tt - th.t))
            shapes.append((c, major, max(0.5, major * th.aspect), angle))
        if not shapes:
            return
        # only the few pixels around the blurred object are touched
        h, w = img.shape[:2]
        pad = max(s[1] for s in shapes) + 3
        xs, ys = [s[0][0] for s in shapes], [s[0][1] for s in shapes]
        x1, x2 = int(max(0, min(xs) - pad)), int(min(w, max(xs) + pad + 1))
        y1, y2 = int(max(0, min(ys) - pad)), int(min(h, max(ys) + pad + 1))
        if x2 <= x1 or y2 <= y1:
            return
        layer = np.zeros((y2 - y1, x2 - x1), np.float32)
        for c, major, minor, angle in shapes:
            one = np.zeros_like(layer)
            centre = (float(c[0] - x1), float(c[1] - y1))
            cv2.ellipse(one, (centre, (2 * major, 2 * minor), angle), 1.0, -1, cv2.LINE_AA)
            if major < 1.0:  # below a pixel: its coverage, not a full pixel
                one *= float(math.pi * major * minor)
            layer += one / subs
        alpha = np.clip(layer, 0.0, 1.0)[..., None]
        if self.occluders:  # behind the leaves of this frame, seen through their gaps
            front = leaves(img[y1:y2, x1:x2], self.occluders, x1, y1, (w, h))
            alpha = alpha * ~front[..., None]
        roi = img[y1:y2, x1:x2].astype(np.float32)
        img[y1:y2, x1:x2] = np.clip(roi * (1 - alpha) + th.shade * alpha, 0, 255).astype(np.uint8)


def read_frames(clip: Clip) -> tuple[list[NDArray[np.uint8]], float]:
    cap = cv2.VideoCapture(str(CLIPS_DIR / clip.file))
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
    frames: list[NDArray[np.uint8]] = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        t = len(frames) / fps
        if clip.background_s[0] <= t <= clip.background_s[1]:
            frames.append(np.asarray(img, np.uint8))
    cap.release()
    if clip.mask_box is not None:
        x1, y1, x2, y2 = clip.mask_box
        median = np.median(np.stack([f[y1:y2, x1:x2] for f in frames]), axis=0)
        for f in frames:
            f[y1:y2, x1:x2] = median.astype(np.uint8)
    return frames, fps


def make_throws(clip: Clip, comp: Compositor, rng: np.random.Generator, n: int) -> list[Throw3D]:
    fac = clip.facade
    fh, cw = fac["floor_height_m"], fac["column_width_m"]
    n_f = fac["top_floor"] - fac["bottom_floor"] + 1
    out = []
    outward = (0.0, 1.0, 2.0, 3.0, 4.0)
    sizes = (3.0, 4.5, 6.0, 10.0, 16.0)
    for i in range(n):
        # the upper floors of the view (a fall needs room below it), roof parapet included
        lo = max(0, n_f - 9) if n_f > 4 else n_f - 1
        fi = int(rng.integers(lo, n_f + (1 if n_f <= 4 else 0)))
        col = int(rng.integers(0, len(fac["columns"])))
        z0 = min(fi, n_f) * fh + (1.0 if fi < n_f else 0.9)  # sill, or the roof's parapet
        release_floor = fac["bottom_floor"] + min(fi, n_f - 1)
        balcony = bool(rng.integers(0, 3) == 0)
        d0 = float(rng.uniform(0.9, 1.4)) if balcony else float(rng.uniform(0.1, 0.4))
        x0 = (col + float(rng.uniform(0.2, 0.8))) * cw
        vd = outward[i % len(outward)] + float(rng.uniform(-0.3, 0.3))
        v0 = (float(rng.uniform(-1.0, 1.0)), max(0.0, vd), float(rng.choice([0.0, 0.0, 1.0, 2.0])))
        p0 = np.array([x0, d0, z0])
        dist = comp.camera.distance(p0)
        # every (outward speed, size) pair once in 25 throws
        apparent = sizes[(i + i // len(outward)) % len(sizes)] * float(rng.uniform(0.9, 1.1))
        size_m = apparent * dist / comp.camera.k[0, 0]
        out.append(
            Throw3D(
                t=1.0, p0=(x0, d0, z0), v0=v0,
                terminal_mps=float(rng.choice([60.0, 30.0, 18.0, 12.0])),
                size_m=size_m, aspect=float(rng.uniform(0.3, 1.0)),
                spin_hz=float(rng.uniform(1.0, 6.0)), shade=int(rng.choice([30, 60, 200, 235])),
                release_floor=release_floor, release_column=fac["columns"][col],
                apparent_px=round(apparent, 1),
            )
        )  # fmt: skip
    return out


def camera_entry(
    clip: Clip, url: str, w: int, h: int, rng: np.random.Generator | None = None
) -> dict[str, Any]:
    """The analyzer's camera for a clip: its façade as calibrated, or with every corner
    clicked up to ±3 px off where ``rng`` is given."""
    facade = dict(clip.facade)
    if rng is not None:
        facade["corners"] = [
            [
                float(np.clip(x + rng.uniform(-3, 3) / w, 0, 1)),
                float(np.clip(y + rng.uniform(-3, 3) / h, 0, 1)),
            ]
            for x, y in clip.facade["corners"]
        ]
    facade["image_size"] = [w, h]
    return {
        "id": "real", "name": clip.name, "url": url,
        "zones": [{"id": "facade", "kind": "facade", "polygon": clip.zone}],
        "facades": [facade], "rules": [{"analyzer": "throwing"}],
    }  # fmt: skip


def render_scene(
    comp: Compositor, throws: list[Throw3D], path: Path, duration_s: float, offset: int,
    bitrate_kbps: int | None, sway_px: float = 0.0, night_e: float | None = None,
) -> Path:  # fmt: skip
    """The scene as a camera records it; with ``sway_px``, a camera on a pole in wind
    (``tests.media.PoleSway``: the picture, object and all, shifted); with ``night_e``, at
    night (``tests.media.LowLight``: that many photo-electrons for mid-grey; the compositor
    should then expose for the whole frame interval)."""
    ground = ground_z(comp.clip.facade)
    paths = [simulate(th, duration_s, ground) for th in throws]
    sway = PoleSway(sway_px, comp.fps, seed=offset, exposure_s=comp.exposure_s)
    sensor = LowLight(night_e, seed=offset) if night_e else None

    def frames() -> Iterator[NDArray[np.uint8]]:
        for i in range(round(duration_s * comp.fps)):
            img = comp.background(i, offset)
            for th, p in zip(throws, paths, strict=True):
                comp.draw(img, th, p, i / comp.fps)
            img = sway(img)
            yield img if sensor is None else sensor(img)

    fps = round(comp.fps)
    return encode_h264(path, frames(), fps=fps, gop=2 * fps, crf=23, bitrate_kbps=bitrate_kbps)


def behind_leaves(
    comp: Compositor, ps: NDArray[np.float64], w: int, h: int, bridge: int = 4
) -> NDArray[np.bool_]:
    """Which of a fall's successive positions (one a frame) are hidden by the clip's trees
    in most frames; a glimpse lost for at most ``bridge`` frames (a frond passing) is not."""
    px = np.round(comp.camera.project(ps)).astype(np.int64)
    ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    hid = np.zeros(len(ps), np.bool_)
    hid[ok] = comp.hidden[px[ok, 1], px[ok, 0]]
    for i, j in runs(hid):
        if j - i <= bridge and i > 0 and j < len(hid):
            hid[i:j] = False
    return hid


def runs(flags: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """The stretches ``[start, end)`` where ``flags`` hold."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def watchable(th: Throw3D, comp: Compositor, w: int, h: int) -> dict[str, Any]:
    """Whether the throw can be seen falling far enough: in the frame and the façade zone,
    in front of the camera, not behind the clip's trees, for a stretch whose drop is ≥ 2
    floors or ≥ 70 % of the façade visible below the release (issue 21's "or the whole
    visible façade"), never under 0.8 floor; released ≥ 1.5 floors above the ground."""
    fac = comp.clip.facade
    fh = fac["floor_height_m"]
    ground = ground_z(fac)
    zone = (np.array(comp.clip.zone, np.float64) * [w, h]).astype(np.float32)

    def seen(p: NDArray[np.float64]) -> NDArray[np.bool_]:
        px = comp.camera.project(p)
        inside = [cv2.pointPolygonTest(zone, (float(x), float(y)), False) >= 0 for x, y in px]
        r = cv2.Rodrigues(comp.camera.rvec)[0]
        cam_z = (p * [1.0, comp.camera.out_sign, 1.0]) @ r.T + comp.camera.tvec.reshape(3)
        return np.array(inside) & (cam_z[:, 2] > 0.5)

    x0, _, z0 = th.p0
    zs = np.arange(z0, ground - 0.01, -0.1)
    col = seen(np.stack([np.full_like(zs, x0), np.zeros_like(zs), zs], axis=1))
    low = float(zs[col].min()) if col.any() else z0
    ts, ps = simulate(th, th.t + 6.0, ground)
    frames = np.arange(0, len(ts), max(1, round(1000 / comp.fps)))
    vis = seen(ps[frames]) & ~behind_leaves(comp, ps[frames], w, h)
    best = 0.0
    for start, end in runs(vis):
        seg = ps[frames[start:end], 2]
        best = max(best, float(seg.max() - seg.min()))
    need = max(0.8 * fh, min(2.0 * fh, 0.7 * (z0 - low)))
    ok = best >= need and z0 - ground >= 1.5 * fh
    return {"watchable": bool(ok), "seen_drop_m": round(best, 2), "needed_drop_m": round(need, 2)}


# Grey levels between an object and what lies behind it below which it does not stand out:
# the analyzer's motion threshold is 10 above the noise, and a small object's contrast is
# diluted by motion blur and the half-resolution analysis.
CONTRAST_GREY = 25.0


def image_path(
    th: Throw3D, comp: Compositor, offset: int, w: int, h: int
) -> list[tuple[float, float, float, int, float]]:
    """Per frame of the throw's fall (release to landing) with the object in the frame:
    time (s), image x and y (px), radius (px) and how many grey levels the object differs
    from the mean of the background under it."""
    ts, ps = simulate(th, th.t + 6.0, ground_z(comp.clip.facade))
    out = []
    i = int(np.ceil(th.t * comp.fps))
    while i / comp.fps <= ts[-1]:
        p = ps[int(np.searchsorted(ts, i / comp.fps).clip(0, len(ts) - 1))]
        x, y = comp.camera.project(p[None, :])[0]
        r = max(1, round(0.5 * th.size_m * comp.camera.px_per_m(p)))
        if r <= x < w - r and r <= y < h - r:
            bg = comp.background(i, offset)[
                int(y) - r : int(y) + r + 1, int(x) - r : int(x) + r + 1
            ]
            grey = float(cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY).mean())
            out.append((i / comp.fps, float(x), float(y), r, abs(grey - th.shade)))
        i += 1
    return out


def contrast_share(path: list[tuple[float, float, float, int, float]]) -> float:
    """Share of the frames of a throw's fall (its ``image_path``) in which the object's grey
    level differs from the mean of the background under it by at least ``CONTRAST_GREY``: a
    dark object over dark glass, or a white one over a white pillar, is there but cannot be
    seen, by a person or by differencing."""
    return sum(c >= CONTRAST_GREY for *_, c in path) / len(path) if path else 0.0
