"""Camera integrity end to end: a generated street view whose camera is turned 40 s in, replayed
through the live pipeline (keyframe decoding, analysis thread, writer, store): one
camera_tamper event with its snapshot and a schema-valid report, and the rules paused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.config import parse_config
from pipeline.evidence.report import ModelIdentity
from pipeline.evidence.schema import report_errors
from pipeline.ops.replay import replay
from tests.conftest import camera_dict
from tests.media import Scene, ScriptedDetector, write_h264
from tests.unit.test_integrity import scene, shifted

START = 1_763_863_200.0
WIDE = scene(5)


def render(t: float) -> NDArray[np.uint8]:
    img = WIDE if t < 40 else shifted(WIDE, 90)
    small = img[::2, ::2]  # 640 × 360
    rng = np.random.default_rng(int(t * 10))
    return np.asarray(np.clip(small + rng.normal(0, 2, small.shape), 0, 255), np.uint8)


def test_a_turned_camera_becomes_one_tamper_event(tmp_path: Path) -> None:
    clip = Scene(width=640, height=360, fps=5, duration_s=90, gop=10)
    video = write_h264(tmp_path / "turned.mp4", clip, render=render)
    out = tmp_path / "out"
    cfg = parse_config({
        "cameras": [camera_dict(url="/dev/null")],
        "evidence": {"root": str(out), "pre_roll_s": 2, "post_roll_s": 2},
        "integrity": {"every_s": 2, "hold_s": 10},
    })  # fmt: skip
    result = replay(
        video, cfg, "cam1", out, start_time_s=START, detector=ScriptedDetector(clip),
        model_identity=ModelIdentity("scripted", "0" * 64), progress=False,
    )  # fmt: skip
    reports = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    assert [r["event_type"] for r in reports] == ["camera_tamper"]
    (report,) = reports
    assert report_errors(report) == []
    det = report["detection"]
    # turned by 90 of 1280 px: the view slid by 7 % of its width
    assert det["view_problem"] == "moved" and abs(det["shift"] - 90 / 1280) < 0.01
    # turned at 40 s; the check every 2 s sees it by 42 s, and the 10 s hold ends by 52 s
    assert 40 <= report["video_offsets_s"]["alerted"] - 10 <= 42
    assert det["end_reason"] == "end_of_stream"
    names = {e["name"] for e in report["evidence"]}
    assert {"alert", "clip"} <= names
