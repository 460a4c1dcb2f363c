"""The SQL of casework: case rows, their history and their events. ``pipeline.casework.cases``
decides what happens to a case; this module only reads and writes the rows, inside the
caller's transaction where a change must be atomic (``CaseRows(db)``), or on its own reader.

Rows come back as plain tuples in ``CASE_COLUMNS`` / ``HISTORY_COLUMNS`` order; casework turns
them into its ``Case`` / ``HistoryEntry`` (the store does not depend on casework).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pipeline.store.db import Connection
from pipeline.store.repository import EventStore, in_cameras

CASE_COLUMNS = (
    "case_id", "dedup_key", "camera_id", "zone_id", "rule_id", "event_type", "severity",
    "state", "resume_state", "escalation_level", "assignee", "supervised", "hotspot",
    "parent_case_id", "recurrence_count", "first_event_id", "last_event_id", "detections",
    "created_at", "updated_at", "last_seen_at", "closed_at", "review_by", "respond_by",
    "dispose_by", "recheck_until", "suspended_at", "recheck_since", "after_relpath",
    "after_sha256",
)  # fmt: skip
HISTORY_COLUMNS = (
    "seq", "case_id", "at", "action", "from_state", "to_state", "actor", "actor_type",
    "reason_code", "reason", "detail_json",
)  # fmt: skip
_CASES = ", ".join(CASE_COLUMNS)
_HISTORY = ", ".join(HISTORY_COLUMNS)
Row = Sequence[Any]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class CaseRows:
    """Case reads and writes on one connection (the caller owns the transaction)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def get(self, case_id: str) -> Row | None:
        return self.db.execute(  # type: ignore[no-any-return]
            f"SELECT {_CASES} FROM cases WHERE case_id = ?", (case_id,)
        ).fetchone()

    def insert(self, values: Sequence[Any]) -> None:
        self.db.execute(f"INSERT INTO cases ({_CASES}) VALUES ({_marks(len(CASE_COLUMNS))})",
                        tuple(values))  # fmt: skip

    def update(self, case_id: str, changes: Mapping[str, Any]) -> None:
        unknown = set(changes) - set(CASE_COLUMNS)
        if unknown:  # column names are interpolated: only known ones, ever
            raise ValueError(f"not case columns: {sorted(unknown)}")
        cols = ", ".join(f"{k} = ?" for k in changes)
        self.db.execute(f"UPDATE cases SET {cols} WHERE case_id = ?",
                        (*changes.values(), case_id))  # fmt: skip

    def case_of_event(self, event_id: str) -> str | None:
        row = self.db.execute("SELECT case_id FROM case_events WHERE event_id = ?", (event_id,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def seen(self, case_id: str, at: float) -> None:
        self.db.execute(
            "UPDATE cases SET last_seen_at = GREATEST(last_seen_at, ?) WHERE case_id = ?",
            (at, case_id),
        )

    def latest_in_states(self, dedup_key: str, states: Collection[str]) -> str | None:
        row = self.db.execute(
            f"SELECT case_id FROM cases WHERE dedup_key = ? AND state IN ({_marks(len(states))}) "
            "ORDER BY created_at DESC LIMIT 1",
            (dedup_key, *sorted(states)),
        ).fetchone()
        return None if row is None else str(row[0])

    def attach(self, case_id: str, event_id: str, seen_at: float, now: float) -> None:
        """Another detection of an open case."""
        self.db.execute(
            "UPDATE cases SET last_event_id = ?, detections = detections + 1, "
            "last_seen_at = GREATEST(last_seen_at, ?), updated_at = ? WHERE case_id = ?",
            (event_id, seen_at, now, case_id),
        )
        self.link(case_id, event_id)

    def link(self, case_id: str, event_id: str) -> None:
        self.db.execute("INSERT INTO case_events VALUES (?, ?)", (case_id, event_id))

    def recent(self, dedup_key: str, since: float) -> list[str]:
        """Cases of the same place and type created since, newest first (rejected ones not)."""
        rows = self.db.execute(
            "SELECT case_id FROM cases WHERE dedup_key = ? AND created_at >= ? "
            "AND state != 'rejected' ORDER BY created_at DESC",
            (dedup_key, since),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def append_history(
        self, case_id: str, at: float, action: str, from_state: str | None, to_state: str,
        actor: str, actor_type: str, reason_code: str | None, reason: str | None,
        detail: dict[str, Any],
    ) -> int:  # fmt: skip
        """Append one transition (the table refuses UPDATE and DELETE); returns its seq."""
        cur = self.db.execute(
            "INSERT INTO case_history (case_id, at, action, from_state, to_state, actor, "
            "actor_type, reason_code, reason, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING seq",
            (case_id, at, action, from_state, to_state, actor, actor_type, reason_code, reason,
             json.dumps(detail, ensure_ascii=False)),
        )  # fmt: skip
        return int(cur.fetchone()[0])

    def last_seq(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM case_history").fetchone()[0])

    def history_after(self, seq: int) -> list[Row]:
        return self.db.execute(
            f"SELECT {_HISTORY} FROM case_history WHERE seq > ? ORDER BY seq", (seq,)
        ).fetchall()

    def event_report(self, event_id: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT report_json FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return json.loads(row[0]) if row else {}


# -- reads on their own connection -----------------------------------------------------------


def query_cases(
    store: EventStore, filters: Mapping[str, str | None], states: Collection[str] | None,
    limit: int, offset: int, cameras: Collection[str] | None = None,
) -> tuple[list[Row], int]:  # fmt: skip
    """Urgent first, newest first; ``filters``: column → value (None: any); ``cameras``: a
    scoped reader's cameras."""
    scope, args = in_cameras(cameras)
    clauses: list[str] = [scope] if scope else []
    for col, val in filters.items():
        if col not in CASE_COLUMNS:
            raise ValueError(f"not a case column: {col}")
        if val is not None:
            clauses.append(f"{col} = ?")
            args.append(val)
    if states is not None:
        clauses.append(f"state IN ({_marks(len(states))})")
        args.extend(sorted(states))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with store.reader() as db:
        total = int(db.execute(f"SELECT COUNT(*) FROM cases {where}", args).fetchone()[0])
        rows = db.execute(
            f"SELECT {_CASES} FROM cases {where} "
            "ORDER BY severity = 'urgent' DESC, created_at DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
    return rows, total


def get_case(store: EventStore, case_id: str) -> Row | None:
    with store.reader() as db:
        return CaseRows(db).get(case_id)


def cases_in_states(store: EventStore, states: Collection[str]) -> list[Row]:
    with store.reader() as db:
        return db.execute(
            f"SELECT {_CASES} FROM cases WHERE state IN ({_marks(len(states))})",
            tuple(sorted(states)),
        ).fetchall()


def history(store: EventStore, case_id: str) -> list[Row]:
    with store.reader() as db:
        return db.execute(
            f"SELECT {_HISTORY} FROM case_history WHERE case_id = ? ORDER BY seq", (case_id,)
        ).fetchall()


def events_of(store: EventStore, case_id: str) -> list[str]:
    with store.reader() as db:
        rows = db.execute(
            "SELECT ce.event_id FROM case_events ce JOIN events e USING (event_id) "
            "WHERE ce.case_id = ? ORDER BY e.alerted_at, e.event_id",
            (case_id,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def case_of_event(store: EventStore, event_id: str) -> str | None:
    with store.reader() as db:
        return CaseRows(db).case_of_event(event_id)


def counter(store: EventStore, cameras: Collection[str] | None = None) -> tuple[int, float]:
    """(number of cases, latest change): moves whenever any case (of ``cameras``) changes."""
    scope, args = in_cameras(cameras)
    where = f"WHERE {scope}" if scope else ""
    with store.reader() as db:
        n, t = db.execute(
            f"SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM cases {where}", args
        ).fetchone()
    return int(n), float(t)


def verdicts(store: EventStore) -> list[Row]:
    """(camera, zone, rule, event type, accept|reject, reason code) of every human review."""
    with store.reader() as db:
        return db.execute(
            "SELECT c.camera_id, c.zone_id, c.rule_id, c.event_type, h.action, "
            "h.reason_code FROM case_history h JOIN cases c USING (case_id) "
            "WHERE h.action IN ('accept', 'reject') AND h.actor_type != 'system'"
        ).fetchall()


def events_still_there(
    store: EventStore, camera_id: str, event_type: str, zone_id: str | None, since: float,
    now: float,
) -> int:  # fmt: skip
    """Events of this camera, type and zone that were open, or began, since ``since``."""
    with store.reader() as db:
        row = db.execute(
            "SELECT COUNT(*) FROM events WHERE camera_id = ? AND event_type = ? "
            "AND COALESCE(zone_id, '-') = ? AND (state != 'ended' OR started_at >= ? "
            "OR COALESCE(ended_at, 0) >= ?) AND started_at <= ?",
            (camera_id, event_type, zone_id or "-", since, since, now),
        ).fetchone()
    return int(row[0])
