"""Live reconfiguration over real RTSP: only the changed camera restarts, the others keep
streaming on the same connection; refused changes leave everything as it was."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.config import AppConfig, CameraConfig, parse_config
from pipeline.errors import ConfigError
from pipeline.evidence.report import ModelIdentity
from pipeline.ops.compose import pipeline
from pipeline.runtime import Runtime
from pipeline.types import HealthState
from tests.conftest import RtspServer, camera_dict, wait_for
from tests.integration.test_rtsp import FAST_INGEST
from tests.media import ColorBoxDetector

pytestmark = pytest.mark.rtsp


def _online_with(rt: Runtime, cid: str, frames: int) -> bool:
    h = rt.health(cid)
    return h is not None and h.state == HealthState.ONLINE and h.frames_out >= frames


def _camera(raw: dict[str, object]) -> CameraConfig:
    return parse_config({"cameras": [raw]}).cameras[0]


def test_only_changed_cameras_restart(
    rtsp_server: Callable[[dict[str, str]], RtspServer], make_config: Callable[..., AppConfig]
) -> None:
    server = rtsp_server({"/a": "test:320x240@10:10", "/b": "test:320x240@10:10"})
    # vehicle classes only: the detector is loaded for exactly these (the class-agnostic
    # parking path would load every class, and no camera could need a class not loaded)
    only = [camera_dict()["rules"][0] | {"static_objects": False}]
    raw_a = camera_dict(id="cam_a", url=server.url("/a"), rules=only)
    raw_b = camera_dict(id="cam_b", url=server.url("/b"), transport="udp", rules=only)
    cfg = make_config([raw_a, raw_b], ingest=FAST_INGEST)
    detector = ColorBoxDetector()
    rt = pipeline(cfg, detector=detector, model_identity=ModelIdentity("cb", "0" * 64)).runtime
    rt.start()
    try:
        assert wait_for(lambda: _online_with(rt, "cam_a", 3) and _online_with(rt, "cam_b", 3), 30)
        a_before, b_before = rt.cameras["cam_a"], rt.cameras["cam_b"]
        a_health = rt.health("cam_a")
        b_epoch = rt.health("cam_b").epoch  # type: ignore[union-attr]
        assert a_health is not None

        new_zone = {"id": "lane", "kind": "fire_lane",
                    "polygon": [[0.1, 0.4], [0.9, 0.4], [0.9, 0.9], [0.1, 0.9]]}  # fmt: skip
        # cam_c joins cam_a's (shared) RTSP media: the server re-times the stream for cam_a
        raw_c = camera_dict(id="cam_c", url=server.url("/a"), rules=only)
        wanted = [cfg.cameras[0], _camera(raw_b | {"zones": [new_zone]}), _camera(raw_c)]
        changes = rt.reconfigure(wanted)

        assert changes.updated == ("cam_b",) and changes.added == ("cam_c",)
        assert changes.removed == () and changes.unchanged == ("cam_a",)
        # cam_a: the very same source, thread and connection
        assert rt.cameras["cam_a"] is a_before and a_before.thread is not None
        assert a_before.thread.is_alive()
        frames_a = rt.health("cam_a").frames_out  # type: ignore[union-attr]
        assert wait_for(lambda: rt.health("cam_a").frames_out > frames_a + 5, 10)  # type: ignore[union-attr]
        after_a = rt.health("cam_a")
        assert after_a is not None
        assert after_a.epoch == a_health.epoch and after_a.reconnects == a_health.reconnects
        # cam_b: a new source with the new zone, continuing the epoch count and health history
        b_after = rt.cameras["cam_b"]
        assert b_after is not b_before and b_before.thread is not None
        assert not b_before.thread.is_alive()
        assert b_after.cfg.zones[0].polygon[0] == (0.1, 0.4)
        assert b_after.health is b_before.health
        assert wait_for(lambda: _online_with(rt, "cam_b", 3), 20)
        assert rt.health("cam_b").epoch > b_epoch  # type: ignore[union-attr]
        states = [c.state for c in rt.cameras["cam_b"].health.history()]
        assert states[-1] == HealthState.ONLINE and HealthState.DISABLED in states
        assert wait_for(lambda: _online_with(rt, "cam_c", 3), 20)
        # cam_c joining cam_a's shared media re-timed cam_a's stream; its frame time still
        # never went backwards
        times_a = [s[3] for s in detector.seen if s[0] == "cam_a"]
        assert times_a == sorted(times_a) and len(times_a) >= 5

        # a camera needing a detector class the running model was not loaded for is refused
        vending = {"analyzer": "vending", "classes": ["umbrella"]}
        walk = {"id": "walk", "kind": "walkway", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}
        bad = _camera(raw_c | {"zones": [walk], "rules": [vending]})
        with pytest.raises(ConfigError) as err:
            rt.reconfigure([cfg.cameras[0], b_after.cfg, bad])
        assert "cam_c" in err.value.issues[0].location
        assert "restart" in err.value.issues[0].message
        assert set(rt.cameras) == {"cam_a", "cam_b", "cam_c"}
        assert rt.cameras["cam_a"] is a_before

        # removal stops exactly that camera
        c_cam = rt.cameras["cam_c"]
        changes = rt.reconfigure([cfg.cameras[0], b_after.cfg])
        assert changes.removed == ("cam_c",) and set(changes.unchanged) == {"cam_a", "cam_b"}
        assert "cam_c" not in rt.cameras and rt.health("cam_c") is None
        assert c_cam.thread is not None and not c_cam.thread.is_alive()
        assert rt.cameras["cam_a"] is a_before and a_before.thread.is_alive()
    finally:
        rt.stop()
