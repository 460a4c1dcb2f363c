"""Shared fixtures: config factories, generated media, a real local RTSP server."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import AppConfig, parse_config

REPO = Path(__file__).resolve().parents[1]
RTSP_SERVER = REPO / "pipeline" / "ops" / "tools" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def camera_dict(**overrides: Any) -> dict[str, Any]:
    cam: dict[str, Any] = {
        "id": "cam1",
        "name": "测试摄像机",
        "url": "/dev/null",
        "zones": [
            {
                "id": "lane",
                "kind": "fire_lane",
                "polygon": [[0.2, 0.5], [0.8, 0.5], [0.8, 0.95], [0.2, 0.95]],
            }
        ],
        "rules": [
            {
                "analyzer": "illegal_parking",
                "min_dwell_s": 20,
                "confirm_s": 4,
                "max_gap_s": 6,
                "cooldown_s": 30,
                "update_interval_s": 10,
            }
        ],
    }
    cam.update(overrides)
    return cam


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., AppConfig]:
    def make(cameras: list[dict[str, Any]] | None = None, **sections: Any) -> AppConfig:
        raw: dict[str, Any] = {
            "cameras": cameras if cameras is not None else [camera_dict()],
            "evidence": {"root": str(tmp_path / "evidence"), "pre_roll_s": 4, "post_roll_s": 2},
            "model": {"path": str(REPO / "models" / "yolox_nano.onnx")},
        }
        for key, value in sections.items():
            raw[key] = {**raw.get(key, {}), **value}
        return parse_config(raw)

    return make


def _has_gst_rtsp() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


HAS_RTSP = _has_gst_rtsp()


class RtspServer:
    """A real gst-rtsp-server process on 127.0.0.1 that tests can kill and restart."""

    def __init__(self, mounts: dict[str, str], port: int | None = None) -> None:
        self.mounts = mounts
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    def url(self, mount: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self, timeout_s: float = 20.0) -> None:
        args = [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(self.port)]
        for path, source in self.mounts.items():
            args += ["--mount", f"{path}={source}"]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        ready = threading.Event()

        def watch(proc: subprocess.Popen[str]) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("READY"):
                    ready.set()

        threading.Thread(target=watch, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"RTSP server failed: {err[-400:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def rtsp_server() -> Iterator[Callable[[dict[str, str]], RtspServer]]:
    if not HAS_RTSP:
        pytest.skip("GStreamer RTSP server not installed (run .ci/setup)")
    servers: list[RtspServer] = []

    def start(mounts: dict[str, str]) -> RtspServer:
        server = RtspServer(mounts)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server for the whole session (``tests.pg``). Missing binaries skip the
    test locally but fail under CI, where .ci/setup installs them."""
    from tests.pg import PostgresServer, postgres_bin

    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/setup should have installed it")
        pytest.skip("PostgreSQL server not installed (apt install postgresql, or run .ci/setup)")
    pytest.importorskip("psycopg")
    server = PostgresServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where to open an EventStore: a SQLite file, or a fresh database on the test server."""
    if request.param == "sqlite":
        return tmp_path / "events.db"
    server = request.getfixturevalue("postgres")
    return str(server.new_database())
