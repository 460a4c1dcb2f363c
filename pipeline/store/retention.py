"""The SQL of evidence retention (``pipeline.casework.retention`` decides what has expired and
what is left over from a killed run)."""

from __future__ import annotations

from typing import Any

from pipeline.store.repository import EventStore, append_audit


def unpurged_events(store: EventStore) -> list[tuple[str, str, str | None, str | None,
                                                     float | None, float]]:  # fmt: skip
    """(event, type, case, case state, case closed at, event's last time) of every event whose
    media is still kept."""
    with store.reader() as db:
        found = db.execute(
            "SELECT e.event_id, e.event_type, c.case_id, c.state, c.closed_at, "
            "COALESCE(e.ended_at, e.updated_at) FROM events e "
            "LEFT JOIN case_events ce ON ce.event_id = e.event_id "
            "LEFT JOIN cases c ON c.case_id = ce.case_id WHERE e.purged_at IS NULL"
        ).fetchall()
    return [(str(a), str(b), c, d, e, float(f)) for a, b, c, d, e, f in found]


def evidence_files(store: EventStore, event_id: str) -> tuple[tuple[str, str], ...]:
    """(relpath, sha256) of an event's indexed files."""
    with store.reader() as db:
        found = db.execute(
            "SELECT relpath, sha256 FROM evidence WHERE event_id = ? ORDER BY name", (event_id,)
        ).fetchall()
    return tuple((str(a), str(b)) for a, b in found)


def mark_purged(store: EventStore, event_id: str, now: float, detail: dict[str, Any]) -> None:
    with store.transaction() as db:
        db.execute("UPDATE events SET purged_at = ? WHERE event_id = ?", (now, event_id))
        append_audit(db, now, "retention", "admin", "purge", f"event:{event_id}", detail)


def indexed_files(store: EventStore, camera_id: str) -> set[str]:
    with store.reader() as db:
        found = db.execute(
            "SELECT v.relpath FROM evidence v JOIN events e ON e.event_id = v.event_id "
            "WHERE e.camera_id = ?",
            (camera_id,),
        ).fetchall()
    return {str(r[0]) for r in found}


def audit_sweep(store: EventStore, now: float, rel: str, detail: dict[str, Any]) -> None:
    with store.transaction() as db:
        append_audit(db, now, "gridsight", "system", "sweep_unindexed", f"file:{rel}", detail)
