"""The event store on SQLite and on a real PostgreSQL server: same results from the same calls,
full precision of epoch times, writers from several processes serialised (one case per key),
concurrent first start migrates once, clear errors that never show a password."""

from __future__ import annotations

import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from pipeline.casework.cases import CaseService
from pipeline.config import CasesConfig, parse_config, redact_url
from pipeline.errors import ConfigError, StoreError
from pipeline.evidence.report import EvidenceItem
from pipeline.ops import compose
from pipeline.rules.parking import ParkingDetails
from pipeline.store.db import pg_sql
from pipeline.store.repository import SCHEMA_VERSION, EventQuery, EventStore
from pipeline.types import Event, EventState, EventType
from tests.pg import PostgresServer
from tests.unit.test_cases import MON_9, store_event

TZ = ZoneInfo("Asia/Shanghai")


def test_events_round_trip_with_full_time_precision(store_location: str | Path) -> None:
    store = EventStore(store_location)
    at = 1763870000.123456  # epoch seconds: a 4-byte float would keep only minutes
    store_event(store, "e1", at)
    store_event(store, "e2", at + 10, etype=EventType.BIN_OVERFLOW, zone="bin1")
    store_event(store, "e1", at, state=EventState.ENDED)  # an update, not a second row
    row = store.get_event("e1")
    assert row is not None and row.alerted_at == at and row.state == "ended"
    assert row.report == {"report_id": "e1"}
    rows, total = store.query_events(EventQuery(since=at, until=at + 5))
    assert total == 1 and [r.event_id for r in rows] == ["e1"]
    rows, total = store.query_events(EventQuery(event_type="bin_overflow"))
    assert [r.event_id for r in rows] == ["e2"]
    assert store.count_by_type() == {"fire_lane_occupation": 1, "bin_overflow": 1}
    assert store.schema_version == SCHEMA_VERSION
    store.close()


def test_event_latencies_are_first_stored_less_alerted_in_the_window(
    store_location: str | Path,
) -> None:
    store = EventStore(store_location)
    details = ParkingDetails("fire_lane", "car", "motor", (0.1, 0.1, 0.2, 0.2),
                             (0.1, 0.1, 0.2, 0.2), 300, 300, 180, 0.8, 10, (1,))  # fmt: skip
    for i, (alerted, stored) in enumerate([(MON_9, MON_9 + 0.4), (MON_9 + 10, MON_9 + 12.5),
                                           (MON_9 + 30, MON_9 + 30.1)]):  # fmt: skip
        ev = Event(f"e{i}", EventType.FIRE_LANE_OCCUPATION, EventState.STARTED, "cam1", "lane",
                   "parking", alerted - 60, alerted, alerted, None, 0.8, details)  # fmt: skip
        store.upsert_event(ev, "urgent", {}, None, None, stored)
    ended = Event("e1", EventType.FIRE_LANE_OCCUPATION, EventState.ENDED, "cam1", "lane",
                  "parking", MON_9 - 50, MON_9 + 10, MON_9 + 40, MON_9 + 40, 0.8, details)  # fmt: skip
    store.upsert_event(ended, "urgent", {}, None, None, MON_9 + 41)  # an update keeps stored_at
    assert store.event_latencies(MON_9 + 5, MON_9 + 30) == pytest.approx([2.5])
    assert store.event_latencies(MON_9, MON_9 + 31) == pytest.approx([0.4, 2.5, 0.1])
    store.close()


def test_evidence_index_upserts(store_location: str | Path) -> None:
    store = EventStore(store_location)
    row = store_event(store, "e1", MON_9)
    ev = store.get_event("e1")
    assert ev is not None

    def item(sha: str) -> EvidenceItem:
        return EvidenceItem("e1-clip", "clip", "video_clip", "original", "c.mp4", "video/mp4",
                            10, sha, 1.0, 2.0)  # fmt: skip

    details = ParkingDetails("fire_lane", "car", "motor", (0.1, 0.1, 0.2, 0.2),
                             (0.1, 0.1, 0.2, 0.2), 300, 300, 180, 0.8, 10, (1,))  # fmt: skip
    event = Event("e1", EventType.FIRE_LANE_OCCUPATION, EventState.ENDED, "cam1", "lane",
                  "parking", row.started_at, row.alerted_at, row.alerted_at, row.alerted_at, 0.8,
                  details)  # fmt: skip
    store.upsert_event(event, "urgent", {}, "r.json", "ab" * 32, MON_9, [item("a" * 64)])
    store.upsert_event(event, "urgent", {}, "r.json", "ab" * 32, MON_9, [item("b" * 64)])
    assert store.evidence_for("e1") == [("clip", "c.mp4", "b" * 64)]
    assert store.evidence_path("e1", "clip") == "c.mp4"
    store.close()


