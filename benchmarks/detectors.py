"""Detector cost and what each detector calls the cars of the real top-down clip.

For every COCO model available (``models/yolox_nano.onnx`` and ``shared/models/coco/*.onnx``):
median milliseconds per 1280×720 frame (onnxruntime CPU, one intra-op thread, pre- and
post-processing included, 5 warm-up calls), and on the frames of
``shared/data/parking/intel_car-detection.mp4`` in which cars drive through the aisle seen from
straight above (annotated intervals), the classes of the boxes it gives there (a COCO model
trained on eye-level photos rarely says "car"). Accuracy through the parking rule is in
``accuracy_parking.json`` (same models, same footage); this file adds the cost side of the
choice. Results: ``benchmarks/results/detectors.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, SHARED, write_result
from pipeline.detect.detector import COCO_NAMES, OnnxDetector

CLIP = SHARED / "data" / "parking" / "intel_car-detection.mp4"
MOVING = ((4.4, 8.9), (14.5, 19.2), (25.2, 26.9))  # ANNOTATIONS.json: cars in the aisle


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    if not CLIP.exists():
        print(f"skipped: {CLIP} not found (the development clips live beside the checkout)")
        return 0
    frames = []
    with av.open(str(CLIP)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            t = float(f.time or 0.0)
            if any(a <= t <= b for a, b in MOVING) and round(t * 12.5) % 6 == 0:
                frames.append(np.asarray(f.to_ndarray(format="bgr24"), np.uint8))
    big = np.asarray(cv2.resize(frames[0], (1280, 720)), np.uint8)
    models = [
        REPO / "models" / "yolox_nano.onnx",
        *sorted((SHARED / "models" / "coco").glob("*.onnx")),
    ]
    rows = []
    for path in models:
        det = OnnxDetector(path, intra_op_threads=1)
        for _ in range(5):
            det.detect([big])
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            det.detect([big])
            times.append(time.perf_counter() - t0)
        named: Counter[str] = Counter()
        for img in frames:
            named.update(COCO_NAMES[int(c)] for c in det.detect([img])[0].class_id)
        row = {
            "model": str(
                path.relative_to(REPO)
                if path.is_relative_to(REPO)
                else Path("shared") / path.relative_to(SHARED)
            ),
            "input": list(det.info.input_size),
            # free input sides: the 16:9 frame goes in at 416 × 288, not squared
            "fitted_to_frame": det.info.fit_aspect,
            "ms_per_frame_median": round(float(np.median(times)) * 1000, 1),
            "top_down_frames": len(frames),
            "classes_on_top_down_cars": dict(named.most_common(8)),
            "vehicle_boxes_per_frame": round(
                sum(named[c] for c in ("car", "truck", "bus")) / len(frames), 2
            ),
        }
        rows.append(row)
        print(row, flush=True)
    path = write_result("detectors", {"method": __doc__, "models": rows})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
