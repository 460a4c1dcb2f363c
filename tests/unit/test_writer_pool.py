"""The writer pool: every notice stored once, each camera's always by the same writer, so its
events stay in order; real files and a real SQLite index."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

from pipeline.config import CameraConfig, EvidenceConfig, SiteConfig
from pipeline.evidence.storage import LocalStorage
from pipeline.evidence.writer import EvidenceWriter, WriterPool
from pipeline.store.repository import EventQuery, EventStore
from pipeline.types import CameraStatusDetails, Event, EventNotice, EventState, EventType
from tests.conftest import camera_dict

T0 = 1_763_863_200.0


def event_id(camera_id: str, n: int) -> str:
    return f"20251123T100000-{camera_id}-{n:08d}"


def outage(camera_id: str, n: int, state: EventState) -> EventNotice:
    t = T0 + 60 * n
    return EventNotice(
        event=Event(
            event_id=event_id(camera_id, n),
            event_type=EventType.CAMERA_OFFLINE,
            state=state,
            camera_id=camera_id,
            zone_id=None,
            rule_id=None,
            started_at=t,
            alerted_at=t,
            updated_at=t + 30,
            ended_at=t + 30 if state == EventState.ENDED else None,
            score=1.0,
            details=CameraStatusDetails("read_timeout", n, n),
        )
    )


def test_each_camera_keeps_one_writer_and_every_event_is_stored(tmp_path: Path) -> None:
    ids = [f"cam{i}" for i in range(6)]
    cameras = {c: CameraConfig.model_validate(camera_dict(id=c, url="/dev/null")) for c in ids}
    store = EventStore(tmp_path / "gridsight.db")
    stored: list[tuple[str, str]] = []
    clock = itertools.count(T0 + 10_000).__next__

    def make() -> EvidenceWriter:
        return EvidenceWriter(
            LocalStorage(tmp_path), store, SiteConfig(), cameras, lambda _c: None, None,
            EvidenceConfig(root=tmp_path), clock=lambda: float(clock()),
            on_stored=lambda row: stored.append((row.camera_id, row.event_id)),
        )  # fmt: skip

    pool = WriterPool(3, make)
    for n in range(4):
        for c in ids:
            pool.submit(outage(c, n, EventState.STARTED))
            pool.submit(outage(c, n, EventState.ENDED))
    depth = [w.stats().queue_depth for w in pool.writers]
    assert sum(depth) == pool.stats().queue_depth == 48
    assert sum(1 for d in depth if d) >= 2  # six cameras spread over more than one writer
    threads = [threading.Thread(target=w.run) for w in pool.writers]
    for t in threads:
        t.start()
    pool.stop()
    for t in threads:
        t.join(30)
    stats = pool.stats()
    assert stats.events_stored == 24 and stats.write_errors == 0
    assert len(stats.latencies_s) == 24
    for c in ids:  # per camera, in the order raised: started then ended, event by event
        assert [e for cam, e in stored if cam == c] == [
            event_id(c, n) for n in range(4) for _ in "se"
        ]
    rows, total = store.query_events(EventQuery(limit=100))
    assert total == 24 and all(r.state == EventState.ENDED.value for r in rows)
