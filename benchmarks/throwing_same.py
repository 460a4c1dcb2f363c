"""高空抛物: does a change to the analysis keep every decision? (a check, not a figure)

A change meant to make the analysis cheaper must leave what it decides alone; the 3-D
benchmark takes hours to say so. This replays, in-process and in a fixed order, footage that
makes the analysis decide a great deal, and records every decision:

- the throw scenes a 3-D benchmark run kept (``throwing_3d.py --keep DIR``: each scene's
  video, ``cameras.toml`` and learned activity map), from ``--kept DIR``;
- the development clips' background spans (``throwing/bharath_office1.mp4``: palm fronds and a
  tree; ``throwing/hamonitorsentry_video_2.mp4``: leaves), looped forward and backward for
  ``--seconds``, cold: hundreds of leaf tracks, their stitching and their fits;
- both development clips whole, with their real throws.

Recorded: every event notice (its whole content but the random event id), every fall test's
outcome (the track's last time and length, pass or fail, the reason, where the fall starts) and
every stitching's result. Two records compare equal when the analyses decided the same things
to the last reported digit.

    .venv/bin/python benchmarks/throwing_3d.py --seed 4711 --throws 25 --fa-minutes 0 \\
        --out scratch --keep /tmp/kept                      # ~6 min, once
    .venv/bin/python benchmarks/throwing_same.py --kept /tmp/kept --against d1a5dbc   # ~5 min

``--against REV`` replays with REV's tree (``git archive``, a fresh process) and with this one,
and names the first decision that differs; ``--out FILE`` only records this tree's. Nothing is
written to ``benchmarks/results``: the answer is "the same" or the first difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED

CLIPS_DIR = SHARED / "data" / "throwing"
Record = dict[str, dict[str, list[Any]]]


def video_lumas(path: Path) -> tuple[list[NDArray[np.uint8]], float]:
    """The luma planes a 高空抛物 camera's source hands the motion stage: the Y plane (not a
    grey conversion, which stretches the range), decoded without the deblocking filter."""
    from pipeline.ingest.source import luma_plane

    with av.open(str(path)) as box:
        stream = box.streams.video[0]
        stream.codec_context.options = {"skip_loop_filter": "all"}
        fps = float(stream.average_rate or 25)
        return [luma_plane(f).copy() for f in box.decode(stream)], fps


def record(kept: Path | None, seconds: float) -> Record:
    """Every decision of this tree's analysis over the footage (see the module's docstring)."""
    from benchmarks.throwing_cost import START_S, looped
    from pipeline.config import parse_config
    from pipeline.rules import throwing
    from pipeline.rules.camera import build_analyzers
    from pipeline.rules.motion import MotionExtractor
    from tests.scenes.facade_3d import CLIPS, camera_entry, read_frames

    decisions: list[Any] = []
    analyzer_cls = throwing.ThrowingAnalyzer
    evaluate, stitch = analyzer_cls._evaluate, analyzer_cls._stitch

    def evaluated(self: Any, tr: Any) -> Any:
        fit = evaluate(self, tr)
        last = round(tr.points[-1][0], 5)
        decisions.append(["fit", last, len(tr.points), fit.ok, fit.reason, fit.start])
        return fit

    def stitched(self: Any, tr: Any) -> None:
        stitch(self, tr)
        decisions.append(["stitch", round(tr.points[-1][0], 5), len(tr.points), tr.joined])

    def run(camera: dict[str, Any], lumas: list[NDArray[np.uint8]], fps: float,
            activity: Path | None) -> list[Any]:  # fmt: skip
        cfg = parse_config({"cameras": [camera]})
        cam = cfg.cameras[0]
        (analyzer,) = build_analyzers(cam, cfg.site, cfg.evidence)
        assert analyzer.motion is not None
        motion = MotionExtractor.serving(cam.id, [analyzer.motion])
        assert motion is not None
        if activity is not None:
            motion.load_activity(activity)
        decisions.clear()
        out: list[Any] = []
        for i, luma in enumerate(lumas):
            t = START_S + i / fps
            sample = motion.process(luma, seq=i, epoch=1, pts_s=i / fps, time_s=t)
            if sample is not None:
                out += [
                    repr(replace(n.event, event_id="")) for n in analyzer.observe_motion(sample)
                ]
        end = START_S + len(lumas) / fps
        out += [repr(replace(n.event, event_id="")) for n in analyzer.close(end, "end")]
        return [out, list(decisions)]

    setattr(analyzer_cls, "_evaluate", evaluated)  # noqa: B010 (replaced for the record only)
    setattr(analyzer_cls, "_stitch", stitched)  # noqa: B010
    rec: Record = {}
    try:
        for toml in sorted(kept.glob("*.toml")) if kept else []:
            camera = tomllib.loads(toml.read_text())["cameras"][0]
            lumas, fps = video_lumas(Path(camera["url"]))
            npz = toml.with_suffix(".npz")
            events, made = run(camera, lumas, fps, npz if npz.exists() else None)
            rec[toml.stem] = {"events": events, "decisions": made}
        for clip in CLIPS:
            frames, fps = read_frames(clip)
            h, w = frames[0].shape[:2]
            camera = camera_entry(clip, str(CLIPS_DIR / clip.file), w, h)
            lumas = [
                np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2YUV)[:, :, 0]) for f in frames
            ]
            events, made = run(camera, looped(lumas, round(seconds * fps)), fps, None)
            rec[f"{clip.name} background"] = {"events": events, "decisions": made}
            whole, fps = video_lumas(CLIPS_DIR / clip.file)
            events, made = run(camera, whole, fps, None)
            rec[f"{clip.name} whole"] = {"events": events, "decisions": made}
    finally:
        setattr(analyzer_cls, "_evaluate", evaluate)  # noqa: B010
        setattr(analyzer_cls, "_stitch", stitch)  # noqa: B010
    return rec


def recorded_by(rev: str, kept: Path | None, seconds: float, out: Path) -> None:
    """``rev``'s tree records, in a fresh process (its own code, nothing of this one's)."""
    from benchmarks.common import commit_tree  # (this copy also runs in trees without it)

    with tempfile.TemporaryDirectory() as tmp:
        tree = commit_tree(rev, Path(tmp))
        # this script, which REV may not have, run against REV's pipeline
        script = tree / "benchmarks" / "throwing_same.py"
        script.write_text(Path(__file__).read_text())
        args = [sys.executable, str(script), "--seconds", str(seconds), "--out", str(out)]
        done = subprocess.run(
            args + (["--kept", str(kept)] if kept else []), cwd=tree, check=False,
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"recording with {rev} failed:\n{done.stderr[-2000:]}")


def first_difference(a: Record, b: Record) -> str | None:
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            return f"{name}: recorded by one side only"
        for part in ("events", "decisions"):
            x, y = a[name][part], b[name][part]
            for i, (u, v) in enumerate(zip(x, y, strict=False)):
                if u != v:
                    return f"{name}, {part} #{i}:\n  {str(u)[:400]}\n  {str(v)[:400]}"
            if len(x) != len(y):
                return f"{name}, {part}: {len(x)} against {len(y)}"
    return None


def digest(rec: Record) -> str:
    return hashlib.sha256(json.dumps(rec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kept", type=Path, help="scenes kept by throwing_3d.py --keep")
    p.add_argument("--seconds", type=float, default=60.0, help="of each looped background")
    p.add_argument("--against", metavar="REV", help="compare with this commit's analysis")
    p.add_argument("--out", type=Path, help="write this tree's record here (JSON)")
    args = p.parse_args()
    if not CLIPS_DIR.is_dir():
        print(f"skipped: {CLIPS_DIR} not found (the development clips live in ../shared)")
        return 0
    here = record(args.kept, args.seconds)
    n_events = sum(len(r["events"]) for r in here.values())
    n_made = sum(len(r["decisions"]) for r in here.values())
    print(f"{len(here)} recordings, {n_events} event notices, {n_made} decisions: {digest(here)}")
    if args.out is not None:
        args.out.write_text(json.dumps(here, default=str))
    if args.against is None:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        theirs = Path(tmp) / "record.json"
        recorded_by(args.against, args.kept, args.seconds, theirs)
        other: Record = json.loads(theirs.read_text())
    mine: Record = json.loads(json.dumps(here, default=str))  # the same form as theirs
    diff = first_difference(other, mine)
    if diff is None:
        print(f"the same as {args.against}: every event, fall test and stitch")
        return 0
    print(f"differs from {args.against} ({args.against} first, this tree second): {diff}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
