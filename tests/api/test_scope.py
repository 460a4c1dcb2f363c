"""Grid-scoped tokens (a 物业 or 社区 sees its own cameras only), through every route of the API:
a token of grid A gets nothing of grid B's camera, events, evidence or cases, whatever the
route and path (404, not 403: existence is not told), while its own work as before; an
unscoped token sees B, so the test would notice a route that forgot the scope."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.auth import Role, create_token
from pipeline.casework.cases import Case
from pipeline.config import parse_config
from pipeline.evidence.report import EvidenceItem
from pipeline.evidence.storage import LocalStorage
from pipeline.ops import compose
from pipeline.rules.parking import ParkingDetails
from pipeline.store.access import TokenScope
from pipeline.store.repository import EventStore
from pipeline.types import Event, EventState, EventType
from tests.conftest import camera_dict

NOW = time.time()
# what grid A must never see of grid B (ids appear in every representation of B's things)
B_MARKS = ("cam2", "ev-b", "B-street")


def stored(store: EventStore, root: Path, event_id: str, camera: str) -> None:
    """An event with an indexed alert snapshot on disk, as the writer leaves it."""
    rel = f"{camera}/20261204/{event_id}/alert.jpg"
    ok, jpg = cv2.imencode(".jpg", np.full((90, 160, 3), 99, np.uint8))
    assert ok
    size, digest = LocalStorage(root).put(rel, jpg.tobytes())
    item = EvidenceItem(
        evidence_id=f"{event_id}-alert", name="alert", kind="annotated_image", role="derived",
        relpath=rel, media_type="image/jpeg", size_bytes=size, sha256=digest,
        start_time_s=NOW - 60, width=160, height=90,
    )  # fmt: skip
    details = ParkingDetails("fire_lane", "car", "motor", (0.1, 0.1, 0.2, 0.2),
                             (0.1, 0.1, 0.2, 0.2), 300, 300, 180, 0.8, 10, (1,))  # fmt: skip
    ev = Event(event_id, EventType.FIRE_LANE_OCCUPATION, EventState.STARTED, camera, "lane",
               "parking", NOW - 360, NOW - 60, NOW - 60, None, 0.8, details)  # fmt: skip
    report = {"report_id": event_id, "camera": {"camera_id": camera}}
    store.upsert_event(ev, "urgent", report, None, hashlib.sha256(b"r").hexdigest(), NOW - 59,
                       evidence=[item])  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("scope")
    cams = [camera_dict(id="cam1", grid_code="G-A", address="A-street"),
            camera_dict(id="cam2", grid_code="G-B", address="B-street")]  # fmt: skip
    cfg = parse_config({"cameras": cams, "evidence": {"root": str(root)},
                        "site": {"admin_division_code": "330106"}})  # fmt: skip
    site = compose.installation(cfg, root=root)
    cases: dict[str, Case] = {}
    for event_id, camera in (("ev-a", "cam1"), ("ev-b", "cam2")):
        stored(site.store, root, event_id, camera)
        row = site.store.get_event(event_id)
        assert row is not None
        case = site.cases.on_event(row)
        assert case is not None
        cases[camera] = case
    app = compose.api(site)
    tokens = {
        role: create_token(site.store, f"a-{role.value}", role, NOW, scope=TokenScope(("G-A",)))
        for role in (Role.OPERATOR, Role.ANALYST, Role.INTEGRATOR)
    }
    unscoped = create_token(site.store, "all-op", Role.OPERATOR, NOW)
    return {"app": app, "cases": cases, "tokens": tokens, "unscoped": unscoped}


def client(world: dict[str, Any], token: str) -> TestClient:
    c = TestClient(world["app"])
    c.headers["Authorization"] = f"Bearer {token}"
    return c


BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/cases/{case_id}/actions"): {"action": "accept"},
    ("POST", "/cases/{case_id}/export"): {"purpose": "scope test"},
    ("POST", "/cameras/{camera_id}/geometry/validate"): {"zones": []},
    ("PUT", "/cameras/{camera_id}/geometry"): {"zones": []},
    ("POST", "/tokens"): {"name": "x", "role": "operator"},
    ("POST", "/callbacks/{subscriber_id}"): {},
}


def b_requests(world: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, template, url) of every route, its path naming grid B's things."""
    fill = {"camera_id": "cam2", "event_id": "ev-b", "case_id": world["cases"]["cam2"].case_id,
            "name": "all-op", "seq": "1", "subscriber_id": "grid"}  # fmt: skip
    out = []
    for path, ops in world["app"].openapi()["paths"].items():
        url = path
        for k, v in fill.items():
            url = url.replace("{" + k + "}", v)
        for method in ops:
            query = "?timeout_s=0" if path == "/cases/stream" else ""
            out.append((method.upper(), path, url + query))
    return sorted(out)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST, Role.INTEGRATOR])
