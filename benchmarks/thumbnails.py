"""What a keyframe's thumbnails cost: OpenCV's one-pass area resize against
``pipeline.imaging.area_shrink`` (whole-number factor first), one thread as the analysis thread
runs them (``tune_process``), on the crops the analyzers shrink: a 1080p-wide and a 1280-wide
analysis frame's zone crop to the static-foreground thumbnail (192 px, parking; 320 px,
vending) and the change gate's (160 px), and the throughput trial's small zone crops of its
960-wide analysis frame. Ratios in one run; the pictures are a real development frame
(``parking/intel_car-detection.mp4``, scaled) where ``../shared/data`` is present, else a
generated street-like picture (says which).

Also the view-integrity check (``pipeline.rules.integrity``: one view and its comparison with
the reference, every ``every_s`` of a camera's stream) at the analysis widths cameras deliver,
in ms per check.

    python -m benchmarks.thumbnails
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.common import SHARED, publish
from pipeline.imaging import area_shrink
from pipeline.rules.integrity import View, compare, view_of

# (frame width, crop (x1, y1, x2, y2) as shares of the frame, thumbnail width, what it is)
CASES = [
    (1920, (0.10, 0.12, 0.90, 0.95), 192, "parking static foreground, 1080p frame, wide zones"),
    (1920, (0.10, 0.12, 0.90, 0.95), 160, "change gate, 1080p frame, wide zones"),
    (1280, (0.05, 0.10, 0.95, 0.95), 192, "parking static foreground, 1280-wide (default)"),
    (1280, (0.05, 0.10, 0.95, 0.95), 320, "vending static foreground, 1280-wide (default)"),
    (960, (0.05, 0.55, 0.80, 0.92), 192, "throughput trial's zone crop (960-wide frame)"),
]

# (analysis frame width, which cameras deliver it)
INTEGRITY_WIDTHS = [
    (960, "1080p camera (analysis width 1280: 1920 / 2)"),
    (1280, "720p camera, or 2560-wide / 2"),
    (704, "D1 (704 × 576-class) camera, 16:9 here"),
]


def picture() -> tuple[NDArray[np.uint8], str]:
    clip = SHARED / "data" / "parking" / "intel_car-detection.mp4"
    if clip.is_file():
        import av

        with av.open(str(clip)) as c:
            frame = next(c.decode(video=0)).to_ndarray(format="bgr24")
        return np.asarray(frame, np.uint8), f"first frame of {clip.name}, scaled"
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (1080, 1920, 3)).astype(np.uint8), (7, 7), 0)
    return np.asarray(img, np.uint8), "generated (../shared/data absent)"


def at_width(base: NDArray[np.uint8], width: int, interpolation: int) -> NDArray[np.uint8]:
    """The development frame as a 16:9 analysis frame ``width`` wide."""
    size = (width, round(width * 9 / 16))
    return np.asarray(cv2.resize(base, size, interpolation=interpolation), np.uint8)


def per_call_ms(f: Callable[[], object], n: int = 60) -> float:
    f()
    t = time.thread_time()
    for _ in range(n):
        f()
    return (time.thread_time() - t) / n * 1e3


def main() -> int:
    cv2.setNumThreads(1)
    base, source = picture()
    rows: list[dict[str, Any]] = []
    for width, (x1, y1, x2, y2), thumb, what in CASES:
        frame = at_width(base, width, cv2.INTER_LINEAR)
        h, w = frame.shape[:2]
        crop = np.ascontiguousarray(
            frame[round(y1 * h) : round(y2 * h), round(x1 * w) : round(x2 * w)]
        )
        size = (thumb, max(8, round(thumb * crop.shape[0] / crop.shape[1])))

        def one_pass(c: NDArray[np.uint8] = crop, s: tuple[int, int] = size) -> object:
            return cv2.resize(c, s, interpolation=cv2.INTER_AREA)

        def two_pass(c: NDArray[np.uint8] = crop, s: tuple[int, int] = size) -> object:
            return area_shrink(c, s)

        one, two = per_call_ms(one_pass), per_call_ms(two_pass)
        diff = np.abs(
            area_shrink(crop, size).astype(np.int16)
            - cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        )
        rows.append(
            {
                "case": what, "crop": [crop.shape[1], crop.shape[0]], "thumbnail": list(size),
                "one_pass_ms": round(one, 3), "two_pass_ms": round(two, 3),
                "ratio": round(one / two, 2), "mean_abs_diff_grey": round(float(diff.mean()), 3),
            }
        )  # fmt: skip
        print(rows[-1], flush=True)
    checks: dict[str, float] = {}
    for width, what in INTEGRITY_WIDTHS:
        frame = at_width(base, width, cv2.INTER_AREA)
        ref = view_of(frame)

        def check(f: NDArray[np.uint8] = frame, r: View = ref) -> object:
            return compare(r, view_of(f))

        checks[what] = round(per_call_ms(check), 3)
        print(what, checks[what], "ms", flush=True)
    summary = {
        "picture": source,
        "ratio_by_case": {r["case"]: r["ratio"] for r in rows},
        "integrity_check_ms": checks,
    }
    return publish("thumbnails", __doc__, summary, cases=rows)


if __name__ == "__main__":
    raise SystemExit(main())
