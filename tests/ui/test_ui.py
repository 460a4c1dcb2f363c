"""The monitoring-center UI in a real browser (Playwright + Debian's Chromium) against a running
server whose events come from a real replay. Screenshots of each screen are kept as artefacts
in ``test-artifacts/ui/``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.auth import Role, create_token
from pipeline.casework.cases import CaseService
from pipeline.store.repository import EventQuery, EventStore
from pipeline.types import EventType
from tests.api.test_api import replayed_app
from tests.conftest import REPO, free_port, wait_for
from tests.media import write_h265
from tests.unit.test_cases import store_event


def wait_js(page: Any, expr: str, timeout: float = 5000) -> None:
    """Poll ``expr`` in the page until it is truthy. Playwright's ``wait_for_function``
    evaluates its predicate with eval(), which the UI's Content-Security-Policy forbids (as it
    should): the page is tested under the policy it ships with."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expr):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout:.0f} ms: {expr}")
        time.sleep(0.05)


CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "ui"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not installed (run .ci/setup)"),
]


@dataclass
class Site:
    url: str
    store: EventStore
    cases: CaseService
    operator: str
    clip_case: str
    app: Any
    config_path: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    app, store = replayed_app(tmp_path_factory.mktemp("ui"))
    cases: CaseService = app.state.ctx.cases
    [ev], _ = store.query_events(EventQuery(event_type="fire_lane_occupation"))
    clip_case = cases.case_of_event(ev.event_id)
    assert clip_case is not None
    cases.on_event(
        store_event(
            store,
            "bin-1",
            time.time(),
            etype=EventType.BIN_OVERFLOW,
            zone="bin7",
            severity="normal",
        )
    )
    token = create_token(store, "op-ui", Role.OPERATOR, time.time())
    with serving(app) as url:
        yield Site(url, store, cases, token, clip_case, app, app.state.ctx.editor.path)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app behind a real HTTP server on a free loopback port: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_h265_cameras_clip_plays_through_its_h264_copy(tmp_path: Path) -> None:
    """Browsers do not play H.265, which most cameras in China send: the UI plays the H.264
    copy derived from the clip."""
    app, store = replayed_app(tmp_path, write_h265)
    [ev], _ = store.query_events(EventQuery(event_type="fire_lane_occupation"))
    case_id = app.state.ctx.cases.case_of_event(ev.event_id)
    token = create_token(store, "op-265", Role.OPERATOR, time.time())
    with serving(app) as url:
        pw = playwright.sync_playwright().start()
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            pg = browser.new_page()
            fetched: list[str] = []
            pg.on("request", lambda r: fetched.append(r.url))
            pg.goto(f"{url}/")
            pg.fill("#token-input", token)
            pg.click("#login-form button[type=submit]")
            pg.goto(f"{url}/ui/#/case/{case_id}")
            wait_js(pg, "document.querySelector('#clip')?.readyState >= 1", timeout=15000)
            assert pg.evaluate("document.querySelector('#clip').videoWidth") == 320
            assert any(u.endswith("/clip-preview.mp4") for u in fetched)
            assert not any(u.endswith("/clip.mp4") for u in fetched)
        finally:
            browser.close()
            pw.stop()


def reviewed(site: Site) -> None:
    """What the review-queue test leaves on the site, for the tests that build on it when run
    without it (``-k``): the replayed fire-lane case accepted by op-ui, and a second fire-lane
    event (lane-2) still open. In the file's order it is there already and nothing is done."""
    if not any(h.actor == "op-ui" for h in site.cases.history(site.clip_case)):
        site.cases.act(site.clip_case, "accept", "op-ui")
    if site.store.get_event("lane-2") is None:
        site.cases.on_event(store_event(site.store, "lane-2", time.time(), zone="lane2"))


def dispatched(site: Site) -> None:
    """What the event-detail test leaves: the replayed case dispatched to the property."""
    reviewed(site)
    if site.cases.get(site.clip_case).assignee != "property":
        site.cases.act(site.clip_case, "dispatch", "op-ui")


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[object]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pw = playwright.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    pg = ctx.new_page()
    blocked: list[str] = []  # the UI must work under its own Content-Security-Policy
    pg.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text
          else None)  # fmt: skip
    pg.goto(f"{site.url}/")
    pg.fill("#token-input", site.operator)
    pg.click("#login-form button[type=submit]")
    yield pg
    browser.close()
    pw.stop()
    assert not blocked, blocked


