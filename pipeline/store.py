"""Event index: SQLite in WAL mode under the evidence root, with versioned migrations.

Only the evidence writer thread writes; API threads read concurrently (WAL lets readers run
while the writer commits). Each call opens its own short-lived connection, so no connection is
ever shared between threads. Rows point at files that were completely written and hashed
before the row was committed: nothing half-written is ever indexed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import StoreError
from pipeline.report import EvidenceItem
from pipeline.types import Event

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
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
    """,
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


@dataclass(frozen=True, slots=True)
class EventQuery:
    camera_id: str | None = None
    event_type: str | None = None
    state: str | None = None
    since: float | None = None  # alerted_at >= since
    until: float | None = None  # alerted_at < until
    limit: int = 50
    offset: int = 0


class EventStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                self._migrate(db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event store {path}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this gridsight "
                f"({SCHEMA_VERSION}); upgrade gridsight instead of downgrading the store"
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                # executescript() would COMMIT first; run statements inside our transaction.
                for statement in filter(str.strip, _MIGRATIONS[v].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={v}")
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self._connect() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def upsert_event(
        self,
        event: Event,
        severity: str,
        report: dict[str, Any],
        report_relpath: str | None,
        report_sha256: str | None,
        stored_at: float,
        evidence: Sequence[EvidenceItem] = (),
    ) -> None:
        """Insert or update an event row and index evidence files, in one transaction."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
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
                    INSERT OR REPLACE INTO evidence (event_id, name, kind, role, relpath,
                        media_type, size_bytes, sha256, start_time, end_time, truncated)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise

    def get_event(self, event_id: str) -> EventRow | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {_COLS} FROM events WHERE event_id = ?", (event_id,))
            found = row.fetchone()
        return None if found is None else _row(found)

    def query_events(self, q: EventQuery) -> tuple[list[EventRow], int]:
        """Events newest first, plus the total number matching (for pagination)."""
        where, args = _where(q)
        with self._connect() as db:
            total = int(db.execute(f"SELECT COUNT(*) FROM events {where}", args).fetchone()[0])
            rows = db.execute(
                f"SELECT {_COLS} FROM events {where} "
                "ORDER BY alerted_at DESC, event_id DESC LIMIT ? OFFSET ?",
                [*args, q.limit, q.offset],
            ).fetchall()
        return [_row(r) for r in rows], total

    def evidence_path(self, event_id: str, name: str) -> str | None:
        """Relative path of an indexed evidence file (``name``: clip, alert, first, end)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT relpath FROM evidence WHERE event_id = ? AND name = ?", (event_id, name)
            ).fetchone()
        return None if row is None else str(row[0])

    def evidence_for(self, event_id: str) -> list[tuple[str, str, str]]:
        """(name, relpath, sha256) of every indexed file of an event."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT name, relpath, sha256 FROM evidence WHERE event_id = ? ORDER BY name",
                (event_id,),
            ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def count_by_type(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT event_type, COUNT(*) FROM events GROUP BY 1").fetchall()
        return {str(k): int(v) for k, v in rows}


_COLS = (
    "event_id, camera_id, event_type, state, severity, zone_id, rule_id, started_at, "
    "alerted_at, updated_at, ended_at, score, report_json"
)


def _row(r: Sequence[Any]) -> EventRow:
    (eid, cam, etype, state, sev, zone, rule, started, alerted, updated, ended, score, rep) = r
    return EventRow(
        eid, cam, etype, state, sev, zone, rule, started, alerted, updated, ended, score,
        json.loads(rep),
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
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args
