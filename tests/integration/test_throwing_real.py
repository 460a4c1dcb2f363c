"""高空抛物 end to end on the real development clips (``../shared/data/throwing``), each with
the calibration an integrator would click: the real throws are found, once, at the annotated
place and time. Skipped where the development footage is absent (it is not in the repository:
the clips carry no licence)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import parse_config
from pipeline.evidence.schema import report_errors
from pipeline.ops.replay import replay
from tests.scenes.facade_3d import CLIPS, Clip, camera_entry

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ANNOTATIONS = DATA / "ANNOTATIONS.json"

pytestmark = pytest.mark.skipif(
    not ANNOTATIONS.exists(), reason=f"development footage not found at {DATA}"
)


def annotation(clip: Clip) -> dict:  # type: ignore[type-arg]
    doc = json.loads(ANNOTATIONS.read_text())
    (entry,) = [c for c in doc["clips"] if c["file"] == f"throwing/{clip.file}"]
    return entry  # type: ignore[no-any-return]


@pytest.mark.parametrize("clip", CLIPS, ids=[c.name for c in CLIPS])
def test_real_throw_found_once_where_and_when_annotated(clip: Clip, tmp_path: Path) -> None:
    truth = annotation(clip)
    assert truth["positive"]
    video = DATA / "throwing" / clip.file
    camera = camera_entry(clip, str(video), 1280, 720)
    cfg = parse_config({"cameras": [camera], "evidence": {"root": str(tmp_path)}})
    result = replay(video, cfg, "real", tmp_path / "out", start_time_s=0.0, progress=False)
    reports = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    assert len(reports) == 1, [r["video_offsets_s"] for r in reports]
    (report,) = reports
    assert report_errors(report) == []
    lo, hi = truth["event_span_s"]
    assert lo <= report["video_offsets_s"]["alerted"] <= hi + 0.5
    detection = report["detection"]
    assert detection["fit"]["model"].startswith("ballistic")
    first = detection["trajectory"][0]
    starts = [o.get("first_visible_xy") for o in truth["objects"]]
    assert any(abs(first["x_px"] - x) <= 40 and abs(first["y_px"] - y) <= 120 for x, y in starts), (
        first,
        starts,
    )
    if "floor" in clip.real_throw:  # the office: thrown from the roof above floor 3, centre
        best = detection["source_estimate"]["candidates"][0]
        assert (best["floor"], best["window_column"]) == (3, "C")