def test_review_queue_with_keyboard_and_live_updates(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector("#queue tr.row")
    assert page.locator("#queue tr.row").count() == 2
    assert page.locator("h1").inner_text() == "gridsight 社区网格事件"
    first = page.locator("#queue tr.row").first
    assert "占用消防通道" in first.inner_text() and "紧急" in first.inner_text()  # urgent first
    assert "审核" in first.locator(".sla").inner_text()  # review countdown
    wait_js(page, "document.querySelector('#live').dataset.on === '1'")
    # the replayed event's alert snapshot as a picture in its row; the bin (stored without
    # files) has none
    wait_js(page, "document.querySelector('#queue tr.row td.thumb img')?.naturalWidth === 240")
    assert page.locator("#queue td.thumb img").count() == 1
    page.screenshot(path=str(ARTIFACTS / "queue-zh.png"))
    page.keyboard.press("a")  # accept the selected (first) event
    wait_js(page, "document.querySelectorAll('#queue tr.row').length === 1")
    assert site.cases.get(site.clip_case).state == "reported"
    assert site.cases.history(site.clip_case)[-1].actor == "op-ui"
    # a new detection arrives: the queue updates itself (server-sent events), no reload
    site.cases.on_event(store_event(site.store, "lane-2", time.time(), zone="lane2"))
    wait_js(page, "document.querySelectorAll('#queue tr.row').length === 2", timeout=10000)
    # it is urgent (fire lane): announced once, with a sound (and a notification if allowed)
    wait_js(page, "document.body.dataset.urgentAlerts === '1'")
    page.keyboard.press("n")  # next row: the bin
    assert "垃圾满溢" in page.locator("#queue tr.selected").inner_text()
    page.keyboard.press("r")
    page.select_option("#reject-code", "duplicate")
    page.click("#reject-ok")
    wait_js(page, "document.querySelectorAll('#queue tr.row').length === 1")
    bin_case = site.cases.case_of_event("bin-1")
    assert bin_case is not None
    last = site.cases.history(bin_case)[-1]
    assert (last.action, last.reason_code) == ("reject", "duplicate")


def test_event_detail_plays_seeks_and_draws_overlays(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    reviewed(site)
    page.goto(f"{site.url}/ui/#/case/{site.clip_case}")
    wait_js(page, "document.querySelector('#clip')?.readyState >= 1", timeout=15000)
    duration = page.evaluate("document.querySelector('#clip').duration")
    assert duration > 6
    t = page.evaluate("""() => new Promise((resolve) => {
        const v = document.querySelector('#clip');
        v.addEventListener('seeked', () => resolve(v.currentTime), { once: true });
        v.currentTime = 4.0; })""")
    assert abs(t - 4.0) < 0.5
    wait_js(page, "document.querySelector('#overlay')?.dataset.drawn === '1'")
    painted = page.evaluate("""() => { const c = document.querySelector('#overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert painted > 500  # zone outline and vehicle box
    page.screenshot(path=str(ARTIFACTS / "detail-zh.png"))
    page.uncheck("#show-overlay")
    assert page.evaluate("getComputedStyle(document.querySelector('#overlay')).display") == "none"
    history = page.locator("#history li")
    assert history.count() >= 2 and "op-ui" in history.last.inner_text()
    # an operator may dispatch but not export: the refusal is shown, not hidden
    page.click("[data-act=dispatch]")
    wait_js(page, "document.querySelector('#case-state')?.innerText === '已派遣'")
    assert site.cases.get(site.clip_case).assignee == "property"
    page.once("dialog", lambda d: d.accept("移交"))
    page.click("#export")
    wait_js(page, "document.querySelector('#msg')?.innerText.length > 0")
    assert "无权" in page.locator("#msg").inner_text()


def test_scene_view_and_dashboard(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    dispatched(site)
    page.goto(f"{site.url}/ui/#/scene")
    wait_js(page, "document.querySelector('#scenes canvas')?.dataset.drawn === '1'")
    assert page.locator("#scenes .panel").count() == 1
    grids = page.locator("#grids tbody").inner_text()
    assert "占用消防通道" in grids  # the open cases of this site, by grid
    page.screenshot(path=str(ARTIFACTS / "scene-zh.png"))
    page.goto(f"{site.url}/ui/#/dashboard")
    page.wait_for_selector("#sla-compliance")
    assert page.locator("#per-day .bar").count() >= 1
    # one case was dispatched (detail test) and has not breached its deadline yet
    assert page.locator("#sla-compliance").inner_text() == "100%"
    page.screenshot(path=str(ARTIFACTS / "dashboard-zh.png"))


def test_language_switch_and_cameras(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/ui/#/cameras")
    page.wait_for_selector(".cams .panel")
    assert "online" in page.locator(".cams").inner_text().lower()
    assert page.locator(".cams .decoder").inner_text() == "解码 cpu"  # where it is decoded
    # state history: a strip of segments (connecting, online) and the 24 h uptime
    wait_js(page, "document.querySelectorAll('.timebar .seg').length === 2")
    assert "97%" in page.locator(".uptime").inner_text()
    # the camera was turned: its view shows red and its rules wait for an integrator
    assert "画面: 移位" in page.locator(".cams .view").inner_text()
    assert "规则已暂停" in page.locator(".cams").inner_text()
    page.screenshot(path=str(ARTIFACTS / "cameras-zh.png"))
    page.click("#lang")
    assert page.locator("h1").inner_text() == "gridsight community events"
    assert page.locator("nav").inner_text().split()[:2] == ["Review", "queue"]
    # the screen re-renders after its data arrive: wait for it, do not race it
    wait_js(page, "document.querySelector('main h2')?.innerText.includes('Camera health')")
    page.screenshot(path=str(ARTIFACTS / "cameras-en.png"))
    page.goto(f"{site.url}/ui/#/queue")
    wait_js(page, "document.querySelector('main h2')?.innerText.includes('Events awaiting review')")
    page.screenshot(path=str(ARTIFACTS / "queue-en.png"))
    page.click("#lang")
    assert page.locator("h1").inner_text() == "gridsight 社区网格事件"
    # a laptop screen: the queue fits the width (no sideways scrolling)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{site.url}/ui/#/queue")
    page.wait_for_selector("#queue")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    page.screenshot(path=str(ARTIFACTS / "queue-laptop-zh.png"))
    page.set_viewport_size({"width": 1920, "height": 1080})


def test_search_and_replay_with_before_after(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    reviewed(site)
    # events still open now look as if their worker had been lost: the store ends them
    lost = site.store.end_open_events(["cam1"], time.time(), "worker_lost")
    assert lost
    page.goto(f"{site.url}/ui/#/search")
    page.wait_for_selector("#results tr.row")
    page.select_option("#search-form select[name=type]", "fire_lane_occupation")
    page.click("#search-form button[type=submit]")
    wait_js(
        page,
        "[...document.querySelectorAll('#results tr.row')].every(r => r.innerText.includes('占用消防通道'))",
    )
    rows = page.locator("#results tr.row")
    assert rows.count() >= 1
    states = [rows.nth(i).locator("td").nth(4).inner_text() for i in range(rows.count())]
    assert "已结束" in states  # the replayed event, ended by its analyzer
    assert "已结束 · 分析节点失联，由系统结束" in states
    # a time window that ends before anything happened finds nothing
    page.fill("#search-form input[name=to]", "2001-01-01T00:00")
    page.click("#search-form button[type=submit]")
    wait_js(page, "document.querySelectorAll('#results tr.row').length === 0")
    page.fill("#search-form input[name=to]", "")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results tr.row")
    page.locator("#results tr.row").last.click()  # the replayed fire-lane event (oldest)
    wait_js(page, "document.querySelector('#clip')?.readyState >= 1", timeout=15000)
    wait_js(page, "document.querySelector('#overlay')?.dataset.drawn === '1'")
    wait_js(page, "document.querySelector('#before')?.naturalWidth > 0")
    assert page.locator("#replay a").count() == 1  # link to its case
    assert page.locator("#no-after").inner_text() == "暂无"  # not re-checked yet
    page.screenshot(path=str(ARTIFACTS / "search-zh.png"))


def test_zone_editor_draws_validates_saves_and_applies(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    token = create_token(site.store, "int-ui", Role.INTEGRATOR, time.time())
    page.click("#logout")
    page.fill("#token-input", token)
    page.click("#login-form button[type=submit]")
    page.goto(f"{site.url}/ui/#/zones")
    wait_js(page, "document.querySelector('#ed-canvas')?.dataset.drawn === '1'")
    box = page.locator("#ed-canvas").bounding_box()

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    # a bow-tie: the server refuses it and says where
    page.click("#ed-new")
    for x, y in [(0.05, 0.05), (0.3, 0.3), (0.3, 0.05), (0.05, 0.3)]:
        page.mouse.click(*at(x, y))
    page.click("#ed-finish")
    wait_js(page, "document.querySelector('#ed-canvas').dataset.drawn === '2'")
    page.click("#ed-validate")
    page.wait_for_selector("#ed-issues li")
    assert "zones[1].polygon" in page.locator("#ed-issues").inner_text()
    page.locator("#ed-zones [data-del='1']").click()
    # a proper walkway, closed by clicking its first point
    page.click("#ed-new")
    for x, y in [(0.05, 0.05), (0.4, 0.05), (0.4, 0.3), (0.05, 0.3), (0.05, 0.05)]:
        page.mouse.click(*at(x, y))
    wait_js(page, "document.querySelector('#ed-canvas').dataset.drawn === '2'")
    page.locator("#ed-zones .ed-row[data-i='1'] select[data-f=kind]").select_option("walkway")
    page.locator("#ed-zones .ed-row[data-i='1'] input[data-f=id]").fill("walk_north")
    page.locator("#ed-zones .ed-row[data-i='1'] input[data-f=id]").dispatch_event("change")
    # drag the fire lane's first corner (0.2, 0.5) to (0.15, 0.45)
    page.locator("#ed-zones [data-pick='0']").check()
    page.mouse.move(*at(0.2, 0.5))
    page.mouse.down()
    page.mouse.move(*at(0.15, 0.45), steps=5)
    page.mouse.up()
    page.click("#ed-validate")
    wait_js(page, "document.querySelector('#ed-msg').innerText === '校验通过'")
    page.screenshot(path=str(ARTIFACTS / "zones-zh.png"))
    page.click("#ed-save")
    wait_js(page, "document.querySelector('#ed-msg').innerText.startsWith('已保存')")
    assert "已应用" in page.locator("#ed-msg").inner_text()
    cam = site.app.state.ctx.cameras.get("cam1")
    walk = cam.zones[1]
    assert (walk.id, walk.kind.value) == ("walk_north", "walkway")
    assert walk.polygon[1] == pytest.approx((0.4, 0.05), abs=0.01)
    assert cam.zones[0].polygon[0] == pytest.approx((0.15, 0.45), abs=0.01)
    text = site.config_path.read_text(encoding="utf-8")
    assert "walk_north" in text and text.startswith("# integrator's notes stay")
    # a façade calibration is checked against a real camera, and the editor says so
    page.locator("#ed-zones .ed-row[data-i='1'] select[data-f=kind]").select_option("facade")
    page.click("#ed-new-facade")
    page.click("#ed-validate")
    wait_js(page, "document.querySelector('#ed-issues').innerText.includes('相机拟合')")
    fit = page.locator("#ed-issues").inner_text()
    assert "facade_1" in fit and ("camera fits" in fit or "no pinhole camera fits" in fit)
    # the lens's field of view from the data sheet, where known, is what the camera is solved
    # with; emptied again, it is not given (not a 0° lens)
    lens = page.locator("#ed-facades .ed-row[data-i='0'] input[data-f=hfov_deg]")
    lens.fill("40")
    lens.dispatch_event("change")
    page.click("#ed-validate")
    wait_js(page, "/40° lens|lens as given/.test(document.querySelector('#ed-issues').innerText)")
    lens.fill("")
    lens.dispatch_event("change")
    page.click("#ed-validate")
    wait_js(page, "!/40° lens|lens as given/.test(document.querySelector('#ed-issues').innerText)")
    assert "相机拟合" in page.locator("#ed-issues").inner_text()
    # unsaved drawing survives a language switch
    page.click("#ed-new")
    for x, y in [(0.6, 0.05), (0.9, 0.05), (0.9, 0.3)]:
        page.mouse.click(*at(x, y))
    page.click("#ed-finish")
    page.click("#lang")
    wait_js(page, "document.querySelector('#ed-save')?.innerText === 'Save & apply'")
    wait_js(page, "document.querySelector('#ed-canvas')?.dataset.drawn === '3'")
    assert page.locator("#ed-dirty").inner_text() == "Unsaved changes"
    page.screenshot(path=str(ARTIFACTS / "zones-en.png"))
    page.click("#lang")
    # with the zones redrawn for the turned camera, the integrator confirms its view
    page.goto(f"{site.url}/ui/#/cameras")
    page.wait_for_selector(".cams .panel .confirm-view")
    page.click(".confirm-view")
    wait_js(page, "document.querySelector('.view-ok') !== null")
    assert "正常" in page.locator(".cams .view").inner_text()
    assert "画面晃动 ±2.4 px" in page.locator(".cams .sway").inner_text()  # the camera sways
    assert site.app.state.ctx.runtime.confirmed == ["cam1"]


def test_a_person_signs_in_with_name_and_password_and_csrf_guards_writes(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    from api.auth import hash_password
    from pipeline.store.access import put_user

    put_user(site.store, "carol", hash_password("correct horse battery"), "operator", None,
             time.time())  # fmt: skip
    ctx = page.context.browser.new_context(locale="zh-CN")  # a browser without the token
    try:
        page = ctx.new_page()
        page.goto(f"{site.url}/")
        page.fill("#name-input", "carol")
        page.fill("#password-input", "wrong password!")
        page.click("#login-form button[type=submit]")
        wait_js(page, "document.querySelector('#login-error').innerText === '用户名或密码错误'")
        page.fill("#password-input", "correct horse battery")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#queue")
        # the session is an HttpOnly cookie: scripts cannot read it
        assert "gs_session" not in page.evaluate("document.cookie")
        body = "JSON.stringify({action: 'suspend', reason: 'test'})"
        url = f"/cases/{site.clip_case}/actions"
        forged = page.evaluate(  # what a forged form or script would send: no CSRF token
            f"fetch('{url}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},"
            f" body: {body}}}).then((r) => r.status)"
        )
        assert forged == 403
        # the UI's own request carries the session's token (a reload finds the session again)
        page.reload()
        page.wait_for_selector("#queue")
        status = page.evaluate(f"api('{url}', {{method: 'POST', json: {{action: 'suspend', "
                               f"reason: 'test'}}}}).then((r) => r.status)")  # fmt: skip
        assert status in (200, 409)  # accepted, or not allowed in the case's state: not refused
        page.click("#logout")
        wait_js(page, "document.querySelector('#login').open === true")
        assert page.evaluate("fetch('/cases').then((r) => r.status)") == 401
    finally:
        ctx.close()


def test_users_of_two_grids_see_only_their_own_cameras_and_cases(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    from api.auth import hash_password
    from pipeline.store.access import TokenScope, put_user

    now = time.time()
    put_user(site.store, "wy-own", hash_password("correct horse battery"), "operator",
             TokenScope(cameras=("cam1",)), now)  # fmt: skip
    put_user(site.store, "wy-other", hash_password("correct horse battery"), "operator",
             TokenScope(grids=("G-OTHER",)), now)  # fmt: skip
    seen = {}
    for name in ("wy-own", "wy-other"):
        ctx = page.context.browser.new_context(locale="zh-CN")
        try:
            p = ctx.new_page()
            p.goto(f"{site.url}/")
            p.fill("#name-input", name)
            p.fill("#password-input", "correct horse battery")
            p.click("#login-form button[type=submit]")
            p.wait_for_selector("#queue")
            p.goto(f"{site.url}/ui/#/cases")
            wait_js(p, "document.querySelector('main h2')?.innerText.includes('全部案件')")
            p.wait_for_selector("#queue tbody tr")
            cases = p.locator("#queue tr.row").count()
            p.goto(f"{site.url}/ui/#/cameras")
            wait_js(p, "document.querySelector('main h2')?.innerText.includes('摄像机状态')")
            seen[name] = (cases, p.locator(".cams .panel").count())
        finally:
            ctx.close()
    assert seen["wy-own"][0] >= 1 and seen["wy-own"][1] == 1
    assert seen["wy-other"] == (0, 0)  # another grid: no camera, no case


def test_the_queue_as_cards_with_pictures_and_keys(site: Site, page) -> None:  # type: ignore[no-untyped-def]
    page.click("#logout")  # the zone editor's test signed in as an integrator
    page.fill("#token-input", site.operator)
    page.click("#login-form button[type=submit]")
    page.goto(f"{site.url}/ui/#/cases")
    page.wait_for_selector("#queue .row")
    rows = page.locator("#queue .row").count()
    page.click("#view-toggle")
    page.wait_for_selector("#queue.cards .card")
    assert page.locator("#queue .card").count() == rows >= 2
    # the replayed case's alert snapshot on its card
    wait_js(
        page,
        "[...document.querySelectorAll('#queue .card img')].some((i) => i.naturalWidth === 240)",
    )
    first = page.locator("#queue .card.selected").get_attribute("data-i")
    page.keyboard.press("n")  # the same keys move through the cards
    assert page.locator("#queue .card.selected").get_attribute("data-i") != first
    page.screenshot(path=str(ARTIFACTS / "queue-cards-zh.png"))
    page.click("#view-toggle")  # back to the table for the other tests (kept per browser)
    page.wait_for_selector("table#queue")
