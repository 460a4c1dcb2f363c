"""Regression tests for the findings of issue 23, one (or more) per finding, numbered as there.

Each failed on the main of that day; together with tests/fuzz they keep the boundary closed.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import Role, create_token
from pipeline.casework.cases import CaseService
from pipeline.casework.outbox import HttpResult, Outbox, sign
from pipeline.config import parse_config
from pipeline.ops import compose
from pipeline.store.repository import EventQuery, EventStore
from pipeline.types import EventType
from tests.conftest import camera_dict
from tests.unit.test_cases import store_event

SECRETS = {"grid": b"grid-secret", "bins": b"bins-secret"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    client: TestClient
    app: FastAPI
    store: EventStore
    cases: CaseService
    outbox: Outbox
    clock: Clock
    tokens: dict[Role, str]
    toml: Path

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_site(tmp_path: Path, **api: Any) -> Site:
    clock = Clock()
    toml = tmp_path / "cameras.toml"
    raw = {"api": api, "subscribers": [
        {"id": "grid", "url": "http://127.0.0.1:9/x", "secret_env": "GRID_SECRET"},
        {"id": "bins", "url": "http://127.0.0.1:9/y", "secret_env": "BINS_SECRET",
         "event_types": ["bin_overflow"]},
    ], "cameras": [camera_dict(url="/dev/null")]}  # fmt: skip
    toml.write_text(tomlkit.dumps(raw), encoding="utf-8")
    cfg = parse_config(raw)
    env = {"GRID_SECRET": SECRETS["grid"].decode(), "BINS_SECRET": SECRETS["bins"].decode()}
    site = compose.installation(cfg, root=tmp_path, env=env, clock=clock, sending=True)
    site.outbox.post = lambda *_: HttpResult(200, None)  # the platforms answer 200
    app = compose.api(site, config_path=toml)
    tokens = {r: create_token(site.store, f"u-{r.value}", r, clock.now) for r in Role}
    return Site(TestClient(app), app, site.store, site.cases, site.outbox, clock, tokens, toml)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def signed(
    sub: str, body: dict[str, Any] | bytes, key: str, now: float, secret: bytes | None = None
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = int(now)
    return {"content": raw, "headers": {
        "X-Gridsight-Timestamp": str(ts), "Idempotency-Key": key,
        "X-Gridsight-Signature": sign(secret or SECRETS[sub], ts, key, raw),
        "Content-Type": "application/json"}}  # fmt: skip


def pushed_case(site: Site, event_id: str = "ev1", *, dispatch: bool = True) -> str:
    case = site.cases.on_event(store_event(site.store, event_id, site.clock.now))
    assert case is not None
    site.cases.act(case.case_id, "accept", "op1")
    if dispatch:
        site.cases.act(case.case_id, "dispatch", "op1")
    site.outbox.deliver_due()
    return case.case_id


# -- 1. callbacks act only on cases pushed to that subscriber, with platform actions ---------


def test_1_callback_cannot_bypass_review_or_reach_other_subscribers(site: Site) -> None:
    pending = site.cases.on_event(store_event(site.store, "ev0", site.clock.now))
    assert pending is not None and pending.state == "pending_review"
    for sub in ("grid", "bins"):  # never pushed to anyone: not even visible to a platform
        body = {"case_id": pending.case_id, "action": "accept", "actor": "x"}
        r = site.client.post(f"/callbacks/{sub}", **signed(sub, body, f"{sub}-1", site.clock.now))
        assert r.status_code == 403, r.text
    assert site.cases.get(pending.case_id).state == "pending_review"
    case_id = pushed_case(site)  # a fire-lane case: pushed to grid ("*"), not to bins
    body = {"case_id": case_id, "action": "respond", "actor": "x"}
    r = site.client.post("/callbacks/bins", **signed("bins", body, "b-2", site.clock.now))
    assert r.status_code == 403 and "not sent to subscriber 'bins'" in r.json()["detail"]
    for action in ("accept", "reject", "suspend"):  # review stays with the monitoring center
        body = {"case_id": case_id, "action": action, "actor": "x", "reason_code":
                "false_positive", "reason": "r"}  # fmt: skip
        r = site.client.post("/callbacks/grid", **signed("grid", body, f"g-{action}",
                                                          site.clock.now))  # fmt: skip
        assert r.status_code == 409 and "platform may not" in r.json()["detail"], action
    body = {"case_id": case_id, "action": "respond", "actor": "x"}
    r = site.client.post("/callbacks/grid", **signed("grid", body, "g-ok", site.clock.now))
    assert r.status_code == 200 and r.json()["state"] == "responded"


# -- 2. packages exported through the API of run/serve/cluster are signed --------------------


def test_2_every_serving_command_signs_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.ops.cli import _store_app

    monkeypatch.setenv("GRIDSIGHT_SIGNING_KEY", "k-123")
    cfg = parse_config({"evidence": {"root": str(tmp_path)}})
    app = _store_app(cfg, tmp_path, None)
    assert app.state.ctx.exporter.signing_key == b"k-123"


# -- 3. the signature covers the idempotency key: no replay under a new key ------------------


def test_3_replayed_callback_under_a_new_key_is_refused(site: Site) -> None:
    case_id = pushed_case(site)
    body = {"case_id": case_id, "action": "respond", "actor": "x"}
    req = signed("grid", body, "k1", site.clock.now)
    assert site.client.post("/callbacks/grid", **req).status_code == 200
    req["headers"] = {**req["headers"], "Idempotency-Key": "k2"}
    r = site.client.post("/callbacks/grid", **req)
    assert r.status_code == 401 and "signature" in r.json()["detail"]
    assert [h.action for h in site.cases.history(case_id)].count("respond") == 1
    site.clock.now += 301  # outside the window even the original key is refused
    req["headers"] = {**req["headers"], "Idempotency-Key": "k1"}
    assert site.client.post("/callbacks/grid", **req).status_code == 401


# -- 4. bodies: authenticated first, bounded -------------------------------------------------


def _asgi_post(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]):  # type: ignore[no-untyped-def]
    """Drive the ASGI app directly; returns (status, chunks the app pulled)."""
    pulled: list[bytes] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(pulled) < len(chunks):
            pulled.append(chunks[len(pulled)])
            return {"type": "http.request", "body": pulled[-1],
                    "more_body": len(pulled) < len(chunks)}  # fmt: skip
        await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1",
             "root_path": "", "app": app}  # fmt: skip
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent[0]["status"], pulled


def test_4_body_is_not_read_before_authentication_and_is_bounded(site: Site) -> None:
    big = [b"x" * 1_000_000] * 200  # 200 MB, streamed without a length
    for path in ("/tokens", "/cameras/cam1/geometry/validate"):
        status, pulled = _asgi_post(site.app, path, [], big)
        assert status == 401 and pulled == [], path
    status, pulled = _asgi_post(site.app, "/callbacks/grid", [], big)
    assert status == 401 and pulled == []  # no signature headers: not read either
    admin = [(b"authorization", f"Bearer {site.tokens[Role.ADMIN]}".encode())]
    status, pulled = _asgi_post(site.app, "/tokens", admin, big)
    assert status == 413 and len(pulled) <= 2  # stops at the limit (1 MB by default)
    declared = [*admin, (b"content-length", b"200000000")]
    status, pulled = _asgi_post(site.app, "/tokens", declared, big)
    assert status == 413 and pulled == []


# -- 5. the outbox never follows a redirect ---------------------------------------------------


def test_5_outbox_does_not_follow_redirects() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from pipeline.casework.outbox import http_post

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(f"POST {self.path}")
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            hits.append(f"GET {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = http_post(f"http://127.0.0.1:{port}/cases", b"{}", {}, 5.0)
    finally:
        server.shutdown()
    assert result.status == 302 and "not followed" in str(result.error)
    assert hits == ["POST /cases"]


def test_5_a_redirected_row_is_dead_lettered_not_delivered(site: Site) -> None:
    site.outbox.post = lambda *_: HttpResult(302, "HTTP 302 redirect to x not followed")
    pushed_case(site)
    site.outbox.deliver_due()
    assert site.outbox.counts() == {"dead": 2}  # nothing counted as delivered
    assert all("not followed" in str(r.last_error) for r in site.outbox.rows())


# -- 10, 16: malformed queries ------------------------------------------------------------------


def test_10_huge_offsets_and_infinite_times_are_422(site: Site) -> None:
    h = site.auth(Role.ADMIN)
    for url in ("/events?offset=99999999999999999999", "/cases?offset=99999999999999999999",
                "/events?since=1e999", "/events?until=nan"):  # fmt: skip
        assert site.client.get(url, headers=h).status_code == 422, url


def test_10_lone_surrogate_in_a_zone_name_is_422(site: Site) -> None:
    body = '{"zones": [{"id": "z", "kind": "walkway", "name": "\\ud800", "polygon": [[0,0],[1,0],[1,1]]}]}'
    for method, url in (("POST", "/cameras/cam1/geometry/validate"),
                        ("PUT", "/cameras/cam1/geometry")):  # fmt: skip
        r = site.client.request(method, url, content=body, headers={
            **site.auth(Role.INTEGRATOR), "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 422 and "surrogate" in r.text


def test_16_audit_prefix_treats_underscore_and_percent_literally(site: Site) -> None:
    h = site.auth(Role.ADMIN)
    site.client.get("/events", headers={"Authorization": "Bearer wrong"})  # one audit row
    assert site.client.get("/audit?target_prefix=client:", headers=h).json()
    for prefix in ("_", "%", "clien_"):
        assert site.client.get(f"/audit?target_prefix={prefix}", headers=h).json() == [], prefix


# -- 8. the zone editor's limits ----------------------------------------------------------------


def _geometry(site: Site, zones: list[dict[str, Any]]) -> int:
    r = site.client.post("/cameras/cam1/geometry/validate", json={"zones": zones},
                         headers=site.auth(Role.INTEGRATOR))  # fmt: skip
    return int(r.status_code)


def test_8_zone_editor_refuses_oversized_and_mistyped_geometry(site: Site) -> None:
    tri = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
    ok = {"id": "lane", "kind": "fire_lane", "polygon": tri}
    assert _geometry(site, [ok]) == 200
    assert _geometry(site, [{**ok, "id": f"z{i}"} for i in range(1000)]) == 422
    ring = [[0.5 + 0.4 * math.cos(i / 400), 0.5 + 0.4 * math.sin(i / 400)] for i in range(2513)]
    assert _geometry(site, [{**ok, "polygon": ring}]) == 422  # > 256 points
    assert _geometry(site, [{**ok, "name": "长" * 200}]) == 422
    assert _geometry(site, [{**ok, "name": "x" * 5_000_000}]) == 413
    assert _geometry(site, [{**ok, "polygon": [["0.1", 0.1], [0.9, 0.1], [0.5, 0.9]]}]) == 422
    assert _geometry(site, [{**ok, "polygon": [[True, 0.1], [0.9, 0.1], [0.5, 0.9]]}]) == 422
    before = site.toml.read_bytes()
    r = site.client.put("/cameras/cam1/geometry", headers=site.auth(Role.INTEGRATOR),
                        json={"zones": [{**ok, "polygon": [["0.1", "0.1"], [0.9, 0.1],
                                                           [0.5, 0.9]]}]})  # fmt: skip
    assert r.status_code == 422 and site.toml.read_bytes() == before


# -- 11. idempotency keys per subscriber; a reused key with another body is refused -----------


def test_11_idempotency_keys_are_per_subscriber_and_bound_to_the_body(site: Site) -> None:
    grid_case = pushed_case(site)
    bin_case = site.cases.on_event(store_event(site.store, "ev9", site.clock.now,
                                               etype=EventType.BIN_OVERFLOW, zone="bin1",
                                               severity="normal"))  # fmt: skip
    assert bin_case is not None
    site.cases.act(bin_case.case_id, "accept", "op1")
    site.cases.act(bin_case.case_id, "dispatch", "op1")
    site.outbox.deliver_due()
    a = {"case_id": grid_case, "action": "respond", "actor": "x"}
    b = {"case_id": bin_case.case_id, "action": "respond", "actor": "y"}
    assert site.client.post("/callbacks/grid", **signed("grid", a, "same", site.clock.now)).json()[
        "state"] == "responded"  # fmt: skip
    r = site.client.post("/callbacks/bins", **signed("bins", b, "same", site.clock.now))
    assert r.status_code == 200 and r.json() == {"case_id": bin_case.case_id,
                                                 "state": "responded"}  # fmt: skip
    other = {**a, "action": "return", "reason": "not ours"}
    r = site.client.post("/callbacks/grid", **signed("grid", other, "same", site.clock.now))
    assert r.status_code == 422 and "another body" in r.json()["detail"]
    assert site.cases.get(grid_case).state == "responded"


# -- 14. tokens: lifetime, revocation reaches streams, lockout, audited failures, reuse --------


def test_14_tokens_expire(site: Site) -> None:
    h = site.auth(Role.OPERATOR)
    assert site.client.get("/cases", headers=h).status_code == 200
    site.clock.now += 90 * 86400 + 1
    r = site.client.get("/cases", headers=h)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_14_revoked_token_ends_its_stream(site: Site) -> None:
    from api.auth import revoke_token

    h = site.auth(Role.OPERATOR)
    revoke_after = 0

    def revoke_soon() -> None:
        nonlocal revoke_after
        time.sleep(0.5)
        revoke_token(site.store, "u-operator", site.clock.now)
        revoke_after = 1

    import threading

    threading.Thread(target=revoke_soon, daemon=True).start()
    t0 = time.monotonic()
    with site.client.stream("GET", "/cases/stream?timeout_s=60", headers=h) as r:
        text = "".join(r.iter_text())
    assert revoke_after and time.monotonic() - t0 < 15
    assert "token revoked or expired" in text


def test_14_failures_are_audited_and_lock_the_client_out(tmp_path: Path) -> None:
    site = make_site(tmp_path, max_auth_failures=3, lockout_s=60)
    for _ in range(3):
        assert (
            site.client.get("/cases", headers={"Authorization": "Bearer guess"}).status_code == 401
        )
    r = site.client.get("/cases", headers=site.auth(Role.OPERATOR))  # even a good token waits
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    with site.store.reader() as db:
        rows = db.execute("SELECT action, target FROM audit_log").fetchall()
    assert rows == [("auth_failed", "client:testclient")] * 3
    site.clock.now += 61
    assert site.client.get("/cases", headers=site.auth(Role.OPERATOR)).status_code == 200


def test_14_a_revoked_name_can_be_given_again(site: Site) -> None:
    h = site.auth(Role.ADMIN)
    new = {"name": "u-operator", "role": "operator"}
    assert site.client.post("/tokens", headers=h, json=new).status_code == 409  # still active
    assert site.client.post("/tokens/u-operator/revoke", headers=h).status_code == 200
    made = site.client.post("/tokens", headers=h, json=new)
    assert made.status_code == 200 and made.json()["expires_at"] > site.clock.now
    assert site.client.get("/cases", headers={"Authorization": f"Bearer {made.json()['token']}"}
                           ).status_code == 200  # fmt: skip


# -- 15. headers, exposure warning, file modes -------------------------------------------------


def test_15_security_headers(site: Site) -> None:
    for url in ("/ui/", "/healthz", "/cases"):
        r = site.client.get(url)
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]


def test_15_check_warns_about_an_open_unauthenticated_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.ops.cli import main

    toml = tmp_path / "cameras.toml"
    toml.write_text('[api]\nhost = "0.0.0.0"\nauth = false\n', encoding="utf-8")
    assert main(["check", "--no-env", str(toml)]) == 0
    assert "anyone who can reach port" in capsys.readouterr().out


def test_15_database_and_evidence_are_not_world_readable(tmp_path: Path) -> None:
    from pipeline.evidence.storage import LocalStorage

    old = os.umask(0o022)  # a permissive umask: the modes must not depend on it
    try:
        EventStore(tmp_path / "g.db")
        LocalStorage(tmp_path).put("cam1/20260101/e1/alert.jpg", b"jpeg")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "g.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cam1/20260101/e1/alert.jpg").stat().st_mode) == 0o640


# -- 17. a resumed replay ends what the killed one left open, and sweeps its files -----------


def test_17_resumed_replay_closes_old_events_and_sweeps_unindexed_files(tmp_path: Path) -> None:
    from pipeline.evidence.report import ModelIdentity
    from pipeline.ops.replay import replay
    from tests.integration.test_replay import SCENE, START, config
    from tests.media import ScriptedDetector, write_h264

    replay_dir = tmp_path / "out"
    cfg = config(replay_dir)
    store = EventStore(replay_dir / "gridsight.db")
    store_event(store, "left-open", START - 100)  # a killed replay's open event
    orphan = replay_dir / "cam1" / "20260101" / "x" / "clip.mp4"
    partial = replay_dir / "cam1" / "20260101" / "x" / ".clip.mp4.1234abcd.tmp"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"clip the killed run never indexed")
    partial.write_bytes(b"half")
    video = write_h264(replay_dir.parent / "scene.mp4", SCENE)
    replay(video, cfg, "cam1", replay_dir, start_time_s=START, detector=ScriptedDetector(SCENE),
           model_identity=ModelIdentity("scripted", "0" * 64), progress=False)  # fmt: skip
    row = store.get_event("left-open")
    assert row is not None and row.ended_at is not None and row.closed_reason == "restarted"
    assert not orphan.exists() and not partial.exists()
    with store.reader() as db:
        swept = db.execute(
            "SELECT target FROM audit_log WHERE action = 'sweep_unindexed' ORDER BY target"
        ).fetchall()
    assert [r[0] for r in swept] == [
        "file:cam1/20260101/x/.clip.mp4.1234abcd.tmp",
        "file:cam1/20260101/x/clip.mp4",
    ]
    rows, _ = store.query_events(EventQuery())
    indexed = [rel for r in rows for _, rel, _ in store.evidence_for(r.event_id)]
    assert indexed and all((replay_dir / rel).is_file() for rel in indexed)
