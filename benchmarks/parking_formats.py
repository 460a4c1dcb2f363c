"""违章停车 on footage delivered as other cameras and recorders deliver it.

Parking decodes keyframes only, so how a camera encodes decides what it sees: B-frames make a
decoder hold pictures back (fed keyframes alone it once handed each keyframe out two GOPs
late, or out of order with H.265, and lost the last ones), and "smart" H.265+ encoders stretch
the GOP to 10 s or more. Two cases of ``accuracy_parking.py``, re-encoded with PyAV and replayed
through the live pipeline (YOLOX-nano), keyframe-only (the default) and sampled at 2 fps:

* ``demo_street``: the bundled demo footage (generated from an Apache-2.0 still; the white car
  stands in the fire lane 14-84 s, a motorcycle on the pavement all along; dwell 30 s).
* ``intel_car_aisle`` (``shared/data/parking/intel_car-detection.mp4``, CC BY 4.0): cars
  driving through a no-parking aisle without stopping (dwell 10 s): no event expected.

Forms: as given (H.264, no B-frames, 2 s GOP), H.264 with 3 B-frames, H.265 (x265 defaults:
B-frames, open GOP) with a 2 s and a 10 s GOP, H.264 with a 10 s GOP. Scored as in
``accuracy_parking.py`` (stop and end within ±2 s; a 10 s GOP samples every 10 s, so its
timing errors are reported, and only finding the stay, in its zone, is asked of it).

    .venv/bin/python benchmarks/parking_formats.py        # ~5 min on 2 cores

Results go to ``benchmarks/results/parking_formats.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.accuracy_parking import (
    add_decode_ab,
    cases,
    keyframe_decodes,
    models,
    run_case,
)
from benchmarks.common import delivery_form, publish, transcode


def _x265(keyint_s: int) -> dict[str, str]:
    return {"crf": "26", "x265-params": f"keyint={keyint_s * 15}:min-keyint={keyint_s * 15}"
            ":scenecut=0:log-level=error:pools=1:frame-threads=1"}  # fmt: skip


def _x264(gop_s: int, bframes: int) -> dict[str, str]:
    g = str(gop_s * 15)
    return {"crf": "23", "g": g, "keyint_min": g, "sc_threshold": "0", "bf": str(bframes)}


# GOP lengths in frames at the demo footage's 15 fps (the intel clip is encoded at its own rate
# with the same frame counts: what matters is that keyframes are few and B-frames present)
FORMS: dict[str, dict[str, Any] | None] = {
    "as_given": None,
    "h264_3_bframes": delivery_form(options=_x264(2, 3)),
    "hevc_gop2s": delivery_form(codec="libx265", options=_x265(2)),
    "hevc_gop10s": delivery_form(codec="libx265", options=_x265(10)),
    "h264_gop10s": delivery_form(options=_x264(10, 0)),
}
CASES = {"demo_street": 30.0, "intel_car_aisle": 10.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_decode_ab(parser)
    decodes = [*keyframe_decodes(parser.parse_args()), "sampled"]
    work = Path(tempfile.mkdtemp(prefix="gs-pformats-"))
    rows: list[dict[str, Any]] = []
    try:
        chosen = [c for c in cases(work) if c.name in CASES]
        if len(chosen) < len(CASES):
            print("note: shared/data/parking not found; the demo street only")
        for name, form in FORMS.items():
            for case in chosen:
                video = case.video
                if form is not None:
                    video = work / f"{case.name}-{name}.mp4"
                    transcode(case.video, video, form)
                for decode in decodes:
                    run = run_case(dataclasses.replace(case, video=video), models()[0],
                                   CASES[case.name], decode)  # fmt: skip
                    rows.append({"form": name, **run})
                    found = [e["zone"] for e in run["events"]]
                    print(name, case.name, decode, run["frames_analysed"], "frames:",
                          f"{run['true_positives']}/{run['expected']} found,",
                          run["false_positives"], "false", found, flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "stays_found": f"{sum(r['true_positives'] for r in rows)}/"
        f"{sum(r['expected'] for r in rows)}",
        "false_events": sum(r["false_positives"] for r in rows),
        "runs_passed": f"{sum(bool(r['pass']) for r in rows)}/{len(rows)}",
        "by_form": {
            f"{r['form']}/{r['case']}/{r['decode']}": {
                "found": f"{r['true_positives']}/{r['expected']}",
                "false": r["false_positives"],
                "frames": r["frames_analysed"],
                "timing_ok": r["pass"],
            }
            for r in rows
        },
    }
    return publish("parking_formats", __doc__, summary, runs=rows)


if __name__ == "__main__":
    sys.exit(main())
