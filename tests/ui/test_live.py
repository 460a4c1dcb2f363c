"""Live video and camera integrity in a real browser, against a running pipeline watching a
real GStreamer RTSP server on 127.0.0.1: the live video plays through Media Source Extensions
in Chromium and advances (two viewers share one remux); a stream whose view is shifted
becomes a camera_tamper event that the cameras screen shows and an integrator confirms."""

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
from pipeline.store.repository import EventQuery, EventRow, EventStore
from tests.conftest import RtspServer, camera_dict, free_port, wait_for
from tests.integration.test_integrity_replay import WIDE
from tests.integration.test_rtsp import FAST_INGEST
from tests.media import ColorBoxDetector, Scene, to_annexb, write_h264
from tests.ui.test_ui import ARTIFACTS, CHROMIUM, playwright, wait_js
from tests.unit.test_integrity import shifted

pytestmark = [
    pytest.mark.ui,
    pytest.mark.rtsp,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not installed (run .ci/setup)"),
]


def turned_camera(t: float) -> Any:
    """A street view, turned 6 s in (loops every 60 s)."""
    img = WIDE if t < 6 else shifted(WIDE, 90)
    return img[::4, ::4].copy()  # 320 × 180


@pytest.fixture
def served(
    request: pytest.FixtureRequest,
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
    tmp_path: Any,
) -> Iterator[tuple[str, Any, str, Role]]:
    if getattr(request, "param", "test") == "turned":
        scene = Scene(width=320, height=180, fps=10, duration_s=60, gop=10)
        mp4 = write_h264(tmp_path / "turned.mp4", scene, render=turned_camera)
        source, role = f"file:{to_annexb(mp4, tmp_path / 'turned.h264')}@10", Role.INTEGRATOR
    elif getattr(request, "param", "test") == "h265":  # as most cameras sold in China send
        source, role = "test:320x240@10:10:h265", Role.OPERATOR
    else:
        source, role = "test:320x240@10:10", Role.OPERATOR
    server = rtsp_server({"/cam": source})
    rules = [{"analyzer": "illegal_parking", "min_dwell_s": 3, "confirm_s": 1, "max_gap_s": 4}]
    cfg = make_config([camera_dict(url=server.url("/cam"), rules=rules)], ingest=FAST_INGEST,
                      integrity={"every_s": 1, "hold_s": 3})  # fmt: skip
    running = compose.pipeline(cfg, detector=ColorBoxDetector(),
                               model_identity=ModelIdentity("colorbox", "0" * 64))  # fmt: skip
    running.start()
    app = compose.api(running.site, runtime=running.runtime)
    port = free_port()
    http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    assert wait_for(lambda: http.started, 10)
    token = create_token(running.site.store, "ui-live", role, time.time())
    assert wait_for(lambda: running.runtime.cameras["cam1"].ring.span_s > 1.5, 20)
    yield f"http://127.0.0.1:{port}", running.runtime, token, role
    http.should_exit = True
    thread.join(10)
    running.stop(timeout=20)


def cameras_screen(browser: Any, url: str, token: str, ready: str) -> Any:
    """A new signed-in page on the cameras screen, once ``ready`` is there."""
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(f"{url}/")
    page.fill("#token-input", token)
    page.click("#login-form button[type=submit]")
    page.goto(f"{url}/ui/#/cameras")
    page.wait_for_selector(ready)
    return page


@pytest.mark.parametrize("served", ["test", "h265"], indirect=True)
def test_live_video_plays_and_advances_in_chromium(served: tuple[str, Any, str, Role]) -> None:
    """H.264 is remuxed; H.265, which MSE does not play everywhere, arrives as an H.264 copy
    (without it Chromium refused the stream: checked)."""
    url, runtime, token, _ = served
    pw = playwright.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    try:
        pages = []
        for _ in range(2):  # two operators watch the same camera
            page = cameras_screen(browser, url, token, ".cams .panel .live-btn")
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


def test_a_screen_that_answers_late_does_not_replace_the_one_chosen_after_it(
    served: tuple[str, Any, str, Role],
) -> None:
    # Signing in shows the queue; the operator goes straight on to the cameras while the
    # queue's cases are still on their way. When they arrive, the cameras stay on screen.
    url, _, token, _ = served
    pw = playwright.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    try:
        page = browser.new_context(locale="zh-CN").new_page()
        late: list[Any] = []
        page.route("**/cases?*", lambda route: late.append(route))  # held back
        page.goto(f"{url}/")
        page.fill("#token-input", token)
        page.click("#login-form button[type=submit]")
        for _ in range(100):  # Playwright calls its route handler only while it is waited on
            if late:
                break
            page.wait_for_timeout(100)
        assert late  # the queue asked for its cases
        page.evaluate("location.hash = '#/cameras'")
        page.wait_for_selector(".cams .panel .live-btn")
        for route in late:
            route.continue_()  # the queue's answer, late
        page.wait_for_timeout(1500)
        assert page.locator(".cams .panel .live-btn").count() == 1
    finally:
        browser.close()
        pw.stop()


@pytest.mark.parametrize("served", ["turned"], indirect=True)
def test_a_turned_rtsp_camera_is_shown_and_confirmed(served: tuple[str, Any, str, Role]) -> None:
    url, runtime, token, _ = served
    store: EventStore = runtime.store

    def tamper_rows() -> list[EventRow]:
        rows, _ = store.query_events(EventQuery(event_type="camera_tamper"))
        return rows

    assert wait_for(lambda: len(tamper_rows()) == 1, 40)  # turned at 6 s, 3 s hold
    assert runtime.view_state("cam1") == "moved"
    pw = playwright.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    try:
        page = cameras_screen(browser, url, token, ".cams .panel .confirm-view")
        assert "画面: 移位" in page.locator(".cams .view").inner_text()
        page.screenshot(path=str(ARTIFACTS / "cameras-tamper-zh.png"))
        page.click(".confirm-view")
        wait_js(page, "document.querySelector('.view-ok') !== null", timeout=10000)
    finally:
        browser.close()
        pw.stop()
    assert wait_for(lambda: tamper_rows()[0].state == "ended", 10)
    (row,) = tamper_rows()
    assert row.report["detection"]["end_reason"] == "confirmed"
    assert row.report["detection"]["view_problem"] == "moved"
