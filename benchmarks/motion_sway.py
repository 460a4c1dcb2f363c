"""高空抛物 motion stage on a swaying camera: what registering each frame costs, against decoding.

A camera on a pole or a bracket sways with wind; the motion stage then registers every frame
to its background (``pipeline/rules/motion.py``, ``_Sway``). This measures, on the real
development clips (``throwing/bharath_office1.mp4`` 3-storey office, ``throwing/
hamonitorsentry_video_2.mp4`` tower; read in place from ``../shared/data``, never copied),
each as given and re-encoded with 1 px of pole sway (``tests.media.PoleSway``), per frame and
on one core:

* decoding the clip (PyAV, one thread), the reference a camera pays anyway;
* the motion stage over the clip's façade zone at the rule's default scale (0.5), looped to
  600 frames forward and backward (the first 100 frames of a new camera check for sway every
  frame: left out of the mean);
* how many frames were registered, and on the swayed clip the spread of the shifts found
  (the sway put in: 1 px standard deviation on each axis).

Run it alone: it times one core.

    .venv/bin/python benchmarks/motion_sway.py        # ~1 min on 2 cores

Results go to ``benchmarks/results/motion_sway.json``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED, delivery_form, publish, transcode
from pipeline.config_base import ZoneConfig
from pipeline.rules.motion import MotionExtractor
from tests.scenes.facade_3d import CLIPS

FRAMES = 600
WARM = 100
ANALYSIS_SCALE = 0.5  # the 高空抛物 rule's default (analysis_scale)


def decode(path: Path) -> tuple[list[NDArray[np.uint8]], float]:
    """The clip's luma planes and the decode time per frame (ms)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        t0 = time.perf_counter()
        out = [np.asarray(f.to_ndarray(format="gray"), np.uint8) for f in c.decode(s)]
    return out, (time.perf_counter() - t0) / len(out) * 1000


def run(frames: list[NDArray[np.uint8]], zone: ZoneConfig) -> dict[str, Any]:
    looped = (frames + frames[::-1]) * (FRAMES // (2 * len(frames)) + 1)
    ex = MotionExtractor("bench", [zone], scale=ANALYSIS_SCALE)
    times, registered, shifts = [], 0, []
    for i, luma in enumerate(looped[:FRAMES]):
        t0 = time.perf_counter()
        ex.process(luma, seq=i, epoch=1, pts_s=i / 30, time_s=i / 30)
        times.append(time.perf_counter() - t0)
        shift = ex.registration or (0.0, 0.0)
        registered += shift != (0.0, 0.0)
        shifts.append(shift)
    return {
        "motion_ms_per_frame": round(float(np.mean(times[WARM:])) * 1000, 2),
        "motion_ms_per_frame_first_100": round(float(np.mean(times[:WARM])) * 1000, 2),
        "frames_registered": f"{registered}/{FRAMES}",
        "shifts": np.array(shifts),
    }


def main() -> int:
    clips_dir = SHARED / "data" / "throwing"
    if not clips_dir.is_dir():
        print(f"skipped: {clips_dir} not found (the development clips live beside the checkout)")
        return 0
    cv2.setNumThreads(1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gs-sway-") as tmp:
        for clip in CLIPS:
            src = clips_dir / clip.file
            zone = ZoneConfig(id="facade", kind="facade", polygon=clip.zone)
            for sway_px in (0.0, 1.0):
                path = src
                if sway_px:
                    path = Path(tmp) / f"{clip.name}-sway.mp4"
                    transcode(src, path, delivery_form(shake_px=sway_px))
                frames, decode_ms = decode(path)
                r = run(frames, zone)
                shifts = r.pop("shifts")
                motion_ms = r["motion_ms_per_frame"]
                row = {"clip": clip.file, "sway_px": sway_px, "size": list(frames[0].shape[::-1]),
                       "decode_ms_per_frame": round(decode_ms, 2), **r,
                       "motion_vs_decode": round(motion_ms / decode_ms, 3)}  # fmt: skip
                if sway_px:
                    row["shift_px_std_found"] = np.round(shifts[WARM:].std(axis=0), 2).tolist()
                rows.append(row)
                print(row, flush=True)
    still = [r for r in rows if not r["sway_px"]]
    swayed = [r for r in rows if r["sway_px"]]
    summary = {
        "motion_ms_still": [r["motion_ms_per_frame"] for r in still],
        "motion_ms_swaying_1px": [r["motion_ms_per_frame"] for r in swayed],
        "decode_ms": [r["decode_ms_per_frame"] for r in still],
        "frames_registered_swaying": [r["frames_registered"] for r in swayed],
        "frames_registered_still": [r["frames_registered"] for r in still],
    }
    return publish("motion_sway", __doc__, summary, rows=rows)


if __name__ == "__main__":
    sys.exit(main())
