"""Retention: finished cases lose their media after the type's period; open cases never do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.casework.cases import Action
from pipeline.casework.outbox import Outbox
from pipeline.casework.retention import RetentionJob, expired, purge
from pipeline.casework.worker import CaseWorker
from pipeline.config import RetentionConfig
from pipeline.evidence.report import EvidenceItem
from pipeline.evidence.storage import LocalStorage
from pipeline.types import EventType
from tests.unit.test_cases import World, store_event, world  # noqa: F401  (fixture)

DAY = 86400.0


def _with_clip(
    w: World, root: Path, event_id: str, zone: str,
    etype: EventType = EventType.FIRE_LANE_OCCUPATION,
) -> Path:  # fmt: skip
    store_event(w.store, event_id, w.clock(), zone=zone, etype=etype)
    clip = root / f"{event_id}.mp4"
    clip.write_bytes(event_id.encode() * 100)
    row = w.store.get_event(event_id)
    assert row is not None
    item = EvidenceItem(f"{event_id}-clip", "clip", "video_clip", "original", clip.name,
                        "video/mp4", 100, hashlib.sha256(clip.read_bytes()).hexdigest(), 0.0)  # fmt: skip
    with w.store.transaction() as db:
        db.execute(
            "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, "clip", item.kind, item.role, item.relpath, item.media_type,
             item.size_bytes, item.sha256, 0.0, None, 0),
        )  # fmt: skip
    w.cases.on_event(row)
    return clip


def test_open_cases_keep_evidence_forever_closed_ones_expire(world: World, tmp_path: Path) -> None:  # noqa: F811
    w = world
    open_clip = _with_clip(w, tmp_path, "open", "z1")
    closed_clip = _with_clip(w, tmp_path, "done", "z2")
    rejected_clip = _with_clip(w, tmp_path, "fp", "z3")
    done = w.cases.case_of_event("done")
    fp = w.cases.case_of_event("fp")
    assert done and fp
    for a in (Action.ACCEPT, Action.DISPATCH, Action.DISPOSE, Action.CLOSE):
        w.cases.act(done, a, "op1", reason="on site" if a == Action.CLOSE else None)
    w.cases.act(fp, Action.REJECT, "op1", reason_code="false_positive")
    policy = RetentionConfig(default_days=30, by_type={"fire_lane_occupation": 10})
    assert expired(w.store, policy, w.clock() + 9 * DAY) == []
    items = expired(w.store, policy, w.clock() + 400 * DAY)
    assert sorted(i.event_id for i in items) == ["done", "fp"]  # "open" never
    assert purge(w.store, LocalStorage(tmp_path), items, w.clock()) == 2
    assert open_clip.exists() and not closed_clip.exists() and not rejected_clip.exists()
    assert expired(w.store, policy, w.clock() + 400 * DAY) == []  # purged once
    with w.store.reader() as db:
        audit = db.execute("SELECT actor, action, target FROM audit_log ORDER BY seq").fetchall()
    assert sorted(audit) == [
        ("retention", "purge", "event:done"),
        ("retention", "purge", "event:fp"),
    ]
    assert w.store.get_event("done") is not None  # the record stays


def _close(w: World, event_id: str) -> None:
    case_id = w.cases.case_of_event(event_id)
    assert case_id is not None
    for a in (Action.ACCEPT, Action.DISPATCH, Action.DISPOSE, Action.CLOSE):
        w.cases.act(case_id, a, "op1", reason="on site" if a == Action.CLOSE else None)


def test_retention_runs_on_schedule_inside_the_case_worker(world: World, tmp_path: Path) -> None:  # noqa: F811
    w = world
    clip = _with_clip(w, tmp_path, "done", "z1")
    _close(w, "done")
    policy = RetentionConfig(default_days=1, by_type={}, run_every_min=60)
    job = RetentionJob(w.store, LocalStorage(tmp_path), policy, lambda: None)
    outbox = Outbox(w.store, [], {}, w.cases.tz, w.clock)
    worker = CaseWorker(w.cases, outbox, retention=job)
    worker.step()  # first round: nothing has expired yet
    assert clip.exists() and not job.due(w.clock() + 59 * 60)
    w.clock.advance(2 * DAY)
    worker.step()  # an hour has passed and the case closed two days ago
    assert not clip.exists()


def test_disk_pressure_purges_oldest_finished_first_never_open_or_exempt(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    w = world
    clips = {}
    for i, (eid, etype) in enumerate([("old", EventType.FIRE_LANE_OCCUPATION),
                                      ("throw", EventType.HIGH_ALTITUDE_THROWING),
                                      ("mid", EventType.FIRE_LANE_OCCUPATION),
                                      ("new", EventType.FIRE_LANE_OCCUPATION)]):  # fmt: skip
        clips[eid] = _with_clip(w, tmp_path, eid, f"z{i}", etype)
        _close(w, eid)
        w.clock.advance(3600)
    clips["open"] = _with_clip(w, tmp_path, "open", "z9")  # a case still open: never

    # free space grows as clips go: enough once two of the four finished ones are gone
    def free() -> int:
        return 10**9 * (5 - sum(c.exists() for c in clips.values()))

    policy = RetentionConfig(default_days=365, by_type={}, min_free_gb=2.0)
    done = RetentionJob(w.store, LocalStorage(tmp_path), policy, free).run(w.clock())
    assert done.expired_events == 0 and done.pressure_events == 2
    gone = sorted(k for k, c in clips.items() if not c.exists())
    assert gone == ["mid", "old"]  # oldest first, the 高空抛物 case skipped, open untouched
    with w.store.reader() as db:
        reasons = [json.loads(r[0])["reason"] for r in
                   db.execute("SELECT detail_json FROM audit_log WHERE action = 'purge'")]  # fmt: skip
    assert reasons == ["disk_pressure", "disk_pressure"]
