"""End to end on generated media: file → same pipeline as live → events, clips, reports, index."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import av
import pytest

from pipeline.config import AppConfig, parse_config
from pipeline.errors import PipelineError
from pipeline.evidence.report import ModelIdentity
from pipeline.evidence.schema import report_errors
from pipeline.ops.replay import ReplayResult, replay
from pipeline.store.repository import SCHEMA_VERSION, EventQuery, EventStore
from pipeline.types import Detections, Frame
from tests.conftest import REPO, camera_dict
from tests.media import Actor, Scene, ScriptedDetector, write_h264, write_h265

START = 1_763_863_200.0  # 2025-11-23T10:00:00+08:00
# A car parks in the fire lane from 5 s to 45 s; another drives through without stopping.
SCENE = Scene(
    duration_s=60,
    fps=10,
    gop=20,
    actors=(
        Actor(box=(100, 130, 180, 180), t0=5, t1=45),
        Actor(box=(-80, 140, 0, 190), t0=10, t1=40, velocity=(12.0, 0.0), color=(200, 60, 60)),
    ),
)


def config(root: Path) -> AppConfig:
    return parse_config(
        {
            "cameras": [camera_dict(url="/dev/null")],
            "evidence": {"root": str(root), "pre_roll_s": 5, "post_roll_s": 3},
            "site": {"admin_division_code": "330106"},
        }
    )


@pytest.fixture(scope="module")
def replayed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ReplayResult, Path, ScriptedDetector]:
    tmp = tmp_path_factory.mktemp("replay")
    video = write_h264(tmp / "scene.mp4", SCENE)
    detector = ScriptedDetector(SCENE, jitter_px=2.0)
    out = tmp / "out"
    result = replay(
        video, config(out), "cam1", out, start_time_s=START, detector=detector,
        model_identity=ModelIdentity("scripted", "0" * 64), progress=False,
    )  # fmt: skip
    return result, out, detector


def test_one_event_with_exact_frame_times(
    replayed: tuple[ReplayResult, Path, ScriptedDetector],
) -> None:
    result, _, _ = replayed
    assert result.events == 1
    (line,) = result.jsonl.read_text().splitlines()
    report = json.loads(line)
    assert report_errors(report) == []
    assert report["event_type"] == "fire_lane_occupation"
    # keyframes every 2 s: first seen at 6 s, alert when dwell ≥ 20 s (26 s), last seen 44 s
    assert report["video_offsets_s"] == {
        "started": 6.0, "alerted": 26.0, "last_seen": 44.0, "ended": 44.0,
    }  # fmt: skip
    det = report["detection"]
    assert det["end_reason"] == "left" and det["dwell_seconds"] == 38.0
    assert report["lifecycle"]["detection_state"] == "ended"
    assert report["created_at"] == "2025-11-23T10:00:26.000+08:00"
    codes = {c["system"]: c for c in report["classification"]["codes"]}
    assert codes["GB/T 47678.5-2026"]["code"] == "09012"
    assert codes["GB/T 47678.5-2026"]["matter_code"] == "33010609012"


def test_keyframe_only_decoding(replayed: tuple[ReplayResult, Path, ScriptedDetector]) -> None:
    result, _, detector = replayed
    assert result.frames == 30  # 60 s at one keyframe per 2 s: only I-frames were decoded
    assert detector.calls >= 1


def test_clip_starts_on_keyframe_covers_rolls_and_matches_hash(
    replayed: tuple[ReplayResult, Path, ScriptedDetector],
) -> None:
    result, out, _ = replayed
    report = json.loads(result.jsonl.read_text())
    assert report_errors(report) == []
    clip = next(e for e in report["evidence"] if e["name"] == "clip")
    path = out / clip["uri"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == clip["sha256"]
    assert clip["size_bytes"] == path.stat().st_size
    assert clip["pre_roll_s"] >= 5.0 and clip["post_roll_s"] >= 3.0 and not clip["truncated"]
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    assert frames[0].key_frame
    duration = float(frames[-1].time - frames[0].time)
    assert duration >= 8.0 - 0.11
    assert len(frames) == round(duration * SCENE.fps) + 1  # every frame, no re-encode gaps
    for e in report["evidence"]:
        assert hashlib.sha256((out / e["uri"]).read_bytes()).hexdigest() == e["sha256"]
    assert {e["name"] for e in report["evidence"]} == {"alert", "first", "end", "clip"}


def test_index_points_at_the_same_files(
    replayed: tuple[ReplayResult, Path, ScriptedDetector],
) -> None:
    _, out, _ = replayed
    store = EventStore(out / "gridsight.db")
    assert store.schema_version == SCHEMA_VERSION
    rows, total = store.query_events(EventQuery())
    assert total == 1 and rows[0].state == "ended"
    on_disk = json.loads(
        (out / rows[0].report["evidence"][0]["uri"]).parent.joinpath("report.json").read_text()
    )
    assert on_disk["report_id"] == rows[0].event_id
    names = {n for n, _, _ in store.evidence_for(rows[0].event_id)}
    assert names == {"alert", "first", "end", "clip"}
    assert not list(out.rglob("*.tmp"))  # nothing half-written left behind


def test_replay_cli_with_real_model_on_empty_scene(tmp_path: Path) -> None:
    video = write_h264(tmp_path / "empty.mp4", Scene(duration_s=6, fps=10, gop=10))
    cfg = tmp_path / "cams.toml"
    cfg.write_text(
        f"""
