"""Live video in a real browser: a generated H.264 camera served by a real GStreamer RTSP server
on 127.0.0.1, watched by a running pipeline, remuxed to fragmented MP4 and played through
Media Source Extensions in Chromium, which must show frames that advance. Two viewers share
one remux."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from api.auth import Role, create_token
from pipeline.config import AppConfig
from pipeline.evidence.report import ModelIdentity
from pipeline.ops import compose
from tests.conftest import RtspServer, camera_dict, free_port, wait_for
from tests.integration.test_rtsp import FAST_INGEST
from tests.media import ColorBoxDetector
from tests.ui.test_ui import ARTIFACTS, CHROMIUM, playwright, wait_js

pytestmark = [
    pytest.mark.ui,
    pytest.mark.rtsp,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not installed (run .ci/setup)"),
]


@pytest.fixture
def served(
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
) -> Iterator[tuple[str, Any, str]]:
    server = rtsp_server({"/cam": "test:320x240@10:10"})
    rules = [{"analyzer": "illegal_parking", "min_dwell_s": 3, "confirm_s": 1, "max_gap_s": 4}]
    cfg = make_config([camera_dict(url=server.url("/cam"), rules=rules)], ingest=FAST_INGEST)
    running = compose.pipeline(cfg, detector=ColorBoxDetector(),
                               model_identity=ModelIdentity("colorbox", "0" * 64))  # fmt: skip
    running.start()
    app = compose.api(running.site, runtime=running.runtime)
    port = free_port()
    http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    assert wait_for(lambda: http.started, 10)
    token = create_token(running.site.store, "op-live", Role.OPERATOR, time.time())
    assert wait_for(lambda: running.runtime.cameras["cam1"].ring.span_s > 1.5, 20)
    yield f"http://127.0.0.1:{port}", running.runtime, token
    http.should_exit = True
    thread.join(10)
    running.stop(timeout=20)


def test_live_video_plays_and_advances_in_chromium(served: tuple[str, Any, str]) -> None:
    url, runtime, token = served
    pw = playwright.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    try:
        pages = []
        for _ in range(2):  # two operators watch the same camera
            page = browser.new_context(locale="zh-CN").new_page()
            page.goto(f"{url}/")
            page.fill("#token-input", token)
            page.click("#login-form button[type=submit]")
            page.goto(f"{url}/ui/#/cameras")
            page.wait_for_selector(".cams .panel .live-btn")
            page.click(".live-btn")
            pages.append(page)
        for page in pages:
            wait_js(page, "document.querySelector('video.live').readyState >= 2", timeout=15000)
            first = page.evaluate("document.querySelector('video.live').currentTime")
            wait_js(page, f"document.querySelector('video.live').currentTime > {first} + 1.5",
                    timeout=15000)  # fmt: skip
            size = page.evaluate("[document.querySelector('video.live').videoWidth,"
                                 " document.querySelector('video.live').videoHeight]")  # fmt: skip
            assert size == [320, 240]
        assert runtime.live.watching() == {"cam1": 2}  # one remux for both
        pages[0].screenshot(path=str(ARTIFACTS / "live-zh.png"))
        for page in pages:  # leaving the screen stops the video; the remux ends with the last
            page.goto(f"{url}/ui/#/queue")
        assert wait_for(lambda: runtime.live.watching() == {}, 10)
    finally:
        browser.close()
        pw.stop()
