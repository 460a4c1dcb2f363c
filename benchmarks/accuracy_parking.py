"""Illegal-parking accuracy on the development clips and on generated footage, real detector.

Cases (each replayed through exactly the live pipeline, `gridsight replay`):

* ``intel_car_aisle`` — ``shared/data/parking/intel_car-detection.mp4`` (CC BY 4.0): cars drive
  through a parking-lot aisle without stopping, with two auto-exposure jumps. The whole aisle is
  a no-parking zone. Expected: no event. The clip is 30 s long, so the rule runs with short
  dwell thresholds (5 s and 10 s): a realistic 120 s threshold could not fire at all.
* ``intel_people_hall`` — ``shared/data/generic/…person-detection.mp4``: people only. Expected:
  no event (nothing in it is a vehicle).
* ``demo_street`` — the bundled demo footage (generated from an Apache-2.0 still): the white car
  stands in the fire lane from 14.0 s to 84.0 s; a motorcycle stands on the pavement all the
  time. Expected: both stays found, stop time within ±2 s of the truth, the car's end within
  ±2 s.
* ``intel_frozen_topdown`` — stress case derived from the intel clip: the first 16 s, then the
  frame at 16 s held for 40 s (two cars standing in the aisle, seen from straight above).
  Expected: two events; COCO detectors rarely call top-down cars "car" (YOLOX-nano says "cell
  phone"), so this measures that limitation.

* ``view/<angle>/<colour>/<stop|dropoff>/<calibrated|uncalibrated>`` — scenes rendered by
  ``tests/scenes/ground_views.py``: the intel clip as the textured ground of a 3-D world, a
  low-poly car (white or black) driving in, standing 95 s in a no-parking zone and driving off
  (``stop``; stop at 15 s, end at 110 s), or standing only 15 s (``dropoff``: expected no event),
  seen through a pinhole camera straight down (90°), at 60° along the aisle, 40° across it and
  28° along it. The zone is drawn from the camera model's projection of a 3 × 6 m rectangle, once
  with its size in metres (``size_m``, a calibrated ground) and once without. Matched when the
  stop is within ±6 s (static objects are dated back by ``static_settle_s``; keyframes come
  every 2 s) and the end within ±6 s; the errors are reported per view.

Each case runs with every available model (``models/yolox_nano.onnx``; and
``shared/models/coco/yolov8n_320_dq.onnx`` when present) and the default keyframe decoding;
the intel clips (GOP 4.8 s) also with 2 fps sampled decoding. Results go to
``benchmarks/results/accuracy_parking.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import CACHE, REPO, SHARED, STILL_DECODE_S, publish
from pipeline.ingest.media import encode_h264

DATA = SHARED / "data"
START = 1_763_863_200.0  # 2025-11-23 10:00 +08:00 (inside any daytime schedule)


@dataclass(frozen=True)
class Truth:
    zone: str
    stop_s: float
    end_s: float | None  # None: still there when the video ends


@dataclass(frozen=True)
class Case:
    name: str
    video: Path
    zones: list[dict[str, Any]]
    truths: list[Truth] = field(default_factory=list)
    dwell_s: tuple[float, ...] = (10.0,)
    vehicles: tuple[str, ...] = ("car", "bus", "truck", "motorcycle")
    sampled_too: bool = False
    view: str | None = None  # rendered scenes: the camera view's name
    tolerance_s: float = 2.0


COLOURS = {"white": (228, 228, 224), "black": (34, 32, 30)}
STOP = (15.0, 110.0)


def view_cases(work: Path) -> list[Case]:
    """Rendered overhead and oblique views (see the module docstring)."""
    from tests.scenes.ground_views import (
        VIEWS,
        Car,
        Motion,
        View,
        clip_frames,
        write_scene,
        zone_polygon,
    )

    frames = clip_frames()
    found: list[Case] = []
    spot, rect = (3.4, 1.0), (1.9, -2.0, 4.9, 4.0)
    view: View
    for view in VIEWS:
        polygon = zone_polygon(view, rect)
        for colour, bgr in COLOURS.items():
            car = Car(bgr)
            stop = write_scene(work / f"view_{view.name}_{colour}_stop.mp4", view, car,
                               Motion(spot, *STOP), 130.0, frames)  # fmt: skip
            drop = write_scene(work / f"view_{view.name}_{colour}_dropoff.mp4", view, car,
                               Motion(spot, 20.0, 35.0), 70.0, frames)  # fmt: skip
            for calibrated in (True, False):
                zone: dict[str, Any] = {"id": "lane", "kind": "no_parking", "polygon": polygon}
                if calibrated:
                    zone["size_m"] = [rect[2] - rect[0], rect[3] - rect[1]]
                tag = "calibrated" if calibrated else "uncalibrated"
                found.append(Case(f"view/{view.name}/{colour}/stop/{tag}", stop, [zone],
                                  truths=[Truth("lane", *STOP)], dwell_s=(60.0,),
                                  view=view.name, tolerance_s=6.0))  # fmt: skip
                found.append(Case(f"view/{view.name}/{colour}/dropoff/{tag}", drop, [zone],
                                  dwell_s=(60.0,), view=view.name, tolerance_s=6.0))  # fmt: skip
    return found


def frozen_topdown(src: Path, out: Path, cut_s: float = 16.0, hold_s: float = 40.0) -> Path:
    """The first ``cut_s`` seconds of ``src``, then its frame at ``cut_s`` held ``hold_s``."""
    if out.exists():
        return out
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        stream_rate = stream.average_rate or Fraction(25, 2)
        fps = float(stream_rate)
        frames: list[NDArray[np.uint8]] = []
        for frame in inp.decode(stream):
            frames.append(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))
            if frame.time is not None and frame.time >= cut_s:
                break
    held = frames[-1]
    rng = np.random.default_rng(3)
    # sensor noise, so that the held frames are not bit-identical copies
    hold = (
        np.clip(held + rng.normal(0, 2, held.shape), 0, 255).astype(np.uint8)
        for _ in range(round(hold_s * fps))
    )
    encode_h264(out, itertools.chain(frames, hold), fps=stream_rate, gop=50)
    return out


def cases(work: Path) -> list[Case]:
    found: list[Case] = []
    aisle = [
        {"id": "aisle", "kind": "no_parking", "polygon": [[0, 0.15], [1, 0.15], [1, 1], [0, 1]]}
    ]
    car_clip = DATA / "parking" / "intel_car-detection.mp4"
    if car_clip.exists():
        found.append(
            Case("intel_car_aisle", car_clip, aisle, dwell_s=(5.0, 10.0), sampled_too=True)
        )
        found.append(
            Case(
                "intel_frozen_topdown",
                frozen_topdown(car_clip, work / "intel_frozen_topdown.mp4"),
                aisle,
                # the held frame shows two cars in the aisle (grey, top left; red, lower right)
                truths=[Truth("aisle", 16.0, None), Truth("aisle", 16.0, None)],
                dwell_s=(10.0,),
                sampled_too=True,
            )
        )
    people = DATA / "generic" / "intel_one-by-one-person-detection.mp4"
    if people.exists():
        hall = [{"id": "hall", "kind": "no_parking", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}]
        found.append(Case("intel_people_hall", people, hall, dwell_s=(10.0,)))
    from pipeline.config import load_config
    from pipeline.ops.demo.footage import generate

    demo = work / "demo_street_1loop.mp4"
    if not demo.exists():
        generate(demo, fps=15)
    zones = [z.model_dump(mode="json") for z in load_config(REPO / "cameras.toml").cameras[0].zones]
    found.append(
        Case(
            "demo_street",
            demo,
            zones,
            truths=[Truth("fire_lane_east", 14.0, 84.0), Truth("pavement_west", 0.0, None)],
            dwell_s=(30.0,),
            vehicles=("car", "motorcycle", "bicycle"),
        )
    )
    return found


def models() -> list[Path]:
    found = [REPO / "models" / "yolox_nano.onnx"]
    v8 = SHARED / "models" / "coco" / "yolov8n_320_dq.onnx"
    if v8.exists():
        found.append(v8)
    return found


# decode modes: "keyframes" (the configuration's default), "sampled", and the A/B of still-scene
# decoding (pipeline.ingest.still): "keyframes_every" (every keyframe, --every-keyframe) and
# "keyframes_still" (a still scene's keyframes 6 s apart, --still). The default was still-scene
# decoding at f9ec951 and is again since 2026-12-07 (no sparser than a third of a rule's dwell,
# sparse through the dwell since ad6a276), so "keyframes" in results of those commits means it.
EVERY_KEYFRAME = "keyframes_every"
STILL = "keyframes_still"
DECODE_GATE = {
    EVERY_KEYFRAME: {"still_decode_interval_s": 0.0},
    STILL: {"still_decode_interval_s": STILL_DECODE_S},
}


def add_decode_ab(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--every-keyframe", action="store_true",
                        help="also decode every keyframe (no still skipping): A/B")  # fmt: skip
    parser.add_argument("--still", action="store_true",
                        help="also decode a still scene's keyframes 6 s apart: A/B")  # fmt: skip


def keyframe_decodes(args: argparse.Namespace) -> list[str]:
    """The keyframe decode modes asked for: the default, then the A/B variants."""
    return ["keyframes", *([EVERY_KEYFRAME] if args.every_keyframe else []),
            *([STILL] if args.still else [])]  # fmt: skip


def run_case(case: Case, model: Path, dwell: float, decode: str) -> dict[str, Any]:
    from pipeline.config import parse_config
    from pipeline.ops.replay import replay

    out = Path(tempfile.mkdtemp(prefix="gs-acc-"))
    try:
        cfg = parse_config(
            {
                "model": {"path": str(model), "intra_op_threads": 2},
                "cameras": [
                    {
                        "id": "cam",
                        "name": case.name,
                        "url": str(case.video),
                        "decode": "keyframes" if decode in DECODE_GATE else decode,
                        "sample_fps": 2.0,
                        "zones": case.zones,
                        "rules": [
                            {
                                "analyzer": "illegal_parking", "min_dwell_s": dwell,
                                "confirm_s": min(6.0, dwell / 2), "max_gap_s": 10.0,
                                "vehicles": list(case.vehicles),
                            }
                        ],
                    }
                ],
                "gate": DECODE_GATE.get(decode, {}),
            }
        )  # fmt: skip
        result = replay(case.video, cfg, "cam", out, start_time_s=START, progress=False)
        reports = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    events = [
        {
            "zone": r["detection"]["zone"]["zone_id"],
            "type": r["event_type"],
            "label": r["detection"]["objects"][0]["label"],
            "stop_s": r["video_offsets_s"]["started"],
            "alert_s": r["video_offsets_s"]["alerted"],
            "end_s": r["video_offsets_s"]["ended"],
            "end_reason": r["detection"]["end_reason"],
            "started_by": r["detection"].get("started_by"),
            "evidence": r["detection"].get("evidence"),
        }
        for r in reports
    ]
    return {
        "case": case.name,
        "model": model.stem,
        "decode": decode,
        "min_dwell_s": dwell,
        "video_s": round(result.duration_s, 2),
        "frames_analysed": result.frames,
        "events": events,
        **score(case, events, result.duration_s),
    }


def score(case: Case, events: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Match events to truths by zone; stop within ±2 s, end within ±2 s (or open at the end)."""
    unmatched = list(events)
    matched: list[dict[str, Any]] = []
    for truth in case.truths:
        cands = [e for e in unmatched if e["zone"] == truth.zone]
        if not cands:
            matched.append({"truth": truth.__dict__, "found": False})
            continue
        e = min(cands, key=lambda x: abs(x["stop_s"] - truth.stop_s))
        unmatched.remove(e)
        stop_err = round(e["stop_s"] - truth.stop_s, 3)
        tol = case.tolerance_s
        if truth.end_s is None:
            end_ok = e["end_reason"] == "end_of_stream"
            end_err = None
        else:
            end_err = round((e["end_s"] or duration_s) - truth.end_s, 3)
            end_ok = abs(end_err) <= tol
        matched.append({
            "truth": truth.__dict__, "found": True, "stop_error_s": stop_err,
            "end_error_s": end_err, "stop_ok": abs(stop_err) <= tol, "end_ok": end_ok,
        })  # fmt: skip
    return {
        "expected": len(case.truths),
        "true_positives": sum(1 for m in matched if m["found"]),
        "false_positives": len(unmatched),
        "matches": matched,
        "pass": all(m.get("stop_ok") and m.get("end_ok") for m in matched) and not unmatched,
    }


