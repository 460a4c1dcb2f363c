"""A real GStreamer RTSP server on 127.0.0.1, over TCP and UDP: streaming, failure, reconnect."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from pipeline.config import AppConfig
from pipeline.evidence.report import ModelIdentity
from pipeline.ingest.health import HealthTracker
from pipeline.ingest.packet_ring import PacketRing
from pipeline.ingest.source import SourceSettings, StreamSource
from pipeline.ops.compose import pipeline
from pipeline.runtime import Runtime
from pipeline.store.repository import EventQuery
from pipeline.types import DecodeMode, Frame, HealthState
from tests.conftest import RtspServer, camera_dict, wait_for
from tests.media import Actor, ColorBoxDetector, Scene, to_annexb, write_h264

pytestmark = pytest.mark.rtsp

FAST_INGEST = {
    "open_timeout_s": 3,
    "read_timeout_s": 2,
    "backoff_initial_s": 0.2,
    "backoff_max_s": 1.0,
    "stall_after_s": 3,
    "offline_event_after_s": 1,
    "analysis_width": 320,
}


def runtime_for(
    make_config: Callable[..., AppConfig], url: str, transport: str, **rule: Any
) -> tuple[Runtime, ColorBoxDetector]:
    rules = [
        {"analyzer": "illegal_parking", "min_dwell_s": 3, "confirm_s": 1, "max_gap_s": 4, **rule}
    ]
    cfg = make_config([camera_dict(url=url, transport=transport, rules=rules)], ingest=FAST_INGEST)
    detector = ColorBoxDetector()
    rt = pipeline(cfg, detector=detector,
                  model_identity=ModelIdentity("colorbox", "0" * 64)).runtime  # fmt: skip
    return rt, detector


Live = tuple[RtspServer, Runtime, ColorBoxDetector]


@pytest.fixture(params=["tcp", "udp"])
def live(
    request: pytest.FixtureRequest,
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
) -> Iterator[Live]:
    """A generated live H.264 camera (GOP 1 s) over the given transport, watched by a runtime."""
    server = rtsp_server({"/cam": "test:320x240@10:10"})
    rt, detector = runtime_for(make_config, server.url("/cam"), request.param)
    rt.start()
    yield server, rt, detector
    rt.stop()


def test_live_stream_keyframes_only(live: Live) -> None:
    _, rt, detector = live
    assert wait_for(lambda: (h := rt.health("cam1")) is not None and h.frames_out >= 3, 20)
    assert wait_for(lambda: len(detector.seen) >= 2, 10)  # detection follows emission
    health = rt.health("cam1")
    assert health is not None
    assert health.state == HealthState.ONLINE and health.epoch == 1
    assert health.decode_mode == DecodeMode.KEYFRAMES
    assert health.keyframe_interval_s == pytest.approx(1.0, abs=0.3)
    assert detector.seen and all(s[4] for s in detector.seen)
    assert wait_for(lambda: rt.snapshot_jpeg("cam1") is not None, 5)


def test_server_restart_reconnects_with_new_epoch_and_no_fake_frames(live: Live) -> None:
    server, rt, detector = live
    assert wait_for(lambda: len(detector.seen) >= 2, 20)
    server.kill()
    assert wait_for(lambda: rt.health("cam1").state == HealthState.OFFLINE, 15)  # type: ignore[union-attr]
    down = rt.health("cam1")
    assert down is not None and down.last_error and "cam1" in down.last_error
    # the outage itself is recorded as an event
    assert wait_for(
        lambda: rt.store.query_events(EventQuery(event_type="camera_offline"))[1] == 1, 10
    )
    # while the camera is down the source emits nothing: no substitute frames
    emitted = rt.health("cam1").frames_out  # type: ignore[union-attr]
    time.sleep(1.5)
    assert rt.health("cam1").frames_out == emitted  # type: ignore[union-attr]
    server.start()

    def back_online() -> bool:
        h = rt.health("cam1")
        return h is not None and h.state == HealthState.ONLINE and h.epoch >= 2

    assert wait_for(back_online, 20)
    assert wait_for(lambda: any(e >= 2 for _, e, *_ in detector.seen), 10)
    health = rt.health("cam1")
    assert health is not None and health.reconnects == health.epoch - 1 >= 1
    # every analysed frame came from a real connection, in order, tagged with its epoch
    epochs = [e for _, e, *_ in detector.seen]
    assert epochs == sorted(epochs) and epochs[0] == 1 and epochs[-1] >= 2
    seqs = [s for _, _, s, *_ in detector.seen]
    assert seqs == sorted(seqs)
    assert wait_for(
        lambda: (
            rt.store.query_events(EventQuery(event_type="camera_offline", state="ended"))[1] == 1
        ),
        10,
    )


def test_parking_event_over_rtsp_with_clip(
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
    tmp_path: Path,
) -> None:
    scene = Scene(
        duration_s=20, fps=10, gop=10, actors=(Actor(box=(100, 130, 180, 180), t0=0, t1=99),)
    )
    h264 = to_annexb(write_h264(tmp_path / "parked.mp4", scene), tmp_path / "parked.h264")
    server = rtsp_server({"/lot": f"file:{h264}@10"})
    rt, _ = runtime_for(make_config, server.url("/lot"), "tcp", min_dwell_s=6)
    rt.start()
    try:

        def clip_indexed() -> bool:
            rows, _ = rt.store.query_events(EventQuery(event_type="fire_lane_occupation"))
            return bool(rows) and rt.store.evidence_path(rows[0].event_id, "clip") is not None

        assert wait_for(clip_indexed, 30)
    finally:
        rt.stop()
    rows, total = rt.store.query_events(EventQuery(event_type="fire_lane_occupation"))
    assert total == 1
    row = rows[0]
    assert row.state == "ended" and row.report["detection"]["end_reason"] == "shutdown"
    clip_path = rt.store.evidence_path(row.event_id, "clip")
    assert clip_path is not None
    report = json.loads((rt.evidence_root / clip_path).parent.joinpath("report.json").read_text())
    clip = next(e for e in report["evidence"] if e["name"] == "clip")
    path = rt.evidence_root / clip["uri"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == clip["sha256"]
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    assert frames[0].key_frame and len(frames) >= 40  # ≥ 4 s pre-roll + 2 s post-roll at 10 fps
    assert clip["pre_roll_s"] >= 3.9 and clip["post_roll_s"] >= 1.9


def test_events_left_open_by_a_dead_process_are_ended_at_start(
    make_config: Callable[..., AppConfig],
) -> None:
    """kill -9 leaves events open; the next start ends those of its own cameras only."""
    from tests.unit.test_cases import store_event

    rt, _ = runtime_for(make_config, "rtsp://127.0.0.1:9/nothing", "tcp")
    store_event(rt.store, "left-open", 1_763_863_200.0, camera="cam1")
    store_event(rt.store, "other-camera", 1_763_863_200.0, camera="cam9")
    rt.start()
    try:
        mine, other = rt.store.get_event("left-open"), rt.store.get_event("other-camera")
        assert mine is not None and (mine.state, mine.closed_reason) == ("ended", "restarted")
        assert other is not None and (other.state, other.closed_reason) == ("started", None)
    finally:
        rt.stop()


@pytest.mark.parametrize(
    ("source", "transport"),
    [
        ("test:320x240@10:10:bf2", "tcp"),
        ("test:320x240@10:10:h265", "udp"),
        ("test:320x240@10:10:h265:bf2", "tcp"),
    ],
)
def test_h265_and_b_frame_cameras_give_each_keyframe_at_once(
    rtsp_server: Callable[[dict[str, str]], RtspServer], source: str, transport: str
) -> None:
    """Many cameras send H.265, some with B-frames: keyframe-only decoding over RTSP gives
    each keyframe in order, one a GOP, as soon as it arrives. (These live streams came out
    promptly before the decoder was drained after each keyframe, too: the file with B-frames
    in test_sources.py is what pins that.)"""
    server = rtsp_server({"/cam": source})
    url = server.url("/cam")
    seen: list[tuple[Frame, float]] = []
    stop = threading.Event()

    def sink(f: Frame) -> bool:
        seen.append((f, time.time()))
        if len(seen) >= 5:
            stop.set()
        return True

    s = SourceSettings(camera_id="cam1", url=url, redacted_url=url, transport=transport,
                       decode_mode=DecodeMode.KEYFRAMES, analysis_width=160,
                       open_timeout_s=3, read_timeout_s=3)  # fmt: skip
    health = HealthTracker("cam1", s.decode_mode, time.time, 5.0)
    thread = threading.Thread(target=StreamSource(s, PacketRing("cam1", 30), sink, health,
                                                  stop).run, daemon=True)  # fmt: skip
    thread.start()
    thread.join(25)
    stop.set()
    assert len(seen) >= 5, f"{len(seen)} keyframes in 25 s"
    times = [f.time_s for f, _ in seen]
    assert all(f.is_keyframe for f, _ in seen)
    assert times == sorted(times)
    assert np.diff(times[1:]) == pytest.approx(1.0, abs=0.25)  # one a GOP, none lost
    # once live (the server sends what it had buffered at once), a keyframe is out as soon
    # as its packet arrived, not when the next ones do
    assert max(wall - f.time_s for f, wall in seen[2:]) < 0.8
