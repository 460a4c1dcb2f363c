"""The HTTP API over a store filled by a real replay (no fake store)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomlkit
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import Role, create_token
from pipeline.config import AppConfig
from pipeline.evidence.report import ModelIdentity
from pipeline.ops import compose
from pipeline.ops.replay import replay
from pipeline.store.repository import SCHEMA_VERSION, EventStore
from pipeline.types import CameraHealth, DecodeMode, HealthState
from tests.conftest import camera_dict
from tests.integration.test_replay import SCENE, START, config
from tests.media import Scene, ScriptedDetector, write_h264, write_h265


class FakeRuntime:
    """Only the read side the API needs, with fixed health."""

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg
        self.applied: list[object] = []
        self.view = "moved"
        self.confirmed: list[str] = []

    def camera_configs(self):  # type: ignore[no-untyped-def]
        return list(self.cfg.cameras)

    def health(self, camera_id: str) -> CameraHealth | None:
        if camera_id != "cam1":
            return None
        return CameraHealth(
            camera_id, HealthState.ONLINE, 2, DecodeMode.KEYFRAMES, 25.0, 0.5, 100, 100, 3, 1,
            2.0, START, START, None,
        )  # fmt: skip

    def online(self, camera_id: str) -> bool:
        return camera_id == "cam1"

    def snapshot_jpeg(self, camera_id: str) -> bytes | None:
        return b"\xff\xd8fakejpeg\xff\xd9" if camera_id == "cam1" else None

    def activity_jpeg(self, camera_id: str) -> bytes | None:
        return b"\xff\xd8fakeheat\xff\xd9" if camera_id == "cam1" else None

    def frame_size(self, camera_id: str) -> tuple[int, int] | None:
        return (1280, 720) if camera_id == "cam1" else None

    def health_history(self, camera_id: str):  # type: ignore[no-untyped-def]
        from pipeline.types import HealthChange

        return (
            HealthChange(START - 60, HealthState.CONNECTING, None),
            HealthChange(START - 58, HealthState.ONLINE, None),
        ), 0.97

    def reconfigure(self, cameras):  # type: ignore[no-untyped-def]
        from pipeline.types import CameraChanges

        self.applied.append(cameras)
        return CameraChanges((), (), ("cam1",), ())

    def writer_stats(self):  # type: ignore[no-untyped-def]
        from pipeline.evidence.writer import WriterStats

        return WriterStats(1, 0, 0, 0, (0.1,))

    def inference_stats(self):  # type: ignore[no-untyped-def]
        from pipeline.detect.inference import InferenceStats

        return InferenceStats(30, 12, 30, 0.5)

    def view_state(self, camera_id: str) -> str | None:
        return self.view if camera_id == "cam1" else None

    def sway_px(self, camera_id: str) -> float | None:
        return 2.4 if camera_id == "cam1" else None

    def live_view(self, camera_id: str) -> None:
        return None  # no stream behind the fake: the route answers 503

    def confirm_view(self, camera_id: str, timeout: float = 10.0) -> str:
        self.confirmed.append(camera_id)
        self.view = "ok"
        return self.view


def replayed_app(
    tmp: Path, write: Callable[[Path, Scene], Path] = write_h264
) -> tuple[FastAPI, EventStore]:
    """An API app over a store filled by replaying the generated fire-lane scene."""
    out = tmp / "out"
    cfg = config(out)
    replay(
        write(tmp / "scene.mp4", SCENE), cfg, "cam1", out, start_time_s=START,
        detector=ScriptedDetector(SCENE), model_identity=ModelIdentity("scripted", "0" * 64),
        progress=False,
    )  # fmt: skip
    store = EventStore(out / "gridsight.db")
    # the file the zone editor edits: the same camera as the replay
    toml = tmp / "cameras.toml"
    raw = {"site": {"admin_division_code": "330106"}, "cameras": [camera_dict(url="/dev/null")]}
    toml.write_text("# integrator's notes stay\n" + tomlkit.dumps(raw), encoding="utf-8")
    runtime = FakeRuntime(cfg)
    site = compose.installation(cfg, root=out, store=store)
    app = compose.api(site, runtime=runtime, config_path=toml, reconfigure=runtime.reconfigure)
    return app, store


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    app, store = replayed_app(tmp_path_factory.mktemp("api"))
    client = TestClient(app)
    client.headers["Authorization"] = (
        f"Bearer {create_token(store, 'admin1', Role.ADMIN, time.time())}"
    )
    return client


def test_healthz(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok", "cameras": 1, "cameras_online": 1, "events_stored": 1,
        "store_schema_version": SCHEMA_VERSION,
    }  # fmt: skip


def test_cameras_redact_and_report_health(client: TestClient) -> None:
    (cam,) = client.get("/cameras").json()
    assert cam["camera_id"] == "cam1" and cam["health"]["state"] == "online"
    assert cam["zones"][0]["zone_id"] == "lane"
    assert client.get("/cameras/cam1/health").json()["reconnects"] == 1
    snap = client.get("/cameras/cam1/snapshot.jpg")
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
    assert client.get("/cameras/nope/health").status_code == 404


def test_queue_thumbnail_is_a_small_audited_copy_of_the_alert_snapshot(
    client: TestClient,
) -> None:
    ev = client.get("/events").json()["items"][0]["event_id"]
    thumb = client.get(f"/events/{ev}/thumb.jpg")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] == 240
    full = client.get(f"/events/{ev}/snapshot.jpg").content
    assert len(thumb.content) < len(full)
    trail = client.get("/audit", params={"target_prefix": f"event:{ev}/alert-thumb"}).json()
    assert trail and trail[0]["action"] == "view_evidence"
    assert client.get("/events/nope/thumb.jpg").status_code == 404


def test_an_integrator_confirms_a_moved_view(client: TestClient) -> None:
    (cam,) = client.get("/cameras").json()
    assert cam["view"] == "moved" and cam["sway_px"] == 2.4
    done = client.post("/cameras/cam1/view/confirm")
    assert done.status_code == 200 and done.json() == {"camera_id": "cam1", "view": "ok"}
    assert client.get("/cameras").json()[0]["view"] == "ok"
    assert client.post("/cameras/nope/view/confirm").status_code == 404
    trail = client.get("/audit", params={"target_prefix": "cam1"}).json()
    assert any(r["action"] == "confirm_camera_view" for r in trail)


def test_events_filter_and_paginate(client: TestClient) -> None:
    page = client.get("/events").json()
    assert page["total"] == 1 and page["limit"] == 50
    item = page["items"][0]
    assert item["event_type"] == "fire_lane_occupation" and item["name_zh"] == "占用消防通道"
    assert set(item["links"]) == {
        "self",
        "clip",
        "snapshot_alert",
        "snapshot_first",
        "snapshot_end",
    }
    assert client.get("/events", params={"event_type": "bin_overflow"}).json()["total"] == 0
    assert (
        client.get("/events", params={"camera_id": "cam1", "state": "ended"}).json()["total"] == 1
    )
    assert client.get("/events", params={"since": "2025-11-23T10:00:27+08:00"}).json()["total"] == 0
    assert client.get("/events", params={"since": "2025-11-23T10:00:25"}).json()["total"] == 1
    assert client.get("/events", params={"until": START + 26}).json()["total"] == 0
    assert client.get("/events", params={"offset": 1}).json()["items"] == []
    bad = client.get("/events", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.json()["detail"]


def test_event_detail_and_evidence(client: TestClient) -> None:
    event_id = client.get("/events").json()["items"][0]["event_id"]
    detail = client.get(f"/events/{event_id}").json()
    assert detail["report"]["report_id"] == event_id
    snap = client.get(f"/events/{event_id}/snapshot.jpg", params={"name": "first"})
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    assert (
        client.get(f"/events/{event_id}/snapshot.jpg", params={"name": "../x"}).status_code == 422
    )
    assert client.get("/events/nope").status_code == 404


def test_clip_supports_range_requests(client: TestClient) -> None:
    event = client.get("/events").json()["items"][0]
    event_id = event["event_id"]
    assert "clip_preview" not in event["links"]  # browsers play H.264 as recorded
    assert client.get(f"/events/{event_id}/clip-preview.mp4").status_code == 404
    full = client.get(f"/events/{event_id}/clip.mp4")
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    size = len(full.content)
    part = client.get(f"/events/{event_id}/clip.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.content == full.content[100:200]
    tail = client.get(f"/events/{event_id}/clip.mp4", headers={"Range": f"bytes={size}-"})
    assert tail.status_code == 416


def test_an_h265_cameras_event_links_the_h264_copy_the_viewer_plays(tmp_path: Path) -> None:
    app, store = replayed_app(tmp_path, write_h265)
    c = TestClient(app)
    c.headers["Authorization"] = f"Bearer {create_token(store, 'a1', Role.ADMIN, time.time())}"
    event = c.get("/events").json()["items"][0]
    assert event["links"]["clip_preview"].endswith("/clip-preview.mp4")
    preview = c.get(event["links"]["clip_preview"], headers={"Range": "bytes=0-99"})
    assert preview.status_code == 206 and preview.content[4:8] == b"ftyp"
    assert c.get(event["links"]["clip"]).status_code == 200  # the original stays the evidence


def test_metrics_exposition(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'gridsight_events_total{event_type="fire_lane_occupation"} 1.0' in text
    assert 'gridsight_camera_up{camera_id="cam1"} 1.0' in text
    assert 'gridsight_camera_state{camera_id="cam1",state="online"} 1.0' in text
    assert 'gridsight_camera_decoder{camera_id="cam1",decoder="cpu"} 1.0' in text
    assert "gridsight_inference_frames_total 30.0" in text


def test_openapi_lists_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in ["/cameras", "/cameras/{camera_id}/health", "/cameras/{camera_id}/snapshot.jpg",
              "/events", "/events/{event_id}", "/events/{event_id}/clip.mp4",
              "/events/{event_id}/snapshot.jpg", "/healthz", "/metrics"]:  # fmt: skip
        assert p in paths


def test_serve_without_runtime(tmp_path: Path) -> None:
    from pipeline.config import parse_config

    cfg = parse_config({"api": {"auth": False}})
    app = compose.api(compose.installation(cfg, root=tmp_path, store=EventStore(tmp_path / "g.db")))
    c = TestClient(app)
    assert c.get("/healthz").json()["cameras_online"] == 0
    assert c.get("/events").json()["total"] == 0


def test_zone_editor_validates_saves_and_applies(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("geo")
    app, store = replayed_app(tmp)
    client = TestClient(app)
    client.headers["Authorization"] = (
        f"Bearer {create_token(store, 'int1', Role.INTEGRATOR, time.time())}"
    )
    geo = client.get("/cameras/cam1/geometry").json()
    assert geo["editable"] and geo["live"] and geo["zones"][0]["id"] == "lane"
    crossing = {"zones": [{"id": "lane", "kind": "fire_lane",
                           "polygon": [[0, 0], [1, 1], [0, 1], [1, 0]]}]}  # fmt: skip
    r = client.post("/cameras/cam1/geometry/validate", json=crossing)
    assert r.status_code == 422
    assert r.json()["issues"][0]["location"] == "camera 'cam1' (cameras[0]) → zones[0].polygon"
    before = (tmp / "cameras.toml").read_text(encoding="utf-8")
    assert client.put("/cameras/cam1/geometry", json=crossing).status_code == 422
    assert (tmp / "cameras.toml").read_text(encoding="utf-8") == before
    moved = {
        "zones": [geo["zones"][0] | {"polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]}]
    }
    assert client.post("/cameras/cam1/geometry/validate", json=moved).json() == {
        "ok": True,
        "issues": [],
        "facade_fits": [],
    }
    # a façade calibration is checked against a real camera: the tower clip's annotated
    # 13-floor grid fits one, its earlier 12-floor grid none
    tower = {"building": "7", "zone": "f", "top_floor": 13, "columns": list("abcdef"),
             "floor_height_m": 3.0, "column_width_m": 3.5}  # fmt: skip
    with_facades = {
        "zones": [*moved["zones"], {"id": "f", "kind": "facade",
                                    "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
        "facades": [
            tower | {"id": "t13", "corners": [[0.339, 0.01], [0.623, 0.01], [0.857, 0.884],
                                              [0.034, 0.884]]},
            tower | {"id": "t12", "top_floor": 12,
                     "corners": [[0.15, 0.01], [0.65, 0.01], [0.86, 0.98], [0.01, 0.98]]},
        ],
    }  # fmt: skip
    fits = client.post("/cameras/cam1/geometry/validate", json=with_facades).json()["facade_fits"]
    assert [(f["id"], f["ok"]) for f in fits] == [("t13", True), ("t12", False)]
    assert "(1280×720)" in fits[0]["message"] and "column_width_m" in fits[1]["message"]
    heat = client.get("/cameras/cam1/activity.jpg")
    assert heat.status_code == 200 and heat.content.startswith(b"\xff\xd8")
    out = client.put("/cameras/cam1/geometry", json=moved).json()
    assert out == {"ok": True, "changed": ["zones"], "backup": "cameras.toml.bak",
                   "applied": {"updated": ["cam1"], "untouched": 0},
                   "facade_fits": []}  # fmt: skip
    text = (tmp / "cameras.toml").read_text(encoding="utf-8")
    assert text.startswith("# integrator's notes stay") and "[0.1, 0.5]" in text
    runtime = app.state.ctx.runtime
    assert runtime.applied[-1][0].zones[0].polygon[0] == (0.1, 0.5)
    # the API serves the new zones at once
    assert client.get("/cameras").json()[0]["zones"][0]["polygon"][0] == [0.1, 0.5]
    with store.reader() as db:
        rows = db.execute(
            "SELECT actor, target FROM audit_log WHERE action = 'edit_geometry'"
        ).fetchall()
    assert [tuple(r) for r in rows] == [("int1", "camera:cam1")]
    hist = client.get("/cameras/cam1/health/history").json()
    assert hist["uptime_24h"] == 0.97 and [c["state"] for c in hist["changes"]] == [
        "connecting",
        "online",
    ]
