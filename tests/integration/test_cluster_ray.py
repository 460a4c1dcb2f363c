"""Cameras sharded over a local Ray cluster (driver + 2 worker actor processes) with real RTSP
cameras on loopback: placement by cost, live video relayed from the worker, a killed worker's
cameras stream again elsewhere within 30 s, a configuration change reaches only the worker that runs the changed camera, and over a
real PostgreSQL store the events and cases reconcile exactly across a worker kill."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import AppConfig, CameraConfig, parse_config
from pipeline.errors import ConfigError
from pipeline.store.repository import EventQuery, EventStore
from tests.conftest import RtspServer, camera_dict, wait_for
from tests.integration.test_rtsp import FAST_INGEST
from tests.integration.test_workers import parked_car_cameras
from tests.media import ColorBoxDetector
from tests.pg import PostgresServer

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.rtsp


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray.init(num_cpus=2, object_store_memory=80 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, configure_logging=False)  # fmt: skip
    yield
    ray.shutdown()


def _kill(coord: Any, wid: str) -> None:
    from pipeline.ops.cluster import RayWorker

    handle = coord.workers[wid].handle
    assert isinstance(handle, RayWorker)
    ray.kill(handle.actor)


def _online(coord: Any) -> dict[str, str]:
    """camera → worker, for cameras reported online."""
    return {
        cid: wid
        for wid, cams in coord.health().items()
        for cid, state in cams.items()
        if state == "online"
    }


def test_cameras_move_when_a_worker_dies(
    ray_local: None,
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
) -> None:
    from pipeline.ops.capacity import CameraCost, CostModel
    from pipeline.ops.cluster import Coordinator

    server = rtsp_server({f"/c{i}": "test:160x120@5:5" for i in range(4)})
    cams = [
        camera_dict(id=f"cam{i}", url=server.url(f"/c{i}"), rules=[], zones=[]) for i in range(4)
    ]
    cfg = make_config(cams, ingest=FAST_INGEST)
    model = CostModel({"keyframes": CameraCost(0.03, 27), "throwing": CameraCost(0.27, 29)}, "test")
    coord = Coordinator(cfg, workers=2, cost_model=model, store=EventStore(cfg.store_location()))
    coord.start()
    try:
        assert wait_for(lambda: len(_online(coord)) == 4, 40, interval_s=0.5)
        placed = _online(coord)
        assert sorted(set(placed.values())) == ["w1", "w2"]
        assert sorted(placed.values()).count("w1") == 2  # equal cost: two each

        # live video across Ray: the worker's remux of the camera's H.264, pulled fragment by
        # fragment; a viewer that leaves lets the stream go, and the next one gets a new one
        for _ in range(2):
            handle = coord.owner("cam1")
            live = handle.live_view("cam1") if handle is not None else None
            assert live is not None and live[0].startswith("avc1.")
            got = b""
            for chunk in live[1]:
                got += chunk
                if b"moof" in got:
                    break
            live[1].close()  # type: ignore[attr-defined]
            assert got[4:8] == b"ftyp" and b"moov" in got and b"moof" in got

        # a configuration change of cam0 reaches only its worker; the other keeps its list
        victim = placed["cam0"]
        other = "w2" if victim == "w1" else "w1"
        other_cams = dict(coord.workers[other].cameras)
        raw0 = cams[0] | {"name": "改名"}
        changed = parse_config({"cameras": [raw0]}).cameras[0]
        changes = coord.reconfigure([changed if c.id == "cam0" else c for c in cfg.cameras])
        assert (changes.updated, changes.added, changes.removed) == (("cam0",), (), ())
        assert coord.workers[other].cameras == other_cams
        assert (
            CameraConfig.model_validate_json(coord.workers[victim].cameras["cam0"]).name == "改名"
        )

        # kill the worker running cam0: its cameras stream again on a replacement within 30 s
        moved = {c for c, w in placed.items() if w == victim}
        _kill(coord, victim)  # asynchronous: the next ping may still answer
        found: list[str] = []

        def lost_found() -> bool:
            found.extend(coord.check())
            return bool(found)

        assert wait_for(lost_found, 20, 0.5)
        assert found == [victim]
        assert victim not in coord.workers and len(coord.workers) == 2
        assert wait_for(lambda: set(_online(coord)) == {f"cam{i}" for i in range(4)}, 30, 0.5)
        after = _online(coord)
        assert all(after[c] != victim for c in moved)
        assert {c: w for c, w in after.items() if c not in moved} == {
            c: w for c, w in placed.items() if c not in moved
        }  # the survivors' cameras did not move
        assert {m[1] for m in coord.moves if m[2] == victim} == moved

        # a camera needing a detector class the workers never loaded is refused, nothing moves
        parking = camera_dict(id="cam1", url=cams[1]["url"])  # its default parking rule
        parked = parse_config({"cameras": [parking]}).cameras[0]
        placement = dict(coord.placement)
        with pytest.raises(ConfigError, match="restart gridsight"):
            coord.reconfigure([parked if c.id == "cam1" else c for c in coord.cameras])
        assert coord.placement == placement

        # a third worker: cameras are rebalanced onto it by the fewest moves (2+2 → 2+1+1)
        coord.scale(3)
        newcomer = max(coord.workers, key=lambda k: int(k[1:]))
        assert sum(placement[c] != w for c, w in coord.placement.items()) == 1
        assert list(coord.placement.values()).count(newcomer) == 1
        assert wait_for(lambda: set(_online(coord)) == set(_cams(4)), 30, 0.5)
        assert _online(coord) == coord.placement
    finally:
        coord.stop()


def test_worker_killed_mid_run_events_reconcile_exactly_on_postgres(
    ray_local: None,
    rtsp_server: Callable[[dict[str, str]], RtspServer],
    make_config: Callable[..., AppConfig],
    postgres: PostgresServer,
    tmp_path: Path,
) -> None:
    """Four cameras, each watching a car parked in its fire lane, on two workers sharing a real
    PostgreSQL store. One worker is killed while its events are open. Afterwards every event
    recorded before the kill is still there; the lost worker's open events were ended once
    ("worker_lost"); its cameras raised exactly one new event each on the replacement, linked
    to the same case; the survivors kept their one event. One case per camera, every event
    linked exactly once."""
    from pipeline.ops.capacity import CameraCost, CostModel
    from pipeline.ops.cluster import Coordinator

    cams = parked_car_cameras(tmp_path, rtsp_server, 4)
    url = postgres.new_database()
    cfg = make_config(cams, ingest=FAST_INGEST, store={"url": url})
    model = CostModel({"keyframes": CameraCost(0.03, 27)}, "test")
    store = EventStore(url)
    coord = Coordinator(
        cfg, workers=2, cost_model=model, detector_factory=ColorBoxDetector, store=store
    )

    def parking() -> list[Any]:
        return store.query_events(EventQuery(event_type="fire_lane_occupation", limit=100))[0]

    coord.start()
    try:
        assert wait_for(lambda: {r.camera_id for r in parking()} == set(_cams(4)), 60, 0.5)
        before = {r.event_id: r for r in parking()}
        assert len(before) == 4 and all(r.state != "ended" for r in before.values())
        victim = coord.placement["cam0"]
        moved = {c for c, w in coord.placement.items() if w == victim}
        assert len(moved) == 2
        _kill(coord, victim)
        found: list[str] = []

        def lost_found() -> bool:
            found.extend(coord.check())
            return bool(found)

        assert wait_for(lost_found, 20, 0.5)
        # every event the lost worker had open, of any type (a camera_offline still being
        # written counts too), and nothing of the survivors
        orphans = set(coord.orphans_ended)
        assert {e for e, r in before.items() if r.camera_id in moved} <= orphans
        for eid in orphans:
            row = store.get_event(eid)
            assert row is not None and row.camera_id in moved
            assert (row.state, row.closed_reason) == ("ended", "worker_lost")
        # the incident is still there: each moved camera raises one new event on its new worker
        assert wait_for(
            lambda: sorted(r.camera_id for r in parking() if r.event_id not in before)
            == sorted(moved), 60, 0.5,
        )  # fmt: skip
    finally:
        coord.stop()

    rows = {r.event_id: r for r in parking()}
    assert set(before) <= set(rows)  # nothing recorded was lost
    assert len(rows) == 4 + len(moved)  # no duplicates, no gaps
    for eid, r in rows.items():
        assert r.state == "ended"
        if eid in orphans:
            assert r.closed_reason == "worker_lost"
        else:
            assert r.closed_reason is None and r.report["detection"]["end_reason"] == "shutdown"
    with store.reader() as db:
        cases = db.execute("SELECT camera_id, case_id, detections FROM cases").fetchall()
        links = db.execute("SELECT case_id, event_id FROM case_events").fetchall()
    assert sorted(c[0] for c in cases) == _cams(4)  # one case per incident
    assert sorted(e for _, e in links) == sorted(rows)  # every event linked exactly once
    per_case = {c[1]: c[2] for c in cases}
    for case_id, detections in per_case.items():
        assert detections == sum(1 for c, _ in links if c == case_id)
    assert sorted(per_case.values()) == sorted(2 if f"cam{i}" in moved else 1 for i in range(4))
    store.close()


def _cams(n: int) -> list[str]:
    return [f"cam{i}" for i in range(n)]