def test_dashboard_and_audit_search_through_the_api(store_location: str | Path) -> None:
    store = EventStore(store_location)
    cfg = parse_config({"api": {"auth": False}})
    clock = lambda: MON_9 + 60  # noqa: E731
    site = compose.installation(cfg, root=Path("/nonexistent"), store=store, clock=clock)
    for i in range(3):
        site.cases.on_event(store_event(store, f"e{i}", MON_9 - i * 86400, camera=f"cam{i % 2}"))
    app = compose.api(site)
    c = TestClient(app)
    dash = c.get("/stats/dashboard", params={"days": 7}).json()
    assert sum(sum(d.values()) for d in dash["events_per_day"].values()) == 3
    assert dash["cases_by_state"] == {"pending_review": 2}  # cam0 twice → one case
    [case] = [x for x in c.get("/cases").json()["items"] if x["camera_id"] == "cam0"]
    r = c.post(f"/cases/{case['case_id']}/actions", json={"action": "accept"})
    assert r.is_success, r.text
    assert c.get(f"/cases/{case['case_id']}").json()["state"] == "reported"
    audit = c.get("/audit", params={"target_prefix": "case:"}).json()
    assert [a["target"] for a in audit] == [f"case:{case['case_id']}"]
    store.close()


def test_writers_in_parallel_open_one_case_per_key(postgres: PostgresServer) -> None:
    """Workers of a cluster each run their own case service on the shared server: detections
    of one incident arriving at once from several of them must land in one case."""
    url = postgres.new_database()
    EventStore(url).close()
    stores = [EventStore(url) for _ in range(6)]
    for i in range(30):
        store_event(stores[0], f"ev{i}", MON_9 + i)
    rows = [stores[0].get_event(f"ev{i}") for i in range(30)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def work(k: int) -> None:
        service = CaseService(stores[k], CasesConfig(), TZ, lambda: MON_9 + 100)
        start.wait()
        try:
            for row in rows[k :: len(stores)]:
                assert row is not None
                service.on_event(row)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with stores[0].reader() as db:
        cases = db.execute("SELECT case_id, detections FROM cases").fetchall()
        linked = db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM case_events").fetchone()
        history = db.execute("SELECT action, COUNT(*) FROM case_history GROUP BY 1").fetchall()
    assert len(cases) == 1 and cases[0][1] == 30
    assert tuple(linked) == (30, 30)
    assert dict(history) == {"detect": 1, "detect_again": 29}
    for s in stores:
        s.close()


def test_first_start_of_many_workers_migrates_once(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    opened: list[EventStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(EventStore(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(opened) == 5
    assert {s.schema_version for s in opened} == {SCHEMA_VERSION}
    with opened[0].reader() as db:
        assert db.execute("SELECT COUNT(*) FROM gridsight_schema").fetchone()[0] == 1
    for s in opened:
        s.close()


def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    from tests.conftest import free_port

    pytest.importorskip("psycopg")
    url = f"postgresql://grid:s3cret@127.0.0.1:{free_port()}/gridsight?connect_timeout=1"
    with pytest.raises(StoreError, match="cannot connect to event store") as err:
        EventStore(url)
    assert "s3cret" not in str(err.value) and "***" in str(err.value)


def test_store_url_in_config_is_checked() -> None:
    ok = parse_config({"store": {"url": "postgresql://grid@db.internal:5432/gridsight"}})
    assert ok.store_location() == "postgresql://grid@db.internal:5432/gridsight"
    assert parse_config({}).store_location() == Path("evidence/gridsight.db")
    for url, words in [
        ("postgresql://grid:pw@db/gridsight", "must not contain a password"),
        ("mysql://db/gridsight", "postgresql:// URL"),
        ("postgresql://grid@db", "database name"),
    ]:
        with pytest.raises(ConfigError, match=words) as err:
            parse_config({"store": {"url": url}})
        assert "store" in str(err.value) and "pw@" not in str(err.value)


def test_placeholders_are_rewritten_outside_literals_only() -> None:
    assert pg_sql("SELECT '?', x FROM t WHERE a = ? AND b LIKE '10%'") == (
        "SELECT '?', x FROM t WHERE a = %s AND b LIKE '10%%'"
    )
    assert redact_url("postgresql://u:pw@h/db") == "postgresql://***@h/db"  # store messages


def test_a_case_change_in_another_process_reaches_live_views_by_notice(
    store_location: str | Path,
) -> None:
    """Two processes share the store: the one serving live views hears of a case opened by the
    other at once through LISTEN/NOTIFY on PostgreSQL; on SQLite it has no notices to listen to
    and polls (ChangeFeed falls back)."""
    import asyncio

    from pipeline.casework.feed import ChangeFeed

    writer_store, viewer_store = EventStore(store_location), EventStore(store_location)
    feed = ChangeFeed(listen=viewer_store.listen_case_changes)
    cases = CaseService(writer_store, CasesConfig(), ZoneInfo("Asia/Shanghai"), lambda: MON_9)
    row = store_event(writer_store, "ev-n", MON_9)
    postgres = not isinstance(store_location, Path)

    async def wait_for_change() -> tuple[int, float]:
        start = feed.version
        waiting = asyncio.ensure_future(feed.wait(start, 10.0))
        await asyncio.sleep(0.5)  # the watcher is listening (or polling) by now
        feed.watch(viewer_store.count_by_type, every_s=60.0)  # a poll would take 60 s
        await asyncio.sleep(0.5)
        t0 = asyncio.get_running_loop().time()
        await asyncio.to_thread(cases.on_event, row)
        version = await waiting
        assert version > start
        return version, asyncio.get_running_loop().time() - t0

    if postgres:
        _, took = asyncio.run(wait_for_change())
        assert took < 3.0  # heard by notice, not by the 60 s poll
    else:
        assert not viewer_store.listen_case_changes(lambda: True, lambda: None)
    writer_store.close()
    viewer_store.close()
