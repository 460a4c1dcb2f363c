"""The SQL of the outbox (``pipeline.casework.outbox`` decides what to send and when)."""

from __future__ import annotations

import json
from typing import Any

from pipeline.store.db import Connection
from pipeline.store.repository import EventStore

Row = tuple[Any, ...]
_ROW = ("seq, subscriber_id, idempotency_key, case_id, kind, state, attempts, next_attempt_at, "
        "last_error, delivered_at")  # fmt: skip


def enqueue(db: Connection, subscriber_id: str, key: str, case_id: str, kind: str,
            payload: dict[str, Any], now: float) -> None:  # fmt: skip
    """Inside the caller's transaction (the case transition's); a repeated key is a no-op."""
    db.execute(
        "INSERT INTO outbox (subscriber_id, idempotency_key, case_id, kind, payload_json, "
        "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (idempotency_key) DO NOTHING",
        (subscriber_id, key, case_id, kind, json.dumps(payload, ensure_ascii=False), now, now),
    )


def recent_alerts(db: Connection, target_id: str, camera_id: str, since: float) -> int:
    """Alerts written for ``target_id`` about ``camera_id``'s cases since ``since``."""
    row = db.execute(
        "SELECT COUNT(*) FROM outbox o JOIN cases c ON c.case_id = o.case_id "
        "WHERE o.subscriber_id = ? AND o.kind = 'alert' AND o.created_at > ? "
        "AND c.camera_id = ?",
        (target_id, since, camera_id),
    ).fetchone()
    return int(row[0]) if row else 0


def due(store: EventStore, now: float, limit: int) -> list[tuple[int, str, str, str, int]]:
    """(seq, subscriber, key, payload json, attempts) of pending rows that are due and are the
    oldest pending one of their (subscriber, case): updates of a case go out in order."""
    with store.reader() as db:
        rows = db.execute(
            "SELECT o.seq, o.subscriber_id, o.idempotency_key, o.payload_json, o.attempts "
            "FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending' AND "
            "p.subscriber_id = o.subscriber_id AND p.case_id IS NOT DISTINCT FROM o.case_id "
            "AND p.seq < o.seq) ORDER BY o.seq LIMIT ?",
            (now, limit),
        ).fetchall()
    return [(int(a), str(b), str(c), str(d), int(e)) for a, b, c, d, e in rows]


def mark(store: EventStore, seq: int, state: str, attempts: int, at: float,
         error: str | None) -> None:  # fmt: skip
    """``at``: when delivered, or the next attempt (pending) / the last one (dead)."""
    with store.transaction() as db:
        if state == "delivered":
            db.execute(
                "UPDATE outbox SET state = ?, attempts = ?, delivered_at = ?, "
                "last_error = NULL WHERE seq = ?",
                (state, attempts, at, seq),
            )
        else:
            db.execute(
                "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, "
                "last_error = ? WHERE seq = ?",
                (state, attempts, at, error, seq),
            )


def rows(store: EventStore, state: str | None = None, seq: int | None = None) -> list[Row]:
    clauses: list[str] = ["1 = 1"]
    args: list[Any] = []
    if state is not None:
        clauses.append("state = ?")
        args.append(state)
    if seq is not None:
        clauses.append("seq = ?")
        args.append(seq)
    with store.reader() as db:
        found = db.execute(
            f"SELECT {_ROW} FROM outbox WHERE {' AND '.join(clauses)} ORDER BY seq", args
        ).fetchall()
    return [tuple(r) for r in found]


def counts(store: EventStore) -> dict[str, int]:
    with store.reader() as db:
        found = db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY 1").fetchall()
    return {str(k): int(v) for k, v in found}


def requeue(store: EventStore, seq: int, now: float) -> bool:
    with store.transaction() as db:
        cur = db.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ? "
            "WHERE seq = ? AND state = 'dead'",
            (now, seq),
        )
        return cur.rowcount == 1


def was_attempted(store: EventStore, subscriber_id: str, case_id: str) -> bool:
    with store.reader() as db:
        row = db.execute(
            "SELECT 1 FROM outbox WHERE subscriber_id = ? AND case_id = ? "
            "AND (state = 'delivered' OR attempts > 0) LIMIT 1",
            (subscriber_id, case_id),
        ).fetchone()
    return row is not None
