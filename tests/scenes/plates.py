"""Generated Chinese licence plates for the plate reader's tests and benchmark.

A plate is drawn flat at its real proportions (440 × 140 mm blue/yellow, 480 × 140 mm green
new-energy), with the layout of GA 36 (province, office letter, a separator dot, then five or
six characters) in Noto Sans CJK Bold — not the plates' own typeface, which no free font
reproduces; that difference is part of what a reader trained on real plates must cope with. It
is then placed by a perspective warp onto a picture (a real car photo in the benchmark, a plain
bumper in tests), blurred, noised and JPEG-compressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
_SC = 2  # index of the Simplified Chinese face in the collection
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
STYLES = {  # background BGR, text BGR, width mm
    "blue": ((150, 60, 10), (245, 245, 245), 440),
    "yellow": ((20, 190, 235), (20, 20, 20), 440),
    "green": ((90, 190, 60), (20, 20, 20), 480),
}


@dataclass(frozen=True)
class PlateSpec:
    text: str  # without the separator, e.g. "苏E12345"
    style: str


def random_plate(rng: np.random.Generator) -> PlateSpec:
    style = str(rng.choice(["blue", "blue", "yellow", "green"]))
    head = str(rng.choice(list(PROVINCES))) + str(rng.choice(list(LETTERS)))
    n = 6 if style == "green" else 5
    if style == "green":  # new-energy: D (electric) or F (hybrid) first for small cars
        tail = str(rng.choice(["D", "F"])) + "".join(rng.choice(list(DIGITS), n - 1))
    else:
        pool = DIGITS * 3 + LETTERS  # mostly digits, as issued
        tail = "".join(rng.choice(list(pool), n))
    return PlateSpec(head + tail, style)


def draw_plate(spec: PlateSpec, px_per_mm: float = 2.0) -> NDArray[np.uint8]:
    """The flat plate (BGR), ``px_per_mm`` pixels per millimetre."""
    bg, fg, width_mm = STYLES[spec.style]
    w, h = round(width_mm * px_per_mm), round(140 * px_per_mm)
    img = Image.new("RGB", (w, h), bg[::-1])
    if spec.style == "green":  # new-energy plates fade from white at the top to green
        white = np.array([235, 245, 235], np.float32)
        ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        grad = white * (1 - ramp) + np.array(bg[::-1], np.float32) * ramp
        img = Image.fromarray(np.repeat(grad, w, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    m = round(5 * px_per_mm)
    draw.rounded_rectangle((m, m, w - m, h - m), radius=m, outline=fg[::-1], width=max(1, m // 2))
    font = ImageFont.truetype(str(FONT), round(82 * px_per_mm), index=_SC)
    chars = list(spec.text)
    # 45 mm wide characters, 12 mm apart, a 10 mm gap with a dot after the second
    cw = (width_mm - 2 * 15 - 10 - 12 * (len(chars) - 1)) / len(chars)
    x = 15.0
    for i, ch in enumerate(chars):
        left, top, right, bottom = draw.textbbox((0, 0), ch, font=font)
        glyph = Image.new("L", (int(right - left), int(bottom - top)), 0)
        ImageDraw.Draw(glyph).text((-left, -top), ch, fill=255, font=font)
        target: tuple[int, int] = (max(1, round(cw * px_per_mm)), round(90 * px_per_mm))
        glyph = glyph.resize(target)
        img.paste(Image.new("RGB", target, fg[::-1]), (round(x * px_per_mm), round(25 * px_per_mm)),
                  glyph)  # fmt: skip
        x += cw + 12
        if i == 1:
            r = 3 * px_per_mm
            cx, cy = (x - 6 + 5) * px_per_mm, 70 * px_per_mm
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg[::-1])
            x += 10
    return np.asarray(img, np.uint8)[:, :, ::-1].copy()


def place(image: NDArray[np.uint8], plate: NDArray[np.uint8],
          corners: NDArray[np.float32]) -> NDArray[np.uint8]:  # fmt: skip
    """``plate`` warped onto ``image`` at ``corners`` (TL, TR, BR, BL)."""
    h, w = plate.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    size = (image.shape[1], image.shape[0])
    warped = cv2.warpPerspective(plate, m, size, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, size, flags=cv2.INTER_AREA)
    a = mask[..., None].astype(np.float32) / 255.0
    return np.asarray(image * (1 - a) + warped * a, np.uint8)


def degrade(image: NDArray[np.uint8], rng: np.random.Generator, *, blur: float = 0.6,
            noise: float = 3.0, jpeg: int = 75) -> NDArray[np.uint8]:  # fmt: skip
    out = cv2.GaussianBlur(image, (0, 0), blur) if blur > 0 else image
    out = np.clip(out + rng.normal(0, noise, out.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)


def plate_corners(centre: tuple[float, float], width_px: float, aspect: float, yaw_deg: float,
                  tilt: float = 0.0) -> NDArray[np.float32]:  # fmt: skip
    """Corners of a plate ``width_px`` wide seen turned by ``yaw_deg`` (foreshortened, with
    the far side smaller) and sheared by ``tilt`` (fraction of its height)."""
    cx, cy = centre
    c = float(np.cos(np.radians(yaw_deg)))
    half_w, half_h = width_px * c / 2, width_px / aspect / 2
    k = 0.08 * float(np.sin(np.radians(yaw_deg)))  # the far edge is shorter
    return np.array(
        [
            [cx - half_w, cy - half_h * (1 + k) + tilt * half_h],
            [cx + half_w, cy - half_h * (1 - k) - tilt * half_h],
            [cx + half_w, cy + half_h * (1 - k) - tilt * half_h],
            [cx - half_w, cy + half_h * (1 + k) + tilt * half_h],
        ],
        np.float32,
    )
