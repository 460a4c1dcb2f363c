"""Replay: run a recorded file through exactly the pipeline a live camera gets.

Same decode mode, analyzers, evidence writer and store; only the source reads as fast as the
CPU allows and queues block instead of dropping, so every sampled frame is analysed. Frame time
starts at the file's ``creation_time`` tag when present (else at ``start_time_s`` or now); the
report lines in ``events.jsonl`` also carry offsets from the start of the video.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
from tqdm import tqdm

from pipeline.config import AppConfig
from pipeline.detect.inference import Detector
from pipeline.evidence.report import ModelIdentity
from pipeline.ops.compose import pipeline
from pipeline.runtime import Runtime
from pipeline.store.repository import EventQuery

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    events: int
    jsonl: Path
    duration_s: float
    wall_s: float
    frames: int


def probe(video: Path) -> tuple[float, float | None]:
    """(duration in seconds, creation time as epoch seconds if tagged)."""
    with av.open(str(video)) as c:
        duration = float(c.duration / av.time_base) if c.duration else 0.0
        tag = c.metadata.get("creation_time")
    created = None
    if tag:
        try:
            created = datetime.fromisoformat(tag.replace("Z", "+00:00")).timestamp()
        except ValueError:
            created = None
    return duration, created


def replay(
    video: Path,
    cfg: AppConfig,
    camera_id: str,
    out: Path,
    *,
    start_time_s: float | None = None,
    detector: Detector | None = None,
    model_identity: ModelIdentity | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.time,
    activity: Path | None = None,
) -> ReplayResult:
    """Run ``video`` through ``camera_id``'s pipeline, evidence and events into ``out``.

    ``activity``: a learned activity map (``.activity/<camera>.npz`` of a live evidence
    directory or of an earlier replay) to start from, as the camera itself would after
    watching its scene for minutes; the replay leaves its own map in ``out/.activity``.
    """
    camera = cfg.camera(camera_id).model_copy(
        update={"url": str(video.resolve()), "loop": False, "realtime": False, "enabled": True}
    )
    out.mkdir(parents=True, exist_ok=True)
    if activity is not None:
        (out / ".activity").mkdir(exist_ok=True)
        shutil.copyfile(activity, out / ".activity" / f"{camera_id}.npz")
    run_cfg = cfg.model_copy(
        update={
            "cameras": [camera],
            "evidence": cfg.evidence.model_copy(update={"root": out.resolve()}),
        }
    )
    duration, created = probe(video)
    start = start_time_s if start_time_s is not None else (created or clock())
    running = pipeline(
        run_cfg,
        replay=True,
        start_time_s=start,
        detector=detector,
        model_identity=model_identity,
        clock=clock,
    )
    runtime = running.runtime
    t0 = time.monotonic()
    running.start()
    bar = tqdm(
        total=round(duration, 1) or None,
        unit="s",
        desc=f"replay {camera_id}",
        disable=not progress,
        file=sys.stderr,
    )
    while not runtime.wait_finished(timeout=0.5):
        health = runtime.health(camera_id)
        if health and health.last_frame_time_s is not None:
            bar.n = round(min(duration, health.last_frame_time_s - start), 1)
            bar.refresh()
    bar.n = bar.total or bar.n
    bar.close()
    health = runtime.health(camera_id)
    jsonl = out / "events.jsonl"
    n = write_jsonl(runtime, jsonl, start)
    return ReplayResult(
        events=n,
        jsonl=jsonl,
        duration_s=duration,
        wall_s=time.monotonic() - t0,
        frames=health.frames_out if health else 0,
    )


def write_jsonl(runtime: Runtime, path: Path, video_start_s: float) -> int:
    """One final report per event, oldest first, with offsets from the video start."""
    rows, _ = runtime.store.query_events(EventQuery(limit=1_000_000))
    lines = []
    for row in sorted(rows, key=lambda r: (r.alerted_at, r.event_id)):
        report = dict(row.report)
        report["video_offsets_s"] = {
            "started": round(row.started_at - video_start_s, 3),
            "alerted": round(row.alerted_at - video_start_s, 3),
            "last_seen": round(row.updated_at - video_start_s, 3),
            "ended": None if row.ended_at is None else round(row.ended_at - video_start_s, 3),
        }
        lines.append(json.dumps(report, ensure_ascii=False))
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
    return len(lines)
