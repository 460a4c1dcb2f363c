"""占道经营 and 垃圾满溢 on live RTSP cameras: generated scenes, real YOLOX, real store.

The rules run with their time constants shrunk (seconds instead of minutes) so that a live
stream at real rate shows a whole episode (empty → occupied → cleared) in under a minute; the
looping file is stopped after the first complete episode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.config import AppConfig, Subscriber
from pipeline.evidence.schema import report_errors
from pipeline.ingest.media import encode_h264
from pipeline.ops.compose import Gridsight, pipeline
from pipeline.store.repository import EventQuery
from pipeline.types import DecodeMode
from tests.conftest import RtspServer, camera_dict, wait_for
from tests.integration.test_outbox import Receiver
from tests.media import to_annexb
from tests.outbox_child import SECRET

pytestmark = pytest.mark.rtsp

W, H, FPS = 320, 240, 10
APPEAR_S, LEAVE_S, LENGTH_S = 6.0, 30.0, 42.0
RNG = np.random.default_rng(3)
PAVING = np.clip(
    np.kron(RNG.integers(90, 150, (H // 8, W // 8, 1)), np.ones((8, 8, 3))), 0, 255
).astype(np.float32)
INGEST = {"open_timeout_s": 3, "read_timeout_s": 3, "analysis_width": 320}


def stream(tmp: Path, draw: Callable[[float, np.ndarray], None]) -> Path:
    rng = np.random.default_rng(5)

    def frames() -> Iterator[np.ndarray]:
        for i in range(int(LENGTH_S * FPS)):
            img = PAVING.copy()
            draw(i / FPS, img)
            yield np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)

    mp4 = encode_h264(tmp / "scene.mp4", frames(), fps=FPS, gop=FPS, crf=24)
    return to_annexb(mp4, tmp / "scene.h264")


def run_until_ended(
    cfg: AppConfig,
    timeout_s: float,
    then: Callable[[Gridsight], None] | None = None,
    env: dict[str, str] | None = None,
) -> Gridsight:
    rt = pipeline(cfg, env=env)
    rt.start()
    try:
        ended = wait_for(
            lambda: rt.store.query_events(EventQuery(state="ended"))[1] >= 1, timeout_s
        )
        health = rt.runtime.health("cam1")
        assert health is not None and health.decode_mode == DecodeMode.KEYFRAMES
        if ended and then is not None:
            then(rt)
    finally:
        rt.stop()
    assert ended, rt.store.query_events(EventQuery())
    return rt


def test_stall_on_a_walkway_is_one_vending_episode(
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
    tmp_path: Path,
) -> None:
    def draw(t: float, img: np.ndarray) -> None:
        if APPEAR_S <= t < LEAVE_S:
            img[150:225, 60:170] = (30, 80, 200)  # a tarp with crates: nothing COCO names
            img[160:215, 70:95] = (40, 140, 60)
        x = int(20 + 45 * t) % 280  # a pedestrian crossing again and again
        img[130:200, x : x + 14] = (20, 20, 20)

    server = rtsp_server({"/walk": f"file:{stream(tmp_path, draw)}@{FPS}"})
    rule: dict[str, Any] = {"analyzer": "vending", "min_dwell_s": 8, "recent_s": 3,
                            "empty_s": 30, "clear_s": 4, "update_interval_s": 4}  # fmt: skip
    zone = {"id": "walk", "kind": "walkway",
            "polygon": [[0.05, 0.55], [0.85, 0.55], [0.85, 0.98], [0.05, 0.98]]}  # fmt: skip
    cam = camera_dict(url=server.url("/walk"), zones=[zone], rules=[rule])
    receiver = Receiver()  # the grid platform, on loopback
    sub = {"id": "grid", "url": receiver.url, "secret_env": "GRID_SECRET"}
    cfg = make_config([cam], ingest=INGEST).model_copy(update={"subscribers": [Subscriber(**sub)]})

    def review_and_push(rt: Gridsight) -> None:
        # the live case worker delivers the accepted case, signed, to the platform
        ended_id = rt.store.query_events(EventQuery(state="ended"))[0][0].event_id
        case_id = rt.cases.case_of_event(ended_id)
        assert case_id is not None and rt.cases.get(case_id).state == "pending_review"
        rt.cases.act(case_id, "accept", "op1")
        assert wait_for(lambda: len(receiver.effects) == 1, 10)
        [payload] = receiver.effects.values()
        assert payload["case"]["case_id"] == case_id and payload["kind"] == "accept"

    try:
        rt = run_until_ended(cfg, 90, review_and_push, env={"GRID_SECRET": SECRET.decode()})
    finally:
        receiver.http.close()
    rows, total = rt.store.query_events(EventQuery())
    ended = [r for r in rows if r.state == "ended"]
    assert len(ended) == 1 and total <= 2  # a second loop may have begun a new episode
    report = ended[0].report
    assert report_errors(report) == []
    assert report["event_type"] == "road_occupation_vending"
    det = report["detection"]
    assert 0.15 < det["peak_occupancy"] < 0.6
    assert det["end_reason"] == "cleared"
    stay = (ended[0].ended_at or 0.0) - ended[0].started_at
    assert LEAVE_S - APPEAR_S - 6 <= stay <= LEAVE_S - APPEAR_S + 12


def test_garbage_above_the_rim_is_one_overflow_episode(
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
    tmp_path: Path,
) -> None:
    def draw(t: float, img: np.ndarray) -> None:
        img[120:228, 122:198] = (40, 110, 40)  # the green bin, rim at y = 120
        if APPEAR_S <= t < LEAVE_S:
            img[92:122, 125:195] = (200, 200, 210)  # white bags heaped above the rim
            img[200:226, 96:122] = (30, 30, 30)  # and a black one beside it

    server = rtsp_server({"/bin": f"file:{stream(tmp_path, draw)}@{FPS}"})
    zone = {"id": "bin1", "kind": "bin_area",
            "polygon": [[0.3, 0.2], [0.7, 0.2], [0.7, 0.95], [0.3, 0.95]],
            "rim": [[0.38, 0.5], [0.62, 0.5]]}  # fmt: skip
    rule = {"analyzer": "bins", "interval_s": 2, "min_observations": 3, "clear_observations": 2}
    cam = camera_dict(url=server.url("/bin"), zones=[zone], rules=[rule])
    rt = run_until_ended(make_config([cam], ingest=INGEST), 90)
    rows, _ = rt.store.query_events(EventQuery())
    ended = [r for r in rows if r.state == "ended"]
    assert len(ended) == 1
    report = ended[0].report
    assert report_errors(report) == []
    assert report["event_type"] == "bin_overflow"
    assert report["detection"]["above_rim_fraction"] > 0.15
    stay = (ended[0].ended_at or 0.0) - ended[0].started_at
    assert LEAVE_S - APPEAR_S - 8 <= stay <= LEAVE_S - APPEAR_S + 10
