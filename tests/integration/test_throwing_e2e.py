"""高空抛物 end to end on generated façade footage: replay and a live RTSP camera."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from pipeline.config import AppConfig, parse_config
from pipeline.evidence.schema import report_errors
from pipeline.ops.compose import pipeline
from pipeline.ops.replay import replay
from pipeline.store.repository import EventQuery
from tests.conftest import RtspServer, wait_for
from tests.media import read_bgr, stored_as_shown_differently, swayed_copy, to_annexb
from tests.scenes.facade_plane import Distractors, SceneSpec, Throw, render

SPEC = SceneSpec(
    width=640, height=360, duration_s=6.0, seed=4,
    throws=(Throw(t=1.5, floor=12, column=2, size_px=6),),
    distractors=Distractors(birds=1, lights=2, balcony_people=1),
)  # fmt: skip


def config(url: str, root: Path, **camera: Any) -> AppConfig:
    return parse_config(
        {
            "cameras": [SPEC.camera(url) | camera],
            "evidence": {"root": str(root), "pre_roll_s": 3, "post_roll_s": 2},
            "ingest": {"read_timeout_s": 3, "open_timeout_s": 3},
        }
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(SPEC, tmp_path_factory.mktemp("throw") / "throw.mp4")


def test_replay_finds_one_throw_with_origin_and_evidence(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = replay(clip, config(str(clip), out), "facade_cam", out, progress=False)
    reports = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    assert [report_errors(r) for r in reports] == [[] for _ in reports]
    assert [r["event_type"] for r in reports] == ["high_altitude_throwing"]
    r = reports[0]
    assert r["severity"] == "urgent" and r["detection"]["review_required"] is True
    est = r["detection"]["source_estimate"]
    assert est["building_id"] == "3" and est["unit"] == "1"
    assert abs(est["candidates"][0]["floor"] - 12) <= 1
    assert est["candidates"][0]["window_column"] == "03"
    assert 0.5 < r["detection"]["fit"]["g_ratio"] < 1.5
    offsets = r["video_offsets_s"]
    assert 1.4 <= offsets["started"] <= 1.8  # the release, back-extrapolated from the fit
    assert offsets["alerted"] - 1.5 < 2.0  # raised while the object was still falling
    names = {e["name"] for e in r["evidence"]}
    assert names == {"alert", "trajectory", "composite", "clip"}
    for e in r["evidence"]:
        assert hashlib.sha256((out / e["uri"]).read_bytes()).hexdigest() == e["sha256"]
    with av.open(str(out / next(e["uri"] for e in r["evidence"] if e["name"] == "clip"))) as c:
        assert next(c.decode(video=0)).key_frame


def the_one_throw(video: Path, out: Path, **camera: Any) -> dict[str, Any]:
    """The replay's one report: the scene's throw, from its floor and column."""
    result = replay(video, config(str(video), out, **camera), "facade_cam", out, progress=False)
    reports = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    assert [r["event_type"] for r in reports] == ["high_altitude_throwing"]
    top = reports[0]["detection"]["source_estimate"]["candidates"][0]
    assert abs(top["floor"] - 12) <= 1 and top["window_column"] == "03"
    report: dict[str, Any] = reports[0]
    return report


def test_a_phone_clip_stored_on_its_side_is_analysed_and_shown_upright(
    clip: Path, tmp_path: Path
) -> None:
    """A phone held upright stores its picture turned, with a display matrix (as H.265 here):
    the throw is found as in the upright clip, the composite and the browser's copy are
    upright, and the evidence clip keeps the matrix so that players turn it too. Before the
    matrix was applied the fall ran sideways and nothing was found."""
    turned = stored_as_shown_differently(clip, tmp_path / "turned.mp4", turns=1, codec="libx265")
    out = tmp_path / "out"
    report = the_one_throw(turned, out)
    files = {e["name"]: out / e["uri"] for e in report["evidence"]}
    assert read_bgr(files["composite"]).shape[1] == 640  # upright: 640 wide, not 360
    with av.open(str(files["clip"])) as c:
        first = next(c.decode(video=0))
        assert (first.width, first.height, first.rotation) == (360, 640, 90)
    with av.open(str(files["clip_preview"])) as c:
        first = next(c.decode(video=0))
        assert (first.width, first.height, first.rotation) == (640, 360, 0)


def test_a_recorder_channel_that_hides_its_pixel_shape_is_shown_as_the_integrator_says(
    clip: Path, tmp_path: Path
) -> None:
    """A recorder's D1-like channel stores the 16:9 scene squeezed into 440 × 360 samples and
    does not say so. With ``display_aspect = "16:9"`` the throw is found where the façade was
    clicked, the composite is in true proportions, and the evidence clip (the camera's own
    packets) now says how wide its samples are, so players show it that way too."""
    squeezed = stored_as_shown_differently(
        clip, tmp_path / "d1.mp4", sar=Fraction(16, 11), signal=False
    )
    out = tmp_path / "out"
    report = the_one_throw(squeezed, out, display_aspect="16:9")
    files = {e["name"]: out / e["uri"] for e in report["evidence"]}
    assert read_bgr(files["composite"]).shape[:2] == (360, 640)
    with av.open(str(files["clip"])) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.width, stream.sample_aspect_ratio) == (440, Fraction(16, 11))


def test_a_throw_seen_by_a_swaying_camera_is_found(clip: Path, tmp_path: Path) -> None:
    """A camera on a pole in wind (1 px of sway): unregistered, the façade's every edge
    moved and the throw was lost among them."""
    the_one_throw(swayed_copy(clip, tmp_path / "swayed.mp4", sway_px=1.0), tmp_path / "out")


def test_a_replay_keeps_its_activity_map_and_another_can_start_from_it(
    clip: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    replay(clip, config(str(clip), first), "facade_cam", first, progress=False)
    learned = first / ".activity" / "facade_cam.npz"
    with np.load(learned) as data:
        n_first = int(data["n"])
    assert n_first > 0
    second = tmp_path / "second"
    result = replay(clip, config(str(clip), second), "facade_cam", second, progress=False,
                    activity=learned)  # fmt: skip
    with np.load(second / ".activity" / "facade_cam.npz") as data:
        assert int(data["n"]) == 2 * n_first  # went on learning from the first one's map
    assert result.events == 1  # the throw itself never became "normal motion"


@pytest.mark.parametrize("sway_px", [0.0, 1.0])
def test_distractors_only_scene_is_silent(tmp_path: Path, sway_px: float) -> None:
    spec = SceneSpec(
        width=640, height=360, duration_s=8.0, seed=9,
        distractors=Distractors(birds=3, leaves=3, insects=1, lights=3, balcony_people=2,
                                shake_at=(3.0,), exposure_at=(5.0,)),
    )  # fmt: skip
    video = render(spec, tmp_path / "quiet.mp4")
    if sway_px:  # and on a pole in wind
        video = swayed_copy(video, tmp_path / "swayed.mp4", sway_px=sway_px)
    out = tmp_path / "out"
    cfg = parse_config({"cameras": [spec.camera(str(video))], "evidence": {"root": str(out)}})
    result = replay(video, cfg, "facade_cam", out, progress=False)
    assert result.events == 0, result.jsonl.read_text()


@pytest.mark.rtsp
def test_live_rtsp_camera_reports_exactly_one_throw_with_the_right_floor(
    rtsp_server: Callable[[dict[str, str]], RtspServer], tmp_path: Path
) -> None:
    spec = SceneSpec(
        width=640, height=360, duration_s=14.0, seed=5,
        throws=(Throw(t=2.0, floor=14, column=4, size_px=6),),
    )  # fmt: skip
    h264 = to_annexb(render(spec, tmp_path / "live.mp4"), tmp_path / "live.h264")
    server = rtsp_server({"/facade": f"file:{h264}@{spec.fps}"})
    cfg = parse_config(
        {
            "cameras": [spec.camera(server.url("/facade"))],
            "evidence": {"root": str(tmp_path / "ev"), "pre_roll_s": 2, "post_roll_s": 1},
        }
    )
    rt = pipeline(cfg).runtime
    rt.start()
    try:

        def ended() -> bool:
            return rt.store.query_events(EventQuery(state="ended"))[1] >= 1

        assert wait_for(ended, 20)
    finally:
        rt.stop()
    rows, total = rt.store.query_events(EventQuery())
    assert total == 1
    est = rows[0].report["detection"]["source_estimate"]
    assert abs(est["candidates"][0]["floor"] - 14) <= 1
    assert est["candidates"][0]["window_column"] == "05"
