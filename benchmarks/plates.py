"""Plate reading (车牌识别) accuracy: detector + rectification + PP-OCRv4 recognition.

Material:

* ``real``: the two plate photos in ``shared/models/images`` (HyperLPR's test images,
  Apache-2.0): a green new-energy plate 苏E·D51712 about 123 px wide on a parked car, and a
  yellow double-layer truck plate about 23 px wide (well below what any reader can resolve;
  reported, not counted towards the ≥ 80 px figure). Their texts were read by eye from the
  images.
* ``generated``: plates drawn by ``tests/scenes/plates.py`` (GA 36 layout in Noto Sans CJK Bold,
  blue, yellow and green new-energy, random province and characters) warped onto the real car
  photo in place of its own plate, turned by up to ±25° and sheared, the photo scaled so that
  the plate is 60-160 px wide, then blurred, noised and JPEG-compressed (quality 75). Read
  through ``PlateReader.read`` with the region a parking stay would give (the car's
  surroundings), exactly as the analyzer calls it.

Figures: exact-text rate per plate width, and over all generated plates ≥ 80 px (target 0.9).
Results go to ``benchmarks/results/plates.json``.

``--detector PATH`` reads with another y5fu variant (HyperLPR3 ships one with a 320 × 320 input
as well, ``shared/models/plate/y5fu_320x_sim.onnx``), ``--then PATH`` reads again with that
one where the first read is no sure plate (a valid read at ``HINT_CONFIDENCE``), and ``--name``
writes ``benchmarks/results/<name>.json``: what a cheaper detector would cost in reading.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED, publish
from pipeline.detect.plates import (
    HINT_CONFIDENCE,
    PLATE_MODEL,
    PlateDetector,
    PlateRead,
    PlateReader,
)
from tests.media import read_bgr
from tests.scenes.plates import STYLES, degrade, draw_plate, place, plate_corners, random_plate

IMAGES = SHARED / "models" / "images"
REAL = (("hyperlpr_test_img.jpg", "苏ED51712"), ("hyperlpr_1.jpg", None))
# where the real plate sits in hyperlpr_test_img.jpg (its detector corners' centre) and width
CAR_PLATE_CENTRE, CAR_PLATE_WIDTH = (1810.0, 799.0), 123.0
WIDTHS = (60, 80, 100, 130, 160)


class _Then:
    """A first reader, and a second one for what the first did not read surely."""

    def __init__(self, first: PlateReader, then: PlateReader) -> None:
        self.first, self.then = first, then
        self.second_reads = 0

    def read(
        self, image: np.ndarray, region: tuple[float, float, float, float] | None = None
    ) -> list[PlateRead]:
        reads = self.first.read(image, region)
        if reads and reads[0].valid and reads[0].confidence >= HINT_CONFIDENCE:
            return reads
        self.second_reads += 1
        return self.then.read(image, region)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-width", type=int, default=60)
    parser.add_argument("--detector", type=Path, help="a y5fu model (default: the shipped one)")
    parser.add_argument("--then", type=Path, help="a y5fu model for reads the first was unsure of")
    parser.add_argument("--name", default="plates")
    args = parser.parse_args()
    car_photo = IMAGES / "hyperlpr_test_img.jpg"
    if not car_photo.exists():
        print(f"skipped: {IMAGES} not found (the shared models live beside the checkout)")
        return 0
    first = PlateReader(PlateDetector(args.detector) if args.detector else None)
    reader = _Then(first, PlateReader(PlateDetector(args.then))) if args.then else first
    real: list[dict[str, Any]] = []
    for name, truth in REAL:
        img = read_bgr(IMAGES / name)
        reads = reader.read(img)
        best = reads[0] if reads else None
        real.append({
            "image": name, "truth": truth, "read": best.text if best else None,
            "confidence": round(best.confidence, 3) if best else None,
            "valid": best.valid if best else None, "colour": best.colour if best else None,
            "width_px": round(best.sighting.width_px, 1) if best else None,
            "exact": best is not None and best.text == truth,
        })  # fmt: skip
        print(real[-1], flush=True)
    car = read_bgr(car_photo)
    rng = np.random.default_rng(2026)
    by_width: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    times = []
    for width in WIDTHS:
        exact = found = 0
        for _ in range(args.per_width):
            spec = random_plate(rng)
            scale = width / CAR_PLATE_WIDTH
            img = np.asarray(
                cv2.resize(car, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), np.uint8
            )
            cx, cy = CAR_PLATE_CENTRE
            yaw, shear = float(rng.uniform(-25, 25)), float(rng.uniform(-0.15, 0.15))
            aspect = STYLES[spec.style][2] / 140
            corners = plate_corners((cx * scale, cy * scale), width, aspect, yaw, shear)
            img = degrade(place(img, draw_plate(spec), corners), rng)
            x1, y1 = corners.min(axis=0)
            x2, y2 = corners.max(axis=0)
            region = (x1 - 4 * width, y1 - 2 * width, x2 + 4 * width, y2 + width)
            t0 = time.perf_counter()
            reads = reader.read(img, region)
            times.append(time.perf_counter() - t0)
            got = reads[0].text if reads else None
            found += bool(reads)
            exact += got == spec.text
            if len(samples) < 40 and got != spec.text:
                samples.append({"width": width, "truth": spec.text, "style": spec.style,
                                "read": got})  # fmt: skip
        by_width[str(width)] = {"plates": args.per_width, "found": found, "exact": exact,
                                "exact_rate": round(exact / args.per_width, 3)}  # fmt: skip
        print(width, by_width[str(width)], flush=True)
    big = [v for k, v in by_width.items() if int(k) >= 80]
    readable = [r for r in real if float(r["width_px"] or 0) >= 80]
    summary = {
        "real_exact": f"{sum(bool(r['exact']) for r in real)}/{len(real)}",
        "real_exact_at_least_80px": f"{sum(bool(r['exact']) for r in readable)}/{len(readable)}",
        "generated_exact_rate_at_least_80px": round(
            sum(v["exact"] for v in big) / max(1, sum(v["plates"] for v in big)), 3
        ),
        "generated_by_width": by_width,
        "read_ms_median": round(float(np.median(times)) * 1000, 1),
        "read_ms_mean": round(float(np.mean(times)) * 1000, 1),
        "detector": (args.detector or PLATE_MODEL).name,
    }
    if isinstance(reader, _Then):
        summary["then"] = args.then.name
        summary["second_reads"] = reader.second_reads
    return publish(args.name, __doc__, summary, real=real, wrong_reads_sample=samples)


if __name__ == "__main__":
    sys.exit(main())
