"""The detector on each onnxruntime execution provider this build has, against the CPU.

For every provider of ``pipeline.detect.detector.PROVIDERS`` that the running onnxruntime
offers, ``OnnxDetector`` (the bundled ``models/yolox_nano.onnx``, one thread, pre- and
post-processing included) is timed on real 1280×720 frames of the development parking and
person clips (median over 40 calls after 5 warm-up calls, the providers taking turns so that
a busy moment hits them alike), and its boxes are compared with the CPU provider's on the same
frames (matched at IoU ≥ 0.9 with the same class; the largest confidence difference): an
accelerator is only worth its speed if it finds the same objects.

A stock ``pip install onnxruntime`` has the CPU provider only. OpenVINO (Intel CPUs and GPUs;
it also runs on other x86 CPUs) comes with ``onnxruntime-openvino``, which replaces it::

    .venv/bin/pip uninstall -y onnxruntime && .venv/bin/pip install onnxruntime-openvino
    .venv/bin/python benchmarks/accelerators.py      # results/accelerators.json

CUDA and TensorRT need ``onnxruntime-gpu`` and an NVIDIA GPU. Each run writes the providers it
measured; a run on another build adds its rows (``--merge``) instead of dropping earlier ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, RESULTS, SHARED, write_result
from pipeline.detect.detector import PROVIDERS, OnnxDetector
from pipeline.types import Detections

CLIPS = (
    SHARED / "data" / "parking" / "intel_car-detection.mp4",
    SHARED / "data" / "generic" / "intel_one-by-one-person-detection.mp4",
)
MODEL = REPO / "models" / "yolox_nano.onnx"
NAME = "accelerators"


def frames(clip: Path, n: int = 8) -> list[NDArray[np.uint8]]:
    """``n`` frames spread over a clip, at the 1280×720 a camera's analysis sees."""
    out: list[NDArray[np.uint8]] = []
    with av.open(str(clip)) as c:
        every = max(1, (c.streams.video[0].frames or 300) // n)
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0 and len(out) < n:
                bgr = np.asarray(f.to_ndarray(format="bgr24"), np.uint8)
                out.append(np.asarray(cv2.resize(bgr, (1280, 720)), np.uint8))
    return out


def _iou(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float64]:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9), np.float64)


def agreement(ref: list[Detections], got: list[Detections]) -> dict[str, Any]:
    """How many of the reference boxes the other provider found (same class, IoU ≥ 0.9)."""
    matched = total = extra = 0
    worst = 0.0
    for r, g in zip(ref, got, strict=True):
        total += len(r)
        iou = _iou(r.xyxy, g.xyxy) if len(r) and len(g) else np.zeros((len(r), len(g)))
        same = r.class_id[:, None] == g.class_id[None, :]
        hit = (iou >= 0.9) & same
        matched += int(hit.any(axis=1).sum())
        extra += int((~hit.any(axis=0)).sum()) if len(g) else 0
        for i, j in zip(*np.nonzero(hit), strict=True):
            worst = max(worst, abs(float(r.confidence[i]) - float(g.confidence[j])))
    return {"reference_boxes": total, "matched": matched, "extra_boxes": extra,
            "max_confidence_difference": round(worst, 6)}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--merge", action="store_true", help="keep earlier rows of other builds")
    args = p.parse_args()
    if not all(c.exists() for c in CLIPS):
        print(f"skipped: {CLIPS} not found (the development clips live beside the checkout)")
        return 0
    available = set(ort.get_available_providers())
    names = [n for n, full in PROVIDERS.items() if full in available]
    names.sort(key=lambda n: n != "cpu")  # the CPU first: the reference
    images = [img for clip in CLIPS for img in frames(clip)]
    dets = {n: OnnxDetector(MODEL, intra_op_threads=1, providers=(n,)) for n in names}
    for n, d in dets.items():
        if n != "cpu" and d.providers[0] != PROVIDERS[n]:
            raise SystemExit(f"{n}: onnxruntime fell back to {d.providers}")
    times: dict[str, list[float]] = {n: [] for n in names}
    for d in dets.values():
        for img in images[:5]:
            d.detect([img])
    for k in range(args.calls):
        img = images[k % len(images)]
        for n, d in dets.items():
            t0 = time.perf_counter()
            d.detect([img])
            times[n].append(time.perf_counter() - t0)
    ref = [dets["cpu"].detect([img])[0] for img in images]
    rows = []
    for n, d in dets.items():
        ms = 1000 * statistics.median(times[n])
        rows.append({
            "provider": n, "session_providers": list(d.providers),
            "onnxruntime": f"{ort.__version__} ({ort.get_device()})",
            "ms_per_frame_median": round(ms, 2),
            "ms_per_frame_p90": round(1000 * float(np.quantile(times[n], 0.9)), 2),
            "speed_vs_cpu": round(statistics.median(times["cpu"]) / statistics.median(times[n]), 3),
            "agreement_with_cpu": agreement(ref, [d.detect([img])[0] for img in images]),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    if args.merge and (RESULTS / f"{NAME}.json").exists():
        earlier = json.loads((RESULTS / f"{NAME}.json").read_text())
        keep = [r for r in earlier.get("rows", []) if r["onnxruntime"] != rows[0]["onnxruntime"]]
        rows = keep + rows
    clips = [str(c.relative_to(SHARED)) for c in CLIPS]
    path = write_result(NAME, {"method": __doc__, "model": MODEL.name, "frames": len(images),
                               "clips": clips, "rows": rows})  # fmt: skip
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
