"""占道经营 episodes on generated walkway scenes: precision, recall, start-time error.

Background: the bundled Apache-2.0 street photo (pipeline/ops/demo/assets), its paved foreground
used as the walkway zone. Into it come stalls made of things no COCO class names (tarps in
random colours, stacked crates, a sunshade), which appear, stay for 1-8 minutes and leave,
while pedestrians walk through (some stopping for up to half a minute) and the light drifts
(a cloud passes, dusk falls). A camera of 640×360 at 4 fps, GOP 2 s, is replayed through the
real pipeline (keyframe decoding, the vending analyzer with its default 180 s dwell).

An episode is a stall standing ≥ min_dwell_s; shorter stalls must not alert. An event matches
an episode when it starts while that stall stands. Written to benchmarks/results/vending.json.

    .venv/bin/python benchmarks/vending_synth.py [--quick] [--still]

``--still`` replays every scene a second time decoding a still scene's keyframes only every 6 s
(``pipeline.ingest.still``, opt-in): the A/B, summarised under ``still_decoding``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import CACHE, STILL_DECODE_S, percentile, publish
from pipeline.ingest.media import encode_h264
from pipeline.ops.demo.footage import ASSET
from tests.media import read_bgr

W, H, FPS = 640, 360, 4
WALKWAY = [[0.02, 0.70], [0.60, 0.70], [0.60, 0.98], [0.02, 0.98]]
MIN_DWELL = 180.0


@dataclass(frozen=True)
class Stall:
    t0: float
    t1: float
    x: int  # left edge, px
    kind: int  # 0 tarp with goods, 1 crates, 2 sunshade and table
    color: tuple[int, int, int]


@dataclass(frozen=True)
class WalkScene:
    seed: int
    duration_s: float
    stalls: tuple[Stall, ...]
    walkers_per_min: float = 6.0
    cloud_at: float | None = None
    dusk: bool = False
    events: list[Any] = field(default_factory=list)


def background() -> NDArray[np.uint8]:
    return np.asarray(cv2.resize(read_bgr(ASSET), (W, H), interpolation=cv2.INTER_AREA), np.uint8)


def draw_stall(img: NDArray[np.uint8], s: Stall) -> None:
    y2 = int(0.95 * H)
    if s.kind == 0:
        cv2.rectangle(img, (s.x, y2 - 45), (s.x + 110, y2), s.color, -1)
        for k in range(4):
            cv2.circle(img, (s.x + 15 + 25 * k, y2 - 30), 9, (30 + 50 * k, 160, 220 - 40 * k), -1)
    elif s.kind == 1:
        for k in range(3):
            cv2.rectangle(
                img,
                (s.x + 35 * k, y2 - 40 - 18 * (k % 2)),
                (s.x + 35 * k + 32, y2),
                (40, 90, 150),
                -1,
            )
            cv2.rectangle(
                img,
                (s.x + 35 * k, y2 - 40 - 18 * (k % 2)),
                (s.x + 35 * k + 32, y2),
                (20, 50, 90),
                2,
            )
    else:  # folding table with a cloth to the ground under a sunshade
        cv2.rectangle(img, (s.x + 10, y2 - 35), (s.x + 100, y2), (200, 200, 200), -1)
        cv2.rectangle(img, (s.x + 14, y2 - 28), (s.x + 96, y2), s.color, -1)
        cv2.line(img, (s.x + 55, y2 - 95), (s.x + 55, y2), (60, 60, 60), 3)
        cv2.ellipse(img, (s.x + 55, y2 - 95), (60, 25), 0, 180, 360, s.color, -1)


def walkers(sc: WalkScene, rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """(start time, speed px/s, lane y, pause s) of every pedestrian."""
    n = int(sc.duration_s / 60 * sc.walkers_per_min)
    return [(float(rng.uniform(0, sc.duration_s)), float(rng.uniform(25, 60)) * rng.choice([-1, 1]),
             float(rng.uniform(0.78, 0.95) * H), float(rng.choice([0, 0, 0, rng.uniform(5, 30)])))
            for _ in range(n)]  # fmt: skip


def render(sc: WalkScene, path: Path) -> Path:
    rng = np.random.default_rng(sc.seed)
    base = background()
    people = walkers(sc, rng)
    noise = [rng.normal(0, 2.5, (H, W, 3)).astype(np.int16) for _ in range(6)]

    def frames() -> Iterator[NDArray[np.uint8]]:
        for i in range(int(sc.duration_s * FPS)):
            t = i / FPS
            img = base.copy()
            for s in sc.stalls:
                if s.t0 <= t < s.t1:
                    draw_stall(img, s)
            for t0, v, y, pause in people:
                dt = t - t0
                if dt < 0:
                    continue
                dt = dt if dt < 8 else (8 if dt < 8 + pause else dt - pause)  # some stop a while
                x = (0 if v > 0 else W) + v * dt
                if -20 < x < W + 20:
                    cv2.ellipse(img, (int(x), int(y) - 40), (7, 9), 0, 0, 360, (40, 50, 60), -1)
                    cv2.rectangle(
                        img, (int(x) - 8, int(y) - 32), (int(x) + 8, int(y)), (70, 60, 90), -1
                    )
            gain = 1.0
            if sc.cloud_at is not None and sc.cloud_at <= t < sc.cloud_at + 90:
                gain *= 1 - 0.3 * math.sin(math.pi * (t - sc.cloud_at) / 90)
            if sc.dusk:
                gain *= 1 - 0.5 * t / sc.duration_s
            out = cv2.convertScaleAbs(img, alpha=gain) if gain != 1.0 else img
            yield np.clip(out + noise[i % len(noise)], 0, 255).astype(np.uint8)

    return encode_h264(path, frames(), fps=FPS, gop=2 * FPS, crf=26)


def scenes(quick: bool) -> list[WalkScene]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(4 if quick else 14):
        stalls: list[Stall] = []
        t = float(rng.uniform(30, 120))
        duration = 720.0
        while t < duration - 60 and len(stalls) < 2:
            stay = float(rng.choice([rng.uniform(60, 150), rng.uniform(240, 480)]))
            x = int(rng.uniform(20, 300))
            color = tuple(int(c) for c in rng.integers(40, 230, 3))
            stalls.append(Stall(t, min(duration, t + stay), x, int(rng.integers(0, 3)), color))  # type: ignore[arg-type]
            t += stay + float(rng.uniform(120, 240))
        if i % 5 == 4:
            stalls = []  # pedestrians and light only
        out.append(WalkScene(seed=300 + i, duration_s=duration, stalls=tuple(stalls),
                             walkers_per_min=float(rng.uniform(3, 12)),
                             cloud_at=float(rng.uniform(100, 500)) if i % 2 else None,
                             dusk=i % 3 == 2))  # fmt: skip
    return out


def run_scene(sc: WalkScene, video: Path, out: Path, still: bool) -> dict[str, Any]:
    """Replay one scene through the pipeline; match its events to the stalls."""
    from pipeline.config import parse_config
    from pipeline.ops.replay import replay

    cfg = parse_config({
        "cameras": [{"id": "walk", "name": "walkway", "url": str(video),
                     "zones": [{"id": "walkway", "kind": "walkway", "polygon": WALKWAY}],
                     "rules": [{"analyzer": "vending", "min_dwell_s": MIN_DWELL}]}],
        "evidence": {"root": str(out)},
        "gate": {"still_decode_interval_s": STILL_DECODE_S} if still else {},
    })  # fmt: skip
    result = replay(video, cfg, "walk", out, start_time_s=0.0, progress=False)
    reports = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    shutil.rmtree(out, ignore_errors=True)
    episodes = [s for s in sc.stalls if s.t1 - s.t0 >= MIN_DWELL]
    matched = set()
    fps = 0
    errors = []
    for r in reports:
        a = r["video_offsets_s"]["alerted"]
        hit = next(
            (k for k, s in enumerate(episodes) if s.t0 <= a <= s.t1 + 60 and k not in matched),
            None,
        )
        if hit is None:
            fps += 1
        else:
            matched.add(hit)
            errors.append(r["video_offsets_s"]["started"] - episodes[hit].t0)
    return {
        "seed": sc.seed,
        "decode": "keyframes_still" if still else "keyframes",
        "frames_analysed": result.frames,
        "episodes": len(episodes),
        "short_stalls": len(sc.stalls) - len(episodes),
        "events": len(reports),
        "true_positives": len(matched),
        "false_positives": fps,
        "start_errors_s": [round(e, 1) for e in errors],
        "alerted_s": [r["video_offsets_s"]["alerted"] for r in reports],
        "cloud": sc.cloud_at is not None,
        "dusk": sc.dusk,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp = sum(r["true_positives"] for r in rows)
    ep = sum(r["episodes"] for r in rows)
    ev = sum(r["events"] for r in rows)
    errs = [e for r in rows for e in r["start_errors_s"]]
    return {
        "scenes": len(rows), "video_minutes": round(len(rows) * 12, 1), "episodes": ep,
        "short_stalls": sum(r["short_stalls"] for r in rows), "events": ev,
        "precision": round(tp / ev, 3) if ev else None, "recall": round(tp / ep, 3) if ep else None,
        "start_error_s_p50": percentile([abs(e) for e in errs], 0.5),
        "start_error_s_p95": percentile([abs(e) for e in errs], 0.95),
        "frames_analysed": sum(r["frames_analysed"] for r in rows),
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--still", action="store_true",
                   help="also decode a still scene's keyframes 6 s apart: A/B")  # fmt: skip
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gs-vend-", dir=CACHE if CACHE.exists() else None))
    rows: list[dict[str, Any]] = []
    try:
        for sc in scenes(args.quick):
            video = render(sc, work / f"walk-{sc.seed}.mp4")
            for still in (False, True) if args.still else (False,):
                rows.append(run_scene(sc, video, work / f"out-{sc.seed}", still))
                print(rows[-1], flush=True)
            video.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize([r for r in rows if r["decode"] == "keyframes"])
    if args.still:
        summary["still_decoding"] = summarize([r for r in rows if r["decode"] != "keyframes"])
    return publish("vending", __doc__, summary, scenes=rows)


if __name__ == "__main__":
    sys.exit(main())
