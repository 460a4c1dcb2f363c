"""高空抛物 false alarms on long distractor-only footage (the per-camera-day figure).

Renders the distractor scenes of ``throwing_synth.negatives`` (20 s each, denser than any real
façade: 3 birds, 3 leaves, 4 lights, 3 people on balconies, an insect, a camera shake and an
exposure jump in every scene; rain, snow and dusk in turn) and replays each through the same
pipeline as a live camera. The result is written after every scene, so a run stopped early
still reports the hours it covered. With zero events in H hours the one-sided 95 % upper bound
of the rate is 3.0 / H per camera-hour (Poisson).

    .venv/bin/python benchmarks/throwing_fa.py --minutes 120 --skip-minutes 30
    .venv/bin/python benchmarks/throwing_fa.py --minutes 300 --resume   # add to the last run
    .venv/bin/python benchmarks/throwing_fa.py --minutes 900 --skip-minutes 600 \
        --out throwing_fa_seeds6800   # another range beside it

A resumed run counts the alarms of earlier commits as found, and replays their scenes with the
new commit first (``earlier_events_replayed_now``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import CACHE, POISSON_95, RESULTS, commit, write_result
from benchmarks.throwing_synth import _replay, negatives
from tests.scenes.facade_plane import render

# the length of every scene of ``negatives()``; result files store scene counts, and the ledger
# turns them back into hours with this
SCENE_S = 20.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=120.0, help="distractor footage in total")
    p.add_argument(
        "--skip-minutes", type=float, default=0.0,
        help="leave out the first scenes (already covered by throwing_synth.py's run)",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true",
        help="continue the scenes of the last results/throwing_fa.json, adding to its counts",
    )  # fmt: skip
    p.add_argument(
        "--out", default="throwing_fa",
        help="result name (results/NAME.json), so that seed ranges can run side by side",
    )  # fmt: skip
    p.add_argument(
        "--bitrate-kbps", type=int, default=None,
        help="encode as a camera does, at this constant bitrate (default: constant quality)",
    )  # fmt: skip
    args = p.parse_args()
    scenes = negatives(args.minutes)
    if any(s.duration_s != SCENE_S for s in scenes):
        raise SystemExit(f"throwing_fa: negatives() scenes are no longer {SCENE_S} s long")
    skip = round(args.skip_minutes * 60 / SCENE_S)
    seconds = 0.0
    events: list[dict[str, Any]] = []
    wall0 = 0.0
    commits: list[str] = []
    recheck: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    if args.resume:
        last = json.loads((RESULTS / f"{args.out}.json").read_text(encoding="utf-8"))
        skip = (last["first_seed"] - scenes[0].seed) + last["scenes_done"]
        seconds, events = last["scenes_done"] * SCENE_S, list(last["events"])
        wall0, commits = last["wall_s"], [*last.get("earlier_commits", []), last["commit"]]
        skip_first, runs = last["first_seed"], list(last.get("runs", []))
    else:
        skip_first = scenes[skip].seed
    work = Path(tempfile.mkdtemp(prefix="gs-fa-", dir=CACHE if CACHE.exists() else None))
    t0 = time.monotonic() - wall0
    # which commit ran which scenes, for throwing_fa_ledger.py (earlier_commits alone cannot
    # tell where one run stopped and the next began)
    first = scenes[skip].seed if skip < len(scenes) else None
    run: dict[str, Any] = {"commit": commit(), "first_seed": first, "scenes": 0}
    runs.append(run)
    try:
        # The alarms of earlier commits are counted as they were found; what this commit
        # makes of those same scenes is recorded beside them.
        by_seed = {s.seed: s for s in negatives(max(args.minutes, (skip + 1) * SCENE_S / 60))}
        for seed in sorted({int(e["seed"]) for e in events}):
            video = render(by_seed[seed], work / f"recheck-{seed}.mp4", args.bitrate_kbps)
            reports, _ = _replay(video, by_seed[seed].camera(str(video)), work)
            video.unlink()
            recheck.append({"seed": seed, "events_now": len(reports)})
            print(f"recheck seed={seed} events_now={len(reports)}", flush=True)
        for spec in scenes[skip:]:
            video = render(spec, work / f"neg-{spec.seed}.mp4", args.bitrate_kbps)
            reports, _ = _replay(video, spec.camera(str(video)), work)
            video.unlink()
            seconds += spec.duration_s
            run["scenes"] += 1
            events += [
                {"seed": spec.seed, "alert_s": r["video_offsets_s"]["alerted"],
                 "g_ratio": r["detection"]["fit"]["g_ratio"]}
                for r in reports
            ]  # fmt: skip
            hours = seconds / 3600.0
            bound = POISSON_95[len(events)] / hours if len(events) < len(POISSON_95) else None
            write_result(args.out, {
                "method": __doc__,
                "scenes_done": round(seconds / SCENE_S), "first_seed": skip_first,
                "encoding": f"{args.bitrate_kbps} kbit/s" if args.bitrate_kbps else "crf 23",
                "generated_hours": round(hours, 3), "earlier_commits": commits,
                "false_alarms": len(events), "events": events,
                "earlier_events_replayed_now": recheck, "runs": runs,
                "rate_per_camera_hour": round(len(events) / hours, 3),
                "rate_95_upper_per_camera_hour": None if bound is None else round(bound, 3),
                "rate_95_upper_per_camera_day": None if bound is None else round(bound * 24, 2),
                "wall_s": round(time.monotonic() - t0, 1),
            })  # fmt: skip
            print(f"seed={spec.seed} events={len(reports)} total={len(events)} "
                  f"hours={hours:.2f} wall={time.monotonic() - t0:.0f}s", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
