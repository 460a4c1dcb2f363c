"""Generates the demo footage from one licensed still (``assets/street_parking.jpg``).

The still (HyperLPR test image, Apache-2.0, see ``assets/NOTICE``) shows a street with parked
cars. The generated clip keeps the left-hand cars parked throughout and lets the white car drive
into the fire lane in the foreground, stand there, and leave again, so the demo produces events
that start, update and end. The car is cut out with GrabCut and its spot is filled by inpainting;
the result is a plain, repeatable scene for the real detector, not a photorealistic video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.ingest.media import encode_h264

ASSET = Path(__file__).parent / "assets" / "street_parking.jpg"
# White car in the asset, as a fraction of the image (x1, y1, x2, y2).
CAR_BOX_REL = (0.305, 0.305, 0.985, 0.915)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Seconds within one loop of the clip."""

    arrive: float = 8.0
    parked: float = 14.0
    depart: float = 84.0
    gone: float = 90.0
    length: float = 110.0


def _layers(
    width: int, height: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """(full scene, scene with the white car removed, car alpha mask 0/255)."""
    raw = cv2.imread(str(ASSET))
    if raw is None:
        raise FileNotFoundError(ASSET)
    img = np.asarray(cv2.resize(raw, (width, height), interpolation=cv2.INTER_AREA), np.uint8)
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(CAR_BOX_REL, (width, height) * 2, strict=True))
    mask = np.zeros((height, width), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(img, mask, (x1, y1, x2 - x1, y2 - y1), bgd, fgd, 4, cv2.GC_INIT_WITH_RECT)
    car = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    car = np.asarray(cv2.morphologyEx(car, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8)), np.uint8)
    hole = np.asarray(cv2.dilate(car, np.ones((41, 41), np.uint8)), np.uint8)
    return img, _fill_rows(img, hole), car


def _fill_rows(img: NDArray[np.uint8], hole: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Fill the hole row by row, blending its left and right neighbours (road and wall are
    roughly horizontal bands here), then soften the seam; plain but free of smears."""
    out = img.astype(np.float32)
    for y in range(img.shape[0]):
        xs = np.flatnonzero(hole[y])
        if len(xs) == 0:
            continue
        left, right = max(xs[0] - 1, 0), min(xs[-1] + 1, img.shape[1] - 1)
        u = np.linspace(0.0, 1.0, xs[-1] - xs[0] + 1)[:, None]
        out[y, xs[0] : xs[-1] + 1] = out[y, left] * (1 - u) + out[y, right] * u
    blurred = cv2.GaussianBlur(out, (0, 0), 6)
    soft = cv2.GaussianBlur(hole.astype(np.float32) / 255, (0, 0), 8)[..., None]
    filled = blurred * soft + out * (1 - soft)
    rng = np.random.default_rng(7)  # a little sensor-like grain so the patch is not flat
    filled += rng.normal(0, 3, filled.shape) * soft
    return np.clip(filled, 0, 255).astype(np.uint8)


def _ease(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return 1 - (1 - u) ** 3


def render_frame(
    t: float, layers: tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]], tl: Timeline
) -> NDArray[np.uint8]:
    full, empty, car = layers
    h, w = full.shape[:2]
    t = t % tl.length
    if tl.parked <= t < tl.depart:
        frame = full.copy()
    elif t < tl.arrive or t >= tl.gone:
        frame = empty.copy()
    else:
        # Driving in from the right (ease out) or off to the right (ease in).
        if t < tl.parked:
            offset = (1 - _ease((t - tl.arrive) / (tl.parked - tl.arrive))) * w * 0.8
        else:
            offset = (1 - _ease(1 - (t - tl.depart) / (tl.gone - tl.depart))) * w * 0.8
        m = np.array([[1, 0, offset], [0, 1, 0]], dtype=np.float32)
        moved = cv2.warpAffine(full, m, (w, h))
        alpha = cv2.warpAffine(car, m, (w, h)).astype(np.float32)[..., None] / 255
        frame = np.asarray(moved * alpha + empty * (1 - alpha), dtype=np.uint8)
    gain = 1.0 + 0.03 * np.sin(2 * np.pi * t / 37.0)  # slow exposure drift, like clouds
    frame = np.asarray(cv2.convertScaleAbs(frame, alpha=gain), dtype=np.uint8)
    stamp = f"GRIDSIGHT DEMO  CAM demo_street  t={t:06.2f}s"
    cv2.putText(
        frame, stamp, (16, 32), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA
    )
    return frame


def generate(
    path: Path,
    *,
    width: int = 1280,
    height: int = 720,
    fps: int = 15,
    gop_s: float = 2.0,
    timeline: Timeline | None = None,
    noise: float = 0.0,
    crf: int = 26,
    bitrate_kbps: int | None = None,
) -> Path:
    """Write one loop of H.264: an Annex-B elementary stream for ``.h264``, else by suffix.

    ``noise`` adds Gaussian sensor noise (σ in grey levels), which is what makes a real
    camera's P-frames cost bits. ``bitrate_kbps`` switches from constant quality to the
    constant-bitrate control IP cameras use (VBV buffer of one second), which also bounds the
    size of I-frames as it does on a camera.
    """
    tl = timeline or Timeline()
    layers = _layers(width, height)
    rng = np.random.default_rng(11)
    grain = [
        rng.normal(0, noise, (height, width, 3)).astype(np.int16) for _ in range(8 if noise else 0)
    ]

    def frame(i: int) -> NDArray[np.uint8]:
        img = render_frame(i / fps, layers, tl)
        if grain:
            img = np.clip(img + grain[i % len(grain)], 0, 255).astype(np.uint8)
        return img

    frames = (frame(i) for i in range(round(tl.length * fps)))
    encode_h264(path, frames, fps=fps, gop=round(fps * gop_s), crf=crf, bitrate_kbps=bitrate_kbps)
    return path
