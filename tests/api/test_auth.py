"""Every route × every role; the audit log; signed platform callbacks driving a case."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.auth import Role, create_token
from pipeline.casework.outbox import HttpResult, sign
from pipeline.config import parse_config
from pipeline.ops import compose
from pipeline.store.repository import EventStore
from tests.unit.test_cases import store_event

ALL = {Role.OPERATOR, Role.ANALYST, Role.INTEGRATOR}
VIEW = {Role.OPERATOR, Role.ANALYST}
# The access policy, written out: a new route must be added here to pass.
POLICY: dict[tuple[str, str], set[Role] | None] = {
    ("GET", "/healthz"): None,  # public liveness
    ("GET", "/schemas/event-report-v1.json"): None,  # public contract
    ("GET", "/metrics"): ALL,
    ("GET", "/cameras"): ALL,
    ("GET", "/cameras/{camera_id}/health"): ALL,
    ("GET", "/cameras/{camera_id}/snapshot.jpg"): ALL,
    ("GET", "/cameras/{camera_id}/health/history"): ALL,
    ("GET", "/cameras/{camera_id}/live.mp4"): ALL,
    ("GET", "/cameras/{camera_id}/geometry"): {Role.INTEGRATOR},
    ("GET", "/cameras/{camera_id}/activity.jpg"): {Role.INTEGRATOR},
    ("POST", "/cameras/{camera_id}/geometry/validate"): {Role.INTEGRATOR},
    ("PUT", "/cameras/{camera_id}/geometry"): {Role.INTEGRATOR},
    ("POST", "/cameras/{camera_id}/view/confirm"): {Role.INTEGRATOR},
    ("GET", "/events"): VIEW,
    ("GET", "/events/{event_id}"): VIEW,
    ("GET", "/events/{event_id}/clip.mp4"): VIEW,
    ("GET", "/events/{event_id}/clip-preview.mp4"): VIEW,
    ("GET", "/events/{event_id}/snapshot.jpg"): VIEW,
    ("GET", "/events/{event_id}/thumb.jpg"): VIEW,
    ("GET", "/cases"): VIEW,
    ("GET", "/cases/review-stats"): VIEW,
    ("GET", "/cases/stream"): VIEW,
    ("GET", "/cases/{case_id}"): VIEW,
    ("GET", "/cases/{case_id}/after.jpg"): VIEW,
    ("POST", "/cases/{case_id}/actions"): {Role.OPERATOR},
    ("POST", "/cases/{case_id}/export"): {Role.ANALYST},
    ("POST", "/callbacks/{subscriber_id}"): None,  # HMAC-signed, tested below
    ("GET", "/stats/dashboard"): VIEW,
    ("GET", "/stats/grids"): VIEW,
    ("GET", "/audit"): set(),
    ("GET", "/outbox"): set(),
    ("POST", "/outbox/{seq}/requeue"): set(),
    ("POST", "/tokens"): set(),
    ("POST", "/tokens/{name}/revoke"): set(),
    ("POST", "/auth/login"): None,  # name + password, tested in test_login
    ("GET", "/auth/session"): ALL,
    ("POST", "/auth/logout"): ALL,
}
SECRET = b"platform-secret"
BINS_SECRET = b"bins-secret"


@pytest.fixture
def setup(
    tmp_path: Path, store_location: str | Path
) -> tuple[TestClient, EventStore, dict[Role, str]]:
    """Runs every auth test on SQLite and on a real PostgreSQL server."""
    store = EventStore(store_location)
    cfg = parse_config({"subscribers": [
        {"id": "grid", "url": "http://127.0.0.1:9/x", "secret_env": "GRID_SECRET"},
        {"id": "bins", "url": "http://127.0.0.1:9/y", "secret_env": "BINS_SECRET",
         "event_types": ["bin_overflow"]},
    ]})  # fmt: skip
    env = {"GRID_SECRET": SECRET.decode(), "BINS_SECRET": BINS_SECRET.decode()}
    site = compose.installation(cfg, root=tmp_path, store=store, env=env, sending=True)
    site.outbox.post = lambda *_: HttpResult(200, None)  # the platforms answer 200
    app = compose.api(site)
    tokens = {role: create_token(store, f"u-{role.value}", role, time.time()) for role in Role}
    return TestClient(app), store, tokens


def test_policy_covers_every_route(setup: tuple[TestClient, EventStore, dict[Role, str]]) -> None:
    client, _, _ = setup
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    assert routes == set(POLICY)


@pytest.mark.parametrize(("method", "path"), [k for k, v in POLICY.items() if v is not None])
def test_every_route_checks_its_role(
    setup: tuple[TestClient, EventStore, dict[Role, str]], method: str, path: str
) -> None:
    client, _, tokens = setup
    url = path.format(camera_id="c", event_id="e", case_id="k", seq=1, name="n",
                      subscriber_id="s")  # fmt: skip
    allowed = POLICY[(method, path)]
    assert allowed is not None
    if path == "/cases/stream":
        url += "?timeout_s=0"  # one message, then the stream ends
    assert client.request(method, url).status_code == 401
    bad = client.request(method, url, headers={"Authorization": "Bearer gs_forged"})
    assert bad.status_code == 401
    for role, token in tokens.items():
        r = client.request(method, url, headers={"Authorization": f"Bearer {token}"}, json={})
        if role in allowed or role == Role.ADMIN:
            assert r.status_code not in (401, 403), (role, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code)
            assert role.value in r.json()["detail"]


def test_revoked_token_is_refused(setup: tuple[TestClient, EventStore, dict[Role, str]]) -> None:
    client, _, tokens = setup
    admin = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
    op = {"Authorization": f"Bearer {tokens[Role.OPERATOR]}"}
    assert client.get("/cases", headers=op).status_code == 200
    assert client.post("/tokens/u-operator/revoke", headers=admin).status_code == 200
    assert client.get("/cases", headers=op).status_code == 401
    made = client.post("/tokens", headers=admin, json={"name": "新人", "role": "analyst"}).json()
    assert client.get("/cases", headers={"Authorization": f"Bearer {made['token']}"}).is_success
    with client.app.state.ctx.store.reader() as db:  # type: ignore[attr-defined]
        stored = [r[0] for r in db.execute("SELECT token_sha256 FROM api_tokens")]
    assert made["token"] not in stored and all(len(h) == 64 for h in stored)  # hashes only


def test_reviews_and_views_are_audited_and_the_log_is_admin_only(
    setup: tuple[TestClient, EventStore, dict[Role, str]],
) -> None:
    client, store, tokens = setup
    case = client.app.state.ctx.cases.on_event(store_event(store, "ev1", time.time()))  # type: ignore[attr-defined]
    op = {"Authorization": f"Bearer {tokens[Role.OPERATOR]}"}
    r = client.post(f"/cases/{case.case_id}/actions", headers=op,
                    json={"action": "reject", "reason_code": "false_positive"})  # fmt: skip
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    assert r.json()["history"][-1]["actor"] == "u-operator"
    again = client.post(f"/cases/{case.case_id}/actions", headers=op, json={"action": "accept"})
    assert again.status_code == 409 and "cannot accept" in again.json()["detail"]
    log = client.get("/audit", headers={"Authorization": f"Bearer {tokens[Role.ADMIN]}"}).json()
    assert [(e["actor"], e["action"]) for e in log] == [("u-operator", "case_reject")]
    assert client.get("/audit", headers=op).status_code == 403
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, "/audit", headers=op).status_code == 405


def _signed(body: dict[str, object], key: str, secret: bytes = SECRET) -> dict[str, object]:
    raw = json.dumps(body).encode()
    ts = int(time.time())
    return {"content": raw, "headers": {"X-Gridsight-Timestamp": str(ts),
            "X-Gridsight-Signature": sign(secret, ts, key, raw), "Idempotency-Key": key}}  # fmt: skip


def test_platform_callback_drives_the_case_once(
    setup: tuple[TestClient, EventStore, dict[Role, str]],
) -> None:
    client, store, _ = setup
    cases = client.app.state.ctx.cases  # type: ignore[attr-defined]
    case = cases.on_event(store_event(store, "ev1", time.time()))
    cases.act(case.case_id, "accept", "op1")
    cases.act(case.case_id, "dispatch", "op1")
    client.app.state.ctx.outbox.deliver_due()  # type: ignore[attr-defined]
    body = {"case_id": case.case_id, "action": "respond", "actor": "物业-张三"}
    r = client.post("/callbacks/grid", **_signed(body, "k1"))
    assert r.status_code == 200 and r.json() == {"case_id": case.case_id, "state": "responded"}
    r2 = client.post("/callbacks/grid", **_signed(body, "k1"))
    assert r2.status_code == 200 and r2.json() == r.json()  # replayed answer, no second action
    assert [h.action for h in cases.history(case.case_id)].count("respond") == 1
    assert cases.history(case.case_id)[-1].actor_type == "platform"
    forged = client.post("/callbacks/grid", **_signed(body, "k2", b"wrong"))
    assert forged.status_code == 401
    wrong = client.post("/callbacks/grid", **_signed({**body, "action": "dispose"}, "k3"))
    assert wrong.status_code == 200 and wrong.json()["state"] == "verifying"  # camera re-checks
    late = client.post("/callbacks/grid", **_signed({**body, "action": "respond"}, "k5"))
    assert late.status_code == 409 and "verifying" in late.json()["detail"]
    assert client.post("/callbacks/other", **_signed(body, "k4")).status_code == 404


# Routes whose answer is not a JSON document (pictures, clips, text, a stream) or is itself a
# schema; every other route must describe its answer in the OpenAPI document.
NOT_JSON = {
    ("GET", "/cameras/{camera_id}/snapshot.jpg"), ("GET", "/cameras/{camera_id}/activity.jpg"),
    ("GET", "/events/{event_id}/clip.mp4"), ("GET", "/events/{event_id}/clip-preview.mp4"),
    ("GET", "/events/{event_id}/snapshot.jpg"),
    ("GET", "/events/{event_id}/thumb.jpg"), ("GET", "/cameras/{camera_id}/live.mp4"),
    ("GET", "/cases/{case_id}/after.jpg"), ("GET", "/cases/stream"), ("GET", "/metrics"),
    ("GET", "/schemas/event-report-v1.json"),
}  # fmt: skip


def test_every_json_route_has_a_response_model(
    setup: tuple[TestClient, EventStore, dict[Role, str]],
) -> None:
    client, _, _ = setup
    paths = client.get("/openapi.json").json()["paths"]
    missing = []
    for path, ops in paths.items():
        for method, op in ops.items():
            if (method.upper(), path) in NOT_JSON:
                continue
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
            if not (schema.get("$ref") or schema.get("items", {}).get("$ref")):
                missing.append(f"{method.upper()} {path}: {schema}")
    assert not missing, missing