def test_grid_a_sees_nothing_of_grid_b_through_any_route(world: dict[str, Any], role: Role) -> None:
    c = client(world, world["tokens"][role])
    leaks = []
    for method, template, url in b_requests(world):
        r = c.request(method, url, json=BODIES.get((method, template)))
        marked = any(mark in r.text for mark in B_MARKS)
        media = r.headers.get("content-type", "").startswith(("image/", "video/"))
        # a 404 may repeat the id it was asked for; anything else naming B tells about B
        if (r.is_success and (marked or media)) or (r.status_code != 404 and marked):
            leaks.append(f"{method} {url} → {r.status_code}: {r.text[:120]}")
    assert not leaks, leaks
    # B's things answer as if absent (not "forbidden": existence is not told); a route the
    # role may not use at all is refused by role first (403)
    if role == Role.INTEGRATOR:
        assert c.get("/cameras/cam2/geometry").status_code == 404
    else:
        assert c.get("/events/ev-b").status_code == 404
        assert c.get(f"/cases/{world['cases']['cam2'].case_id}").status_code == 404
    assert c.get("/cameras/cam2/health").status_code == 404


def test_grid_a_keeps_its_own_and_an_unscoped_token_sees_both(world: dict[str, Any]) -> None:
    a = client(world, world["tokens"][Role.OPERATOR])
    assert [e["event_id"] for e in a.get("/events").json()["items"]] == ["ev-a"]
    assert [c["camera_id"] for c in a.get("/cases").json()["items"]] == ["cam1"]
    assert [c["camera_id"] for c in a.get("/cameras").json()] == ["cam1"]
    assert a.get("/events/ev-a/snapshot.jpg").status_code == 200
    assert [g["grid_code"] for g in a.get("/stats/grids").json()] == ["G-A"]
    assert a.get("/metrics").status_code == 403  # every camera's figures
    # the live case stream counts the reader's own cases only
    assert '"cases": 1' in a.get("/cases/stream", params={"timeout_s": 0}).text
    everyone = client(world, world["unscoped"])
    assert {e["event_id"] for e in everyone.get("/events").json()["items"]} == {"ev-a", "ev-b"}
    assert everyone.get("/events/ev-b/snapshot.jpg").status_code == 200
    assert "cam2" in everyone.get("/cameras").text
    assert '"cases": 2' in everyone.get("/cases/stream", params={"timeout_s": 0}).text


def test_scopes_are_refused_for_admins_and_need_a_grid_or_camera(
    world: dict[str, Any], tmp_path: Path
) -> None:
    store = EventStore(tmp_path / "g.db")
    with pytest.raises(ValueError, match="admin"):
        create_token(store, "adm", Role.ADMIN, NOW, scope=TokenScope(("G-A",)))
    with pytest.raises(ValueError, match="at least one"):
        create_token(store, "op", Role.OPERATOR, NOW, scope=TokenScope())
