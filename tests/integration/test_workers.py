"""One pipeline process per core (``gridsight run``'s default): cameras in spawned worker
processes behind one API and one casework loop, with real RTSP cameras on loopback. What the
API shows of a camera (health, pictures, live video, metrics) comes from the worker that runs
it; events become cases; a killed worker's cameras stream again on a replacement; the command
line starts the workers by itself, applies cameras.toml edits, and stops them all on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import tomlkit
from fastapi.testclient import TestClient

from api.auth import Role, create_token
from pipeline.config import AppConfig
from pipeline.ops.capacity import CameraCost, CostModel
from pipeline.ops.cluster import ClusterView, Coordinator
from pipeline.ops.workers import ProcessWorker
from pipeline.store.repository import EventQuery, EventStore
from tests.conftest import RtspServer, camera_dict, wait_for
from tests.integration.test_rtsp import FAST_INGEST
from tests.media import (
    Actor,
    ColorBoxDetector,
    FailingWhenToldDetector,
    Scene,
    to_annexb,
    write_h264,
)

pytestmark = pytest.mark.rtsp
REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Spawned worker processes of ``pid`` (Linux /proc; not multiprocessing's resource
    tracker)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue  # a thread that ended meanwhile
        for child in children:
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:
                out.add(int(child))
    return out


def parked_car_cameras(
    tmp_path: Path, rtsp_server: Callable[[dict[str, str]], RtspServer], n: int
) -> list[dict[str, Any]]:
    """``n`` RTSP cameras on loopback, each watching a car parked in its fire lane (found by
    ``ColorBoxDetector``), with a parking rule quick enough for a test."""
    scene = Scene(duration_s=30, fps=10, gop=10,
                  actors=(Actor(box=(100, 130, 180, 180), t0=0, t1=99),))  # fmt: skip
    h264 = to_annexb(write_h264(tmp_path / "parked.mp4", scene), tmp_path / "parked.h264")
    server = rtsp_server({f"/c{i}": f"file:{h264}@10" for i in range(n)})
    rules = [{"analyzer": "illegal_parking", "min_dwell_s": 3, "confirm_s": 1, "max_gap_s": 4,
              "cooldown_s": 0, "update_interval_s": 2}]  # fmt: skip
    return [camera_dict(id=f"cam{i}", url=server.url(f"/c{i}"), rules=rules) for i in range(n)]


def test_worker_processes_behind_one_api(
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
    tmp_path: Path,
) -> None:
    from pipeline.ops import compose

    cams = parked_car_cameras(tmp_path, rtsp_server, 4)
    cfg = make_config(cams, ingest=FAST_INGEST)
    store = EventStore(cfg.store_location())
    coord = Coordinator(cfg, workers=2, store=store, detector_factory=ColorBoxDetector,
                        cost_model=CostModel({"keyframes": CameraCost(0.03, 27)}, "test"),
                        spawn=ProcessWorker)  # fmt: skip
    view = ClusterView(coord)
    site, casework = compose.coordinating(cfg, view, store)
    coord.start()
    casework.start()
    try:
        client = TestClient(compose.api(site, runtime=view, reconfigure=coord.reconfigure))
        token = create_token(site.store, "t", Role.ADMIN, time.time())
        auth = {"Authorization": f"Bearer {token}"}

        def online() -> set[str]:
            got = client.get("/cameras", headers=auth).json()
            return {c["camera_id"] for c in got if (c["health"] or {}).get("state") == "online"}

        assert wait_for(lambda: online() == {f"cam{i}" for i in range(4)}, 60, 0.5)
        pids = {w.handle.pid for w in coord.workers.values()}  # type: ignore[attr-defined]
        assert len(pids) == 2 and os.getpid() not in pids
        assert pids <= _children(os.getpid())

        # a picture of the scene, from the worker that decodes the camera
        shot = client.get("/cameras/cam1/snapshot.jpg", headers=auth)
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
        img = cv2.imdecode(np.frombuffer(shot.content, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[0] > 0

        # live video: the worker's remux of the camera's own H.264, as fragmented MP4
        with client.stream("GET", "/cameras/cam2/live.mp4", headers=auth) as live:
            assert live.status_code == 200 and live.headers["x-codec"].startswith("avc1.")
            got = b""
            for chunk in live.iter_bytes():
                got += chunk
                if b"moof" in got:
                    break
        assert got[4:8] == b"ftyp" and b"moov" in got and b"moof" in got

        # every camera's parked car became an event and, in the shared store, a case
        def parking() -> list[Any]:
            return store.query_events(EventQuery(event_type="fire_lane_occupation", limit=50))[0]

        assert wait_for(lambda: {r.camera_id for r in parking()} == {f"cam{i}" for i in range(4)},
                        60, 0.5)  # fmt: skip
        assert wait_for(lambda: len(client.get("/cases", headers=auth).json()["items"]) == 4, 20)
        metrics = client.get("/metrics", headers=auth).text
        assert metrics.count("gridsight_camera_up{") == 4

        # a worker killed outright: its cameras come back on a replacement process
        victim = coord.placement["cam0"]
        moved = {c for c, w in coord.placement.items() if w == victim}
        os.kill(coord.workers[victim].handle.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        found: list[str] = []

        def lost_found() -> bool:
            found.extend(coord.check())
            return bool(found)

        assert wait_for(lost_found, 20, 0.5)
        assert found == [victim] and len(coord.workers) == 2
        assert wait_for(lambda: online() == {f"cam{i}" for i in range(4)}, 60, 0.5)
        assert all(coord.placement[c] != victim for c in moved)
        for eid in coord.orphans_ended:
            row = store.get_event(eid)
            assert row is not None and row.camera_id in moved
            assert (row.state, row.closed_reason) == ("ended", "worker_lost")
    finally:
        coord.stop()
        casework.stop()
    assert not _children(os.getpid()) & pids  # every worker process has ended
    for row in store.query_events(EventQuery(limit=100))[0]:
        assert row.state == "ended"


def test_a_worker_whose_model_breaks_is_replaced_and_its_events_ended(
    make_config: Callable[..., AppConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process's inference thread dies (not an analyzer's error, which the camera
    pipeline contains). Before, the worker went on answering health questions while its
    cameras were never analysed again; now it says so and the coordinator replaces it."""
    marker = tmp_path / "fail-now"
    monkeypatch.setenv("GRIDSIGHT_TEST_FAIL", str(marker))  # the spawned workers inherit it
    scene = Scene(
        duration_s=4, fps=10, gop=10, actors=(Actor(box=(100, 130, 180, 180), t0=0, t1=99),)
    )
    clip = write_h264(tmp_path / "parked.mp4", scene)
    rules = [{"analyzer": "illegal_parking", "min_dwell_s": 1, "confirm_s": 1, "max_gap_s": 4,
              "cooldown_s": 0, "update_interval_s": 2}]  # fmt: skip
    cam = camera_dict(id="cam0", url=str(clip), rules=rules) | {"loop": True, "realtime": True}
    cfg = make_config([cam], ingest=FAST_INGEST)
    store = EventStore(cfg.store_location())
    coord = Coordinator(cfg, workers=1, store=store, detector_factory=FailingWhenToldDetector,
                        cost_model=CostModel({"keyframes": CameraCost(0.03, 27)}, "test"),
                        spawn=ProcessWorker)  # fmt: skip
    coord.start()
    try:
        first = coord.placement["cam0"]

        def parked() -> list[Any]:
            return store.query_events(EventQuery(event_type="fire_lane_occupation"))[0]

        assert wait_for(lambda: len(parked()) == 1, 60, 0.5)
        assert coord.check() == []
        marker.touch()
        found: list[str] = []

        def lost_found() -> bool:
            found.extend(coord.check())
            return bool(found)

        assert wait_for(lost_found, 20, 0.5)
        assert found == [first] and coord.placement["cam0"] != first
        # ended by the failing worker itself, or else by the coordinator
        (ended,) = parked()
        assert ended.state == "ended", ended
        by_worker = ended.report["detection"]["end_reason"] == "fault"
        assert by_worker or ended.closed_reason == "worker_lost", ended
        # the replacement analyses the camera again: the car parked there is a new event
        assert wait_for(lambda: len(parked()) == 2, 60, 0.5)
        assert not marker.exists()
    finally:
        coord.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gridsight_run_starts_a_worker_per_core_and_stops_them(
    rtsp_server: Callable[[dict[str, str]], RtspServer], tmp_path: Path
) -> None:
    """The command line as an operator runs it: ``--workers 2`` stands in for a 2-core
    machine's default. cameras.toml edited on disk reaches the workers; SIGTERM stops all."""
    server = rtsp_server({f"/c{i}": "test:160x120@5:5" for i in range(3)})
    doc = tomlkit.document()
    doc["evidence"] = {"root": str(tmp_path / "evidence")}
    doc["model"] = {"path": str(REPO / "models" / "yolox_nano.onnx")}
    doc["ingest"] = FAST_INGEST
    doc["api"] = {"auth": False}
    cams = tomlkit.aot()
    for i in range(3):
        cams.append(tomlkit.item({"id": f"cam{i}", "name": f"摄像机{i}", "url": server.url(f"/c{i}"),
                                  "rules": [], "zones": []}))  # fmt: skip
    doc["cameras"] = cams
    path = tmp_path / "cameras.toml"
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.ops.cli", "run", "--config", str(path),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def healthz() -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                got: dict[str, Any] = json.loads(r.read())
                return got
        except OSError:
            return {}

    try:
        assert wait_for(lambda: healthz().get("cameras_online") == 3, 90, 0.5), healthz()
        workers = _children(proc.pid)
        assert len(workers) == 2  # two pipeline processes, the cameras shared among them

        # a camera removed from the file on disk: the API and the workers follow
        del doc["cameras"][2]
        path.write_text(tomlkit.dumps(doc), encoding="utf-8")
        assert wait_for(lambda: healthz().get("cameras") == 2, 30, 0.5), healthz()
        assert healthz().get("cameras_online") == 2

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), out[-3000:]


def test_a_worker_that_cannot_start_its_cameras_ends_gridsight_run_with_the_reason(
    tmp_path: Path,
) -> None:
    """A model file that exists but is not a model passes `gridsight check`'s file test and
    fails only when a worker loads it: the command says why and exits, leaving no process."""
    clip = write_h264(tmp_path / "c.mp4", Scene(duration_s=2, fps=5, gop=5))
    (tmp_path / "bad.onnx").write_bytes(b"not a model" * 100)
    cams = [camera_dict(id=f"cam{i}", url=str(clip)) | {"loop": True} for i in range(2)]
    doc = {"model": {"path": str(tmp_path / "bad.onnx")}, "api": {"auth": False},
           "evidence": {"root": str(tmp_path / "evidence")}, "cameras": cams}  # fmt: skip
    path = tmp_path / "cameras.toml"
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.ops.cli", "run", "--config", str(path), "--no-api",
         "--workers", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "cannot start" in proc.stderr and "bad.onnx" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
