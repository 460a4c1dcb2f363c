"""Event index with versioned migrations: SQLite in WAL mode under the evidence root (the
default), or a PostgreSQL server shared by the workers of a cluster (``pipeline.store.db``).

The evidence writer thread writes events; cases, the outbox and the audit log are written by
API requests and the case worker (``pipeline.casework.cases``). Every write is one serialised
transaction, so writers queue and readers run concurrently. Rows point at files that were
completely written and hashed before the row was committed: nothing half-written is ever
indexed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.evidence.report import EvidenceItem
from pipeline.store.db import AppendOnly, Connection, MigrationItem, open_backend
from pipeline.types import Event

SCHEMA_VERSION = 6
CASES_CHANNEL = "gridsight_cases"

# One list for both engines: SQLite types, rendered for PostgreSQL by ``pipeline.store.db``.
_MIGRATIONS: dict[int, list[MigrationItem]] = {
    1: [
        """
    CREATE TABLE events (
        event_id      TEXT PRIMARY KEY,
        camera_id     TEXT NOT NULL,
        event_type    TEXT NOT NULL,
        state         TEXT NOT NULL,
        severity      TEXT NOT NULL,
        zone_id       TEXT,
        rule_id       TEXT,
        started_at    REAL NOT NULL,
        alerted_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        ended_at      REAL,
        score         REAL NOT NULL,
        report_json   TEXT NOT NULL,
        report_relpath TEXT,
        report_sha256 TEXT,
        stored_at     REAL NOT NULL
    );
    CREATE INDEX events_camera_time ON events (camera_id, alerted_at);
    CREATE INDEX events_type_time ON events (event_type, alerted_at);
    CREATE INDEX events_time ON events (alerted_at);
    CREATE TABLE evidence (
        event_id    TEXT NOT NULL REFERENCES events (event_id),
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        role        TEXT NOT NULL,
        relpath     TEXT NOT NULL,
        media_type  TEXT NOT NULL,
        size_bytes  INTEGER NOT NULL,
        sha256      TEXT NOT NULL,
        start_time  REAL NOT NULL,
        end_time    REAL,
        truncated   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (event_id, name)
    );
    """
    ],
    2: [
        """
    CREATE TABLE cases (
        case_id          TEXT PRIMARY KEY,
        dedup_key        TEXT NOT NULL,
        camera_id        TEXT NOT NULL,
        zone_id          TEXT,
        rule_id          TEXT,
        event_type       TEXT NOT NULL,
        severity         TEXT NOT NULL,
        state            TEXT NOT NULL,
        resume_state     TEXT,
        escalation_level INTEGER NOT NULL DEFAULT 0,
        assignee         TEXT,
        supervised       INTEGER NOT NULL DEFAULT 0,
        hotspot          INTEGER NOT NULL DEFAULT 0,
        parent_case_id   TEXT,
        recurrence_count INTEGER NOT NULL DEFAULT 0,
        first_event_id   TEXT NOT NULL,
        last_event_id    TEXT NOT NULL,
        detections       INTEGER NOT NULL DEFAULT 1,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        last_seen_at     REAL NOT NULL,
        closed_at        REAL,
        review_by        REAL,
        respond_by       REAL,
        dispose_by       REAL,
        recheck_until    REAL,
        suspended_at     REAL,
        recheck_since    REAL,
        after_relpath    TEXT,
        after_sha256     TEXT
    );
    CREATE INDEX cases_key ON cases (dedup_key, created_at);
    CREATE INDEX cases_state ON cases (state);
    CREATE TABLE case_events (
        case_id  TEXT NOT NULL REFERENCES cases (case_id),
        event_id TEXT NOT NULL,
        PRIMARY KEY (case_id, event_id)
    );
    CREATE TABLE case_history (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id     TEXT NOT NULL REFERENCES cases (case_id),
        at          REAL NOT NULL,
        action      TEXT NOT NULL,
        from_state  TEXT,
        to_state    TEXT NOT NULL,
        actor       TEXT NOT NULL,
        actor_type  TEXT NOT NULL,
        reason_code TEXT,
        reason      TEXT,
        detail_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX case_history_case ON case_history (case_id, seq);
    """,
        AppendOnly("case_history"),
        """
    CREATE TABLE outbox (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        subscriber_id   TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        case_id         TEXT,
        kind            TEXT NOT NULL,
        payload_json    TEXT NOT NULL,
        created_at      REAL NOT NULL,
        state           TEXT NOT NULL DEFAULT 'pending',
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT,
        delivered_at    REAL
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE TABLE audit_log (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        at       REAL NOT NULL,
        actor    TEXT NOT NULL,
        role     TEXT NOT NULL,
        action   TEXT NOT NULL,
        target   TEXT NOT NULL,
        detail_json TEXT NOT NULL DEFAULT '{}'
    );
    """,
        AppendOnly("audit_log"),
        """
    CREATE TABLE api_tokens (
        token_sha256 TEXT PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        role         TEXT NOT NULL,
        created_at   REAL NOT NULL,
        revoked_at   REAL
    );
    CREATE TABLE inbound (
        idempotency_key TEXT PRIMARY KEY,
        subscriber_id   TEXT NOT NULL,
        at              REAL NOT NULL,
        status          INTEGER NOT NULL,
        result_json     TEXT NOT NULL
    );
    ALTER TABLE events ADD COLUMN purged_at REAL;
    """,
    ],
    # An event ended by the store rather than by its analyzer, e.g. "worker_lost" when the
    # cluster worker that watched it died; its report is the last one the worker wrote.
    3: ["ALTER TABLE events ADD COLUMN closed_reason TEXT;"],
    # Tokens expire, and a name can be given again once its old token is revoked (only one
    # active token per name). Callback idempotency keys belong to one subscriber, and the hash
    # of the body they first came with is kept, so a reused key with another body is refused.
    4: [
        """
    CREATE TABLE api_tokens_v4 (
        token_sha256 TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL,
        created_at   REAL NOT NULL,
        revoked_at   REAL,
        expires_at   REAL
    );
    INSERT INTO api_tokens_v4 (token_sha256, name, role, created_at, revoked_at)
        SELECT token_sha256, name, role, created_at, revoked_at FROM api_tokens;
    DROP TABLE api_tokens;
    ALTER TABLE api_tokens_v4 RENAME TO api_tokens;
    CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
    CREATE TABLE inbound_v4 (
        subscriber_id   TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        body_sha256     TEXT NOT NULL DEFAULT '',
        at              REAL NOT NULL,
        status          INTEGER NOT NULL,
        result_json     TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, idempotency_key)
    );
    INSERT INTO inbound_v4 (subscriber_id, idempotency_key, at, status, result_json)
        SELECT subscriber_id, idempotency_key, at, status, result_json FROM inbound;
    DROP TABLE inbound;
    ALTER TABLE inbound_v4 RENAME TO inbound;
    """
    ],
    # A token may be limited to grids and cameras (a 物业 or 社区 sees only its own).
    5: ["ALTER TABLE api_tokens ADD COLUMN scope_json TEXT;"],
    # People sign in with a name and password (argon2 hashes); a browser session is a random
    # cookie (only its hash is kept) with a CSRF token that unsafe requests must echo.
    6: [
        """
    CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        role          TEXT NOT NULL,
        scope_json    TEXT,
        created_at    REAL NOT NULL,
        disabled_at   REAL
    );
    CREATE TABLE sessions (
        session_sha256 TEXT PRIMARY KEY,
        user_name      TEXT NOT NULL,
        csrf           TEXT NOT NULL,
        created_at     REAL NOT NULL,
        expires_at     REAL NOT NULL,
        revoked_at     REAL
    );
    CREATE INDEX sessions_user ON sessions (user_name);
    """
    ],
}


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    camera_id: str
    event_type: str
    state: str
    severity: str
    zone_id: str | None
    rule_id: str | None
    started_at: float
    alerted_at: float
    updated_at: float
    ended_at: float | None
    score: float
    report: dict[str, Any]
    closed_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EventQuery:
    camera_id: str | None = None
    event_type: str | None = None
    state: str | None = None
    since: float | None = None  # alerted_at >= since
    until: float | None = None  # alerted_at < until
    limit: int = 50
    offset: int = 0
    cameras: frozenset[str] | None = None  # a scoped reader's cameras (None: all)


def in_cameras(cameras: Collection[str] | None, column: str = "camera_id") -> tuple[str, list[Any]]:
    """The SQL condition limiting rows to a scope's cameras ("" when unscoped; an empty scope
    matches nothing)."""
    if cameras is None:
        return "", []
    if not cameras:
        return "1 = 0", []
    return f"{column} IN ({','.join('?' * len(cameras))})", sorted(cameras)


class EventStore:
    """``location``: a SQLite file path, or a ``postgresql://`` URL."""

    def __init__(self, location: Path | str) -> None:
        self.backend = open_backend(location)
        self.location = self.backend.location
        self.backend.migrate(_MIGRATIONS, SCHEMA_VERSION)

    def transaction(self) -> AbstractContextManager[Connection]:
        """One serialised write transaction, rolled back on any exception."""
        return self.backend.transaction()

    def reader(self) -> AbstractContextManager[Connection]:
        return self.backend.reader()

    @property
    def schema_version(self) -> int:
        return self.backend.schema_version()

    def close(self) -> None:
        self.backend.close()

    def announce_case_change(self) -> None:
        """Other processes sharing this store hear that cases changed (PostgreSQL NOTIFY;
        SQLite readers poll instead)."""
        self.backend.notify(CASES_CHANNEL)

    def listen_case_changes(
        self, keep_going: Callable[[], bool], on_change: Callable[[], None]
    ) -> bool:
        """Blocks, calling ``on_change`` per change announced, while ``keep_going()``; False at
        once where the engine cannot (SQLite)."""
        return self.backend.listen(CASES_CHANNEL, keep_going, on_change)

    def upsert_event(
        self,
        event: Event,
        severity: str,
        report: dict[str, Any],
        report_relpath: str | None,
        report_sha256: str | None,
        stored_at: float,
        evidence: Sequence[EvidenceItem] = (),
    ) -> EventRow:
        """Insert or update an event row and index evidence files, in one transaction; returns
        the row as stored (unchanged if the event had been closed by the store)."""
        with self.transaction() as db:
            db.execute(
                """
                INSERT INTO events (event_id, camera_id, event_type, state, severity, zone_id,
                    rule_id, started_at, alerted_at, updated_at, ended_at, score, report_json,
                    report_relpath, report_sha256, stored_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (event_id) DO UPDATE SET
                    state = excluded.state, updated_at = excluded.updated_at,
                    ended_at = excluded.ended_at, score = excluded.score,
                    report_json = excluded.report_json,
                    report_relpath = excluded.report_relpath,
                    report_sha256 = excluded.report_sha256
                -- a worker fenced off after its cameras moved must not reopen what was closed
                WHERE events.closed_reason IS NULL
                """,
                (
                    event.event_id, event.camera_id, event.event_type.value,
                    event.state.value, severity, event.zone_id, event.rule_id,
                    event.started_at, event.alerted_at, event.updated_at, event.ended_at,
                    event.score, json.dumps(report, ensure_ascii=False), report_relpath,
                    report_sha256, stored_at,
                ),
            )  # fmt: skip
            db.executemany(
                """
                INSERT INTO evidence (event_id, name, kind, role, relpath,
                    media_type, size_bytes, sha256, start_time, end_time, truncated)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (event_id, name) DO UPDATE SET
                    kind = excluded.kind, role = excluded.role, relpath = excluded.relpath,
                    media_type = excluded.media_type, size_bytes = excluded.size_bytes,
                    sha256 = excluded.sha256, start_time = excluded.start_time,
                    end_time = excluded.end_time, truncated = excluded.truncated
                """,
                [
                    (
                        event.event_id, e.name, e.kind, e.role, e.relpath, e.media_type,
                        e.size_bytes, e.sha256, e.start_time_s, e.end_time_s,
                        int(e.truncated),
                    )
                    for e in evidence
                ],
            )  # fmt: skip
            stored = db.execute(f"SELECT {_COLS} FROM events WHERE event_id = ?",
                                (event.event_id,)).fetchone()  # fmt: skip
        return _row(stored)

    def end_open_events(self, camera_ids: Sequence[str], at: float, reason: str) -> list[str]:
        """End every open event of these cameras on behalf of an analyzer that can no longer
        do it (its worker died); returns their ids. Later writes to them are ignored."""
        if not camera_ids:
            return []
        marks = ",".join("?" * len(camera_ids))
        with self.transaction() as db:
            rows = db.execute(
                f"UPDATE events SET state = 'ended', ended_at = ?, updated_at = ?, "
                f"closed_reason = ? WHERE camera_id IN ({marks}) AND state != 'ended' "
                "RETURNING event_id",
                (at, at, reason, *camera_ids),
            ).fetchall()
        return sorted(str(r[0]) for r in rows)

    def get_event(self, event_id: str) -> EventRow | None:
        with self.reader() as db:
            row = db.execute(f"SELECT {_COLS} FROM events WHERE event_id = ?", (event_id,))
            found = row.fetchone()
        return None if found is None else _row(found)

    def event_latencies(self, since: float, until: float) -> list[float]:
        """Seconds from alerting to stored (visible to the API) of the events alerted in
        [``since``, ``until``): the latency bound of capacity benchmarks, over every process
        that writes this store."""
        with self.reader() as db:
            rows = db.execute(
                "SELECT stored_at - alerted_at FROM events WHERE alerted_at >= ? "
                "AND alerted_at < ? ORDER BY alerted_at",
                (since, until),
            ).fetchall()
        return [float(r[0]) for r in rows]

    def query_events(self, q: EventQuery) -> tuple[list[EventRow], int]:
        """Events newest first, plus the total number matching (for pagination)."""
        where, args = _where(q)
        with self.reader() as db:
            total = int(db.execute(f"SELECT COUNT(*) FROM events {where}", args).fetchone()[0])
            rows = db.execute(
                f"SELECT {_COLS} FROM events {where} "
                "ORDER BY alerted_at DESC, event_id DESC LIMIT ? OFFSET ?",
                [*args, q.limit, q.offset],
            ).fetchall()
        return [_row(r) for r in rows], total

    def evidence_path(self, event_id: str, name: str) -> str | None:
        """Relative path of an indexed evidence file (``name``: clip, alert, first, end)."""
        with self.reader() as db:
            row = db.execute(
                "SELECT relpath FROM evidence WHERE event_id = ? AND name = ?", (event_id, name)
            ).fetchone()
        return None if row is None else str(row[0])

    def evidence_for(self, event_id: str) -> list[tuple[str, str, str]]:
        """(name, relpath, sha256) of every indexed file of an event."""
        with self.reader() as db:
            rows = db.execute(
                "SELECT name, relpath, sha256 FROM evidence WHERE event_id = ? ORDER BY name",
                (event_id,),
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def count_by_type(self) -> dict[str, int]:
        with self.reader() as db:
            rows = db.execute("SELECT event_type, COUNT(*) FROM events GROUP BY 1").fetchall()
        return {str(k): int(v) for k, v in rows}


_COLS = (
    "event_id, camera_id, event_type, state, severity, zone_id, rule_id, started_at, "
    "alerted_at, updated_at, ended_at, score, report_json, closed_reason"
)


def _row(r: Sequence[Any]) -> EventRow:
    (eid, cam, etype, state, sev, zone, rule, started, alerted, updated, ended, score, rep,
     closed) = r  # fmt: skip
    return EventRow(
        eid, cam, etype, state, sev, zone, rule, started, alerted, updated, ended, score,
        json.loads(rep), closed,
    )  # fmt: skip


def _where(q: EventQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("camera_id", q.camera_id),
        ("event_type", q.event_type),
        ("state", q.state),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if q.since is not None:
        clauses.append("alerted_at >= ?")
        args.append(q.since)
    if q.until is not None:
        clauses.append("alerted_at < ?")
        args.append(q.until)
    scope, scope_args = in_cameras(q.cameras)
    if scope:
        clauses.append(scope)
        args.extend(scope_args)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def append_audit(
    db: Connection, at: float, actor: str, role: str, action: str, target: str,
    detail: dict[str, Any],
) -> None:  # fmt: skip
    """One audit_log row, inside the caller's transaction (the table is append-only)."""
    db.execute(
        "INSERT INTO audit_log (at, actor, role, action, target, detail_json) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (at, actor, role, action, target, json.dumps(detail, ensure_ascii=False)),
    )
