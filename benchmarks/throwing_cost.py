"""高空抛物: what a camera's motion stage and analysis cost on real façade footage with foliage.

The throughput benchmark (``throughput.py --suite throwing``) measures cameras per core on a
generated façade whose distractors are few; a real façade has trees in front of it, and every
swaying leaf makes blobs, tracks, and now and then a candidate track that reaches the 3-D fit.
This benchmark runs the development clips' background spans (``throwing/bharath_office1.mp4``:
palm fronds over the roof and a tree at the left; ``throwing/hamonitorsentry_video_2.mp4``: a
tree at the lower right), looped forward and backward as the 3-D benchmark's false-alarm runs
do, through the motion stage and the analyzer with the clips' calibrations, and measures each
stage's CPU time on its own thread (``time.thread_time``), against decoding the clip itself:

- ``decode_ms``: PyAV decoding one frame of the clip as delivered (1280 × 720, 30 fps);
- ``motion_ms`` and ``analysis_ms``: per frame, from a cold start (activity map learning);
- ``vs_decode``: decode / (decode + motion + analysis), cameras per full-decode camera on
  this footage (the issue's target: ≥ 0.66).

    .venv/bin/python benchmarks/throwing_cost.py            # ~3 min on 2 cores
    .venv/bin/python benchmarks/throwing_cost.py --against e373a39 --rounds 3

Results go to ``benchmarks/results/throwing_cost.json``. Times depend on the machine's load:
run it on an idle machine. ``--against REV`` compares two analyses in one run: the clips are
measured by REV's tree (``git archive``, in a fresh process) and by this one, in turn, for a
few rounds, and the result keeps every round of both (the best of each side's rounds is the
figure least disturbed by the machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, SHARED, commit_tree, publish
from pipeline.config import parse_config
from pipeline.rules import trajectory
from pipeline.rules.camera import build_analyzers
from pipeline.rules.motion import MotionExtractor
from tests.scenes.facade_3d import CLIPS, Clip, camera_entry, read_frames

CLIPS_DIR = SHARED / "data" / "throwing"
START_S = 1.8e9  # a camera's clock, as a live stream has it


def decode_ms(path: Path) -> float:
    """Thread CPU per decoded frame of the clip as delivered (best of three passes)."""
    best = float("inf")
    for _ in range(3):
        with av.open(str(path)) as box:
            stream = box.streams.video[0]
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            n, t0 = 0, time.thread_time()
            for _frame in box.decode(stream):
                n += 1
            best = min(best, (time.thread_time() - t0) / max(n, 1))
    return 1000.0 * best


def looped(frames: list[Any], n: int) -> list[Any]:
    """``n`` frames of the span played forward, backward, forward… (no jump cuts)."""
    cycle = frames + frames[-2:0:-1]
    return [cycle[i % len(cycle)] for i in range(n)]


def measure(clip: Clip, seconds: float) -> dict[str, Any]:
    frames, fps = read_frames(clip)
    h, w = frames[0].shape[:2]
    lumas = [np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2YUV)[:, :, 0]) for f in frames]
    cfg = parse_config({"cameras": [camera_entry(clip, str(CLIPS_DIR / clip.file), w, h)]})
    cam = cfg.cameras[0]
    (analyzer,) = build_analyzers(cam, cfg.site, cfg.evidence)
    assert analyzer.motion is not None
    motion = MotionExtractor.serving(cam.id, [analyzer.motion])
    assert motion is not None
    fits = 0
    real_fit = trajectory.fit_ballistic

    def counted(*args: Any, **kw: Any) -> trajectory.Ballistic:
        nonlocal fits
        fits += 1
        return real_fit(*args, **kw)

    # the analyzer looks the fit up in its own module
    from pipeline.rules import throwing

    setattr(throwing, "fit_ballistic", counted)  # noqa: B010 (not a public name of it)
    motion_s = analysis_s = 0.0
    blobs = events = 0
    stream = looped(lumas, round(seconds * fps))
    try:
        for i, luma in enumerate(stream):
            t = START_S + i / fps
            t0 = time.thread_time()
            sample = motion.process(luma, seq=i, epoch=1, pts_s=i / fps, time_s=t)
            t1 = time.thread_time()
            motion_s += t1 - t0
            if sample is None:
                continue
            blobs += len(sample.blobs)
            events += len(analyzer.observe_motion(sample))
            analysis_s += time.thread_time() - t1
    finally:
        setattr(throwing, "fit_ballistic", real_fit)  # noqa: B010
    n = len(stream)
    dec = decode_ms(CLIPS_DIR / clip.file)
    mot, ana = 1000.0 * motion_s / n, 1000.0 * analysis_s / n
    return {
        "footage": f"throwing/{clip.file} {clip.background_s[0]}-{clip.background_s[1]} s, "
        f"looped forward and backward for {seconds:.0f} s ({n} frames, {w} x {h}, {fps:.0f} fps)",
        "decode_ms": round(dec, 3),
        "motion_ms": round(mot, 3),
        "analysis_ms": round(ana, 3),
        "blobs_per_frame": round(blobs / n, 1),
        "fits_3d_per_s": round(fits / (n / fps), 2),
        "notices": events,
        "core_per_camera": round((dec + mot + ana) * fps / 1000.0, 3),
        "vs_decode": round(dec / (dec + mot + ana), 3),
    }


def measured(root: Path, seconds: float) -> dict[str, dict[str, Any]]:
    """Every clip measured by the tree at ``root`` (this one or another commit's), in a fresh
    process: the code a commit measures is its own, and no process warms the other's caches."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from benchmarks.throwing_cost import CLIPS, measure; "
        "print(json.dumps({c.name: measure(c, float(sys.argv[2])) for c in CLIPS}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(root), str(seconds)],
        cwd=root, check=False, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:  # e.g. a commit from before throwing_cost.measure(clip, seconds)
        raise SystemExit(f"measuring the tree at {root} failed:\n{done.stderr[-2000:]}")
    rows: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def against(rev: str, seconds: float, rounds: int) -> dict[str, Any]:
    """This tree and ``rev``'s measured in turn, ``rounds`` times each."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", rev], check=True, capture_output=True, text=True
    ).stdout.strip()
    runs: dict[str, list[dict[str, dict[str, Any]]]] = {"against": [], "here": []}
    with tempfile.TemporaryDirectory() as tmp:
        tree = commit_tree(commit, Path(tmp))
        for _ in range(rounds):
            runs["against"].append(measured(tree, seconds))
            runs["here"].append(measured(REPO, seconds))
    best = {
        clip: {
            side: {
                key: min(r[clip][key] for r in runs[side]) for key in ("motion_ms", "analysis_ms")
            }
            for side in runs
        }
        for clip in runs["here"][0]
    }
    for row in best.values():
        row["analysis_here_vs_against"] = round(
            row["here"]["analysis_ms"] / row["against"]["analysis_ms"], 3
        )
    return {"commit": commit, "rounds": runs, "best": best}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="of looped footage per clip")
    p.add_argument("--out", default="throwing_cost")
    p.add_argument("--against", metavar="REV", help="also measure this commit, in turn")
    p.add_argument("--rounds", type=int, default=2, help="--against: rounds of each")
    args = p.parse_args()
    if not CLIPS_DIR.is_dir():
        print(f"skipped: {CLIPS_DIR} not found (the development clips live in ../shared)")
        return 0
    extra: dict[str, Any] = {}
    if args.against:
        extra["against"] = against(args.against, args.seconds, args.rounds)
        rows = extra["against"]["rounds"]["here"][0]
    else:
        rows = {clip.name: measure(clip, args.seconds) for clip in CLIPS}
    for name, row in rows.items():
        print(name, row)
    return publish(
        args.out, __doc__.split("\n\n")[1].replace("\n", " "), rows,
        target={"vs_decode": ">= 0.66"}, **extra,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