def by_view(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per view angle, model and zone calibration: P, R, events on drop-offs, start errors."""
    out: dict[str, Any] = {}
    for r in runs:
        if not r["case"].startswith("view/"):
            continue
        _, view, _colour, _kind, tag = r["case"].split("/")
        key = f"{view}/{r['model']}/{tag}" + (
            "" if r["decode"] == "keyframes" else f"/{r['decode']}"
        )
        empty: dict[str, Any] = {"tp": 0, "fp": 0, "fn": 0, "fp_on_dropoffs": 0,
                                 "stop_errors_s": [], "end_errors_s": [],
                                 "started_by": []}  # fmt: skip
        agg = out.setdefault(key, empty)
        ok = [m for m in r["matches"] if m["found"] and m["stop_ok"] and m["end_ok"]]
        agg["tp"] += len(ok)
        agg["fn"] += r["expected"] - len(ok)
        agg["fp"] += r["false_positives"] + sum(
            1 for m in r["matches"] if m["found"] and not (m["stop_ok"] and m["end_ok"])
        )
        if r["expected"] == 0:
            agg["fp_on_dropoffs"] += r["false_positives"]
        for m in r["matches"]:
            if m["found"]:
                agg["stop_errors_s"].append(m["stop_error_s"])
                agg["end_errors_s"].append(m["end_error_s"])
        agg["started_by"] += [e["started_by"] for e in r["events"]]
    for agg in out.values():
        agg["precision"] = round(agg["tp"] / max(1, agg["tp"] + agg["fp"]), 3)
        agg["recall"] = round(agg["tp"] / max(1, agg["tp"] + agg["fn"]), 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views-only", action="store_true", help="only the rendered views")
    add_decode_ab(parser)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found (the development clips live beside the checkout)")
        return 0
    work = CACHE / "accuracy"
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    todo = [] if args.views_only else cases(work)
    if (DATA / "parking" / "intel_car-detection.mp4").exists():
        todo += view_cases(work)
    for case in todo:
        for model in models():
            for dwell in case.dwell_s:
                decodes = keyframe_decodes(args)
                for decode in [*decodes, "sampled"] if case.sampled_too else decodes:
                    r = run_case(case, model, dwell, decode)
                    runs.append(r)
                    print(f"{r['case']:<22} {r['model']:<15} {decode:<9} dwell={dwell:<5} "
                          f"events={len(r['events'])} tp={r['true_positives']}/{r['expected']} "
                          f"fp={r['false_positives']} pass={r['pass']}", flush=True)  # fmt: skip
    summary = {
        "runs": len(runs),
        "passed": sum(r["pass"] for r in runs),
        "false_positives_on_negatives": sum(
            r["false_positives"] for r in runs if r["expected"] == 0
        ),
        "by_case": {
            name: {
                f"{r['model']}/{r['decode']}/dwell{int(r['min_dwell_s'])}": r["pass"]
                for r in runs
                if r["case"] == name
            }
            for name in dict.fromkeys(r["case"] for r in runs)
        },
        "by_view": by_view(runs),
    }
    return publish("accuracy_parking", __doc__, summary, runs=runs)


if __name__ == "__main__":
    sys.exit(main())
