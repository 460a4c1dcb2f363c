"""People signing in: name + password (argon2) → an HttpOnly SameSite=Strict session cookie
whose unsafe requests must echo the CSRF token; logout and disabling end sessions; wrong
passwords are audited and locked out; a trusted login proxy (SSO) names users for reads and
opens sessions for writes, and an untrusted one is ignored."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import CSRF_HEADER, hash_password
from pipeline.config import parse_config
from pipeline.ops import compose
from pipeline.store.access import TokenScope, audit_log, disable_user, put_user
from tests.api.test_scope import stored
from tests.conftest import camera_dict

PASSWORD = "correct horse battery"


def make(root: Path, **api: Any) -> tuple[TestClient, Any, str]:
    cams = [camera_dict(id="cam1", grid_code="G-A"), camera_dict(id="cam2", grid_code="G-B")]
    cfg = parse_config({"cameras": cams, "evidence": {"root": str(root)},
                        "api": {"max_auth_failures": 3, **api}})  # fmt: skip
    site = compose.installation(cfg, root=root)
    stored(site.store, root, "ev-a", "cam1")
    row = site.store.get_event("ev-a")
    assert row is not None
    case = site.cases.on_event(row)
    assert case is not None
    now = time.time()
    put_user(site.store, "alice", hash_password(PASSWORD), "operator", None, now)
    put_user(site.store, "bob-a", hash_password(PASSWORD), "operator", TokenScope(("G-A",)), now)
    return TestClient(compose.api(site)), site, case.case_id


def test_a_session_signs_in_needs_its_csrf_token_and_ends(tmp_path: Path) -> None:
    client, site, case_id = make(tmp_path)
    assert client.get("/cases").status_code == 401
    assert (
        client.post("/auth/login", json={"name": "alice", "password": "wrong one!"}).status_code
        == 401
    )
    r = client.post("/auth/login", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "gs_session=" in cookie
    assert client.get("/cases").json()["total"] == 1  # the cookie is enough to read
    act = f"/cases/{case_id}/actions"
    refused = client.post(act, json={"action": "accept"})
    assert refused.status_code == 403 and CSRF_HEADER in refused.json()["detail"]
    assert client.post(act, json={"action": "accept"},
                       headers={CSRF_HEADER: "guess"}).status_code == 403  # fmt: skip
    done = client.post(act, json={"action": "accept"}, headers={CSRF_HEADER: csrf})
    assert done.status_code == 200 and done.json()["state"] == "reported"
    assert site.cases.history(case_id)[-1].actor == "alice"
    assert client.get("/auth/session").json()["csrf_token"] == csrf  # a reloaded page
    assert client.post("/auth/logout", headers={CSRF_HEADER: csrf}).status_code == 200
    assert client.get("/cases").status_code == 401
    actions = [e.action for e in audit_log(site.store, None, "user:alice", 50)]
    assert {"login", "logout"} <= set(actions)
    assert any(e.action == "login_failed" for e in audit_log(site.store, "alice", None, 50))


def test_disabling_a_user_ends_their_sessions_and_a_scope_applies(tmp_path: Path) -> None:
    client, site, _ = make(tmp_path)
    client.post("/auth/login", json={"name": "bob-a", "password": PASSWORD})
    assert [c["camera_id"] for c in client.get("/cameras").json()] == ["cam1"]
    assert client.get("/cameras/cam2/health").status_code == 404
    disable_user(site.store, "bob-a", time.time())
    assert client.get("/cameras").status_code == 401
    assert client.post("/auth/login",
                       json={"name": "bob-a", "password": PASSWORD}).status_code == 401  # fmt: skip


def test_wrong_passwords_lock_the_address_out(tmp_path: Path) -> None:
    client, _, _ = make(tmp_path)
    codes = [client.post("/auth/login", json={"name": "alice", "password": f"nope{i}"}).status_code
             for i in range(4)]  # fmt: skip
    assert codes[:3] == [401, 401, 401] and codes[3] == 429
    # locked out even with the right password, until the window passes
    assert (
        client.post("/auth/login", json={"name": "alice", "password": PASSWORD}).status_code == 429
    )


def test_a_trusted_login_proxy_names_users_and_an_untrusted_one_is_ignored(
    tmp_path: Path,
) -> None:
    # TestClient's peer address is "testclient"
    client, _, case_id = make(tmp_path / "a", trusted_proxies=["testclient"])
    via_proxy = {"X-Forwarded-User": "alice"}
    assert client.get("/cases", headers=via_proxy).json()["total"] == 1
    act = f"/cases/{case_id}/actions"
    assert client.post(act, json={"action": "accept"}, headers=via_proxy).status_code == 403
    s = client.get("/auth/session", headers=via_proxy)  # opens a session for writes
    assert s.status_code == 200 and s.json()["name"] == "alice"
    ok = client.post(act, json={"action": "accept"}, headers={CSRF_HEADER: s.json()["csrf_token"]})
    assert ok.status_code == 200
    client.cookies.clear()  # a browser without alice's session
    assert client.get("/cases", headers={"X-Forwarded-User": "mallory"}).status_code == 401
    other, _, _ = make(tmp_path / "b")  # no trusted proxy configured
    assert other.get("/cases", headers=via_proxy).status_code == 401


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        hash_password("short")


def test_cli_adds_a_user_who_can_sign_in_and_disables_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from pipeline.ops.cli import main

    toml = tmp_path / "cameras.toml"
    toml.write_text(f'[evidence]\nroot = "{tmp_path / "ev"}"\n', encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert main(["user", "add", "wang", "--role", "operator", "--password-stdin",
                 "--config", str(toml)]) == 2  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    assert main(["user", "add", "wang", "--role", "operator", "--grid", "G-A",
                 "--password-stdin", "--config", str(toml)]) == 0  # fmt: skip
    cfg = parse_config({"evidence": {"root": str(tmp_path / "ev")}})
    client = TestClient(compose.api(compose.installation(cfg)))
    assert (
        client.post("/auth/login", json={"name": "wang", "password": PASSWORD}).status_code == 200
    )
    assert main(["user", "disable", "wang", "--config", str(toml)]) == 0
    assert client.get("/auth/session").status_code == 401
