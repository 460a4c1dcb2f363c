"""``gridsight demo``: generated footage → local GStreamer RTSP server → pipeline → API."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from pathlib import Path

from pipeline import threads
from pipeline.config import ModelConfig, load_config
from pipeline.ops.demo.footage import generate
from pipeline.store.repository import EventStore

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
SERVER = Path(__file__).resolve().parents[1] / "tools" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi and GstRtspServer typelibs
FPS = 15


def start_rtsp_server(
    port: int, mounts: dict[str, str], timeout_s: float = 20.0
) -> subprocess.Popen[str]:
    """Start ``rtsp_server.py`` and wait for its READY line."""
    if not Path(SYSTEM_PYTHON).exists():
        raise RuntimeError(f"{SYSTEM_PYTHON} not found; run .ci/setup (installs GStreamer)")
    args = [SYSTEM_PYTHON, str(SERVER), "--port", str(port)]
    for path, source in mounts.items():
        args += ["--mount", f"{path}={source}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def watch() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                ready.set()

    threads.start("gridsight-rtsp-ready", watch)
    deadline = time.monotonic() + timeout_s
    while not ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read() if proc.stderr else ""
            proc.kill()
            raise RuntimeError(f"RTSP server did not start: {err.strip()[-500:]}")
    return proc


def demo_config(workdir: Path, url: str) -> Path:
    """Write ``workdir/cameras.toml``: the bundled file with this run's URL and paths."""
    import tomlkit

    doc = tomlkit.parse((REPO / "cameras.toml").read_text(encoding="utf-8"))
    model = doc["model"]
    assert isinstance(model, dict)
    # Every model file, named in the bundled file or left at its default, is found where the
    # bundled file's own paths lead (the copy lives elsewhere): with only the detector's made
    # absolute, the demo ran without plate reading.
    for name, field in ModelConfig.model_fields.items():
        if field.annotation is Path:
            model[name] = str((REPO / str(model.get(name, field.default))).resolve())
    evidence = doc["evidence"]
    assert isinstance(evidence, dict)
    evidence["root"] = str((workdir / "evidence").resolve())
    cameras = doc["cameras"]
    assert isinstance(cameras, list)
    for cam in cameras:
        cam["url"] = url
    path = workdir / "cameras.toml"
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def run_demo(*, workdir: Path, api_port: int, rtsp_port: int, duration_s: float | None) -> int:
    from api.auth import Role, create_token
    from pipeline.errors import PipelineError
    from pipeline.ops import compose, serve

    workdir.mkdir(parents=True, exist_ok=True)
    footage = workdir / "street.h264"
    if not footage.exists():
        print("generating demo footage (once, ~20 s)…", flush=True)
        generate(footage, fps=FPS)
    url = f"rtsp://127.0.0.1:{rtsp_port}/street"
    # The demo's own copy of the bundled cameras.toml (camera URL, model and evidence paths
    # pointed at this run), so that the zone editor can save and apply without touching the
    # repository's file.
    config_path = demo_config(workdir, url)
    cfg = load_config(config_path)
    server = start_rtsp_server(rtsp_port, {"/street": f"file:{footage.resolve()}@{FPS}"})
    base = f"http://127.0.0.1:{api_port}"
    try:
        running = compose.pipeline(cfg)
    except PipelineError as exc:
        server.terminate()
        print(f"cannot start: {exc}", flush=True)
        return 1
    token = create_token(running.store, f"demo-admin-{int(time.time())}", Role.ADMIN,
                         time.time())  # fmt: skip
    print(
        f"""
gridsight demo — 演示
  RTSP camera : {url}  (generated footage, looping every ~110 s)
  API         : {base}/docs
  events      : {base}/events        (first event after ~45 s: car in the fire lane)
  camera view : {base}/cameras/demo_street/snapshot.jpg
  health      : {base}/cameras/demo_street/health    metrics: {base}/metrics
  cases       : {base}/cases         (review queue: accept/reject/dispatch via POST …/actions)
  evidence    : {(workdir / "evidence").resolve()}
  admin token : {token}
                (every route but /healthz needs it: curl -H "Authorization: Bearer <token>" …;
                 in {base}/docs use "Authorize")
Stop with Ctrl-C.
""",
        flush=True,
    )
    if duration_s is not None:
        timer = threading.Timer(duration_s, lambda: _interrupt())
        timer.daemon = True
        timer.start()
    try:
        code = serve.run(running, "127.0.0.1", api_port, config_path=config_path)
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
    _summary(running.store, workdir / "evidence")
    return code


def _interrupt() -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)


def _summary(store: EventStore, root: Path) -> None:
    from pipeline.store.repository import EventQuery

    rows, total = store.query_events(EventQuery(limit=20))
    print(f"\n{total} event(s) recorded in {root}:")
    for r in rows:
        print(
            f"  {r.event_type:<26} {r.state:<8} zone={r.zone_id} {r.report.get('summary_zh', '')}"
        )
