"""Retention: finished cases lose their media after the type's period; open cases never do."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.casework.cases import Action
from pipeline.casework.retention import expired, purge
from pipeline.config import RetentionConfig
from pipeline.evidence.report import EvidenceItem
from pipeline.evidence.storage import LocalStorage
from tests.unit.test_cases import World, store_event, world  # noqa: F401  (fixture)

DAY = 86400.0


def _with_clip(w: World, root: Path, event_id: str, zone: str) -> Path:
    store_event(w.store, event_id, w.clock(), zone=zone)
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
