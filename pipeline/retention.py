"""Evidence retention: delete media of finished cases after their type's retention period.

Evidence of an open case is never deleted, whatever its age. Media of a case go
``RetentionConfig.by_type[event_type]`` (else ``default_days``) days after the case was closed
or rejected; detections that never became cases (camera outages) go that long after they
ended. The event rows and reports stay (they are small and are the record that something was
there); each deletion is written to the audit log with the hashes of what was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import RetentionConfig
from pipeline.storage import EvidenceStorage
from pipeline.store import EventStore, append_audit


@dataclass(frozen=True, slots=True)
class Expired:
    event_id: str
    event_type: str
    case_id: str | None
    files: tuple[tuple[str, str], ...]  # (relpath, sha256)


def expired(store: EventStore, policy: RetentionConfig, now: float) -> list[Expired]:
    with store.reader() as db:
        rows = db.execute(
            "SELECT e.event_id, e.event_type, c.case_id, c.state, c.closed_at, "
            "COALESCE(e.ended_at, e.updated_at) FROM events e "
            "LEFT JOIN case_events ce ON ce.event_id = e.event_id "
            "LEFT JOIN cases c ON c.case_id = ce.case_id WHERE e.purged_at IS NULL"
        ).fetchall()
        out = []
        for event_id, etype, case_id, state, closed_at, last in rows:
            keep_s = policy.by_type.get(etype, policy.default_days) * 86400.0
            if case_id is not None:
                if state not in ("closed", "rejected") or closed_at is None:
                    continue  # open case: its evidence stays
                since = float(closed_at)
            else:
                since = float(last)
            if since + keep_s > now:
                continue
            files = db.execute(
                "SELECT relpath, sha256 FROM evidence WHERE event_id = ? ORDER BY name",
                (event_id,),
            ).fetchall()
            out.append(Expired(event_id, etype, case_id, tuple((str(a), str(b)) for a, b in files)))
    return out


def purge(store: EventStore, storage: EvidenceStorage, items: list[Expired], now: float) -> int:
    """Delete the files of ``items``; mark the events purged and audit each. Returns files."""
    deleted = 0
    for item in items:
        for rel, _ in item.files:
            deleted += storage.delete(rel)
        with store.transaction() as db:
            db.execute("UPDATE events SET purged_at = ? WHERE event_id = ?", (now, item.event_id))
            detail = {"case_id": item.case_id, "files": item.files}
            append_audit(db, now, "retention", "admin", "purge", f"event:{item.event_id}", detail)
    return deleted