[model]
path = "{REPO / "models" / "yolox_nano.onnx"}"
[[cameras]]
id = "cam1"
name = "x"
url = "/dev/null"
  [[cameras.zones]]
  id = "z"
  kind = "no_parking"
  polygon = [[0, 0], [1, 0], [1, 1], [0, 1]]
  [[cameras.rules]]
  analyzer = "illegal_parking"
"""
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.ops.cli", "replay", str(video), "--config", str(cfg),
         "--camera", "cam1", "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # 6 keyframes: the first three decoded (a scene is still once two in a row show no
    # change), the rest skipped as a still scene's are (the next is due 6 s after the third)
    assert "0 event(s)" in proc.stdout and "3 frames analysed" in proc.stdout
    assert (tmp_path / "out" / "events.jsonl").read_text() == ""


def test_replay_cli_unknown_camera_fails_clearly(tmp_path: Path) -> None:
    video = write_h264(tmp_path / "v.mp4", Scene(duration_s=1))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.ops.cli", "replay", str(video), "--config",
         str(REPO / "cameras.toml"), "--camera", "nope", "--out", str(tmp_path / "o"), "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "camera 'nope'" in proc.stderr and "demo_street" in proc.stderr


def test_an_h265_camera_gets_its_clip_as_recorded_and_an_h264_copy_to_view(
    tmp_path: Path,
) -> None:
    """Most cameras sold in China now send H.265, which browsers do not play: the clip is kept
    as recorded (the evidence), and an H.264 copy derived from it is what the viewer plays."""
    video = write_h265(tmp_path / "scene-h265.mp4", SCENE)
    out_dir = tmp_path / "out"
    result = replay(
        video, config(out_dir), "cam1", out_dir, start_time_s=START,
        detector=ScriptedDetector(SCENE, jitter_px=2.0),
        model_identity=ModelIdentity("scripted", "0" * 64), progress=False,
    )  # fmt: skip
    report = json.loads(result.jsonl.read_text())
    assert report_errors(report) == []
    evidence = {e["name"]: e for e in report["evidence"]}
    assert set(evidence) == {"alert", "first", "end", "clip", "clip_preview"}
    clip, preview = evidence["clip"], evidence["clip_preview"]
    assert clip["role"] == "original" and preview["role"] == "derived"
    assert preview["derived_from"] == clip["evidence_id"]
    for e in (clip, preview):
        assert hashlib.sha256((out_dir / e["uri"]).read_bytes()).hexdigest() == e["sha256"]
    counts = {}
    for name, codec in (("clip", "hevc"), ("clip_preview", "h264")):
        with av.open(str(out_dir / evidence[name]["uri"])) as c:
            assert c.streams.video[0].codec_context.name == codec
            frames = list(c.decode(video=0))
        counts[name] = (len(frames), frames[0].time, frames[-1].time)
    assert counts["clip_preview"] == counts["clip"]  # every picture, at its own time
    store = EventStore(out_dir / "gridsight.db")
    rows, _ = store.query_events(EventQuery())
    assert {n for n, _, _ in store.evidence_for(rows[0].event_id)} == set(evidence)


class _LostModel(ScriptedDetector):
    """A model runtime that fails for good from stream time ``at_s`` (a lost GPU, a broken
    session): not an analyzer's error, which the camera pipeline would contain."""

    def __init__(self, scene: Scene, at_s: float) -> None:
        super().__init__(scene)
        self.at_s = at_s

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        if any(f.pts_s >= self.at_s for f in frames):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().detect(frames)


def test_a_dead_inference_thread_stops_the_replay_with_its_reason_and_keeps_what_was_stored(
    tmp_path: Path,
) -> None:
    """Before, the sources blocked on queues that nobody emptied and the replay never ended."""
    video = write_h264(tmp_path / "scene.mp4", SCENE)
    out = tmp_path / "out"
    # keyframes every 2 s; the car's alert comes at 26 s, the model fails at 32 s
    with pytest.raises(PipelineError, match=r"inference-\d: RuntimeError: CUDA error"):
        replay(
            video, config(out), "cam1", out, start_time_s=START, detector=_LostModel(SCENE, 32.0),
            model_identity=ModelIdentity("scripted", "0" * 64), progress=False,
        )  # fmt: skip
    rows, _ = EventStore(out / "gridsight.db").query_events(EventQuery())
    (row,) = rows
    assert row.event_type == "fire_lane_occupation"
    assert row.alerted_at == START + 26.0
    assert row.ended_at is not None and row.report["detection"]["end_reason"] == "fault"
