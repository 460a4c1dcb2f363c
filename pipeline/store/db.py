"""SQL backends of the event store: SQLite (embedded default) and PostgreSQL (shared by the
workers of a cluster). Callers write one SQL dialect, SQLite's with ``?`` placeholders, limited
to what both engines run the same way (``ON CONFLICT``, ``RETURNING``, ``GREATEST``); the
PostgreSQL backend only rewrites placeholders, and the schema is rendered per engine from one
list of migrations (``pipeline.store.repository``).

Write transactions are serialised on both engines. SQLite does it by ``BEGIN IMMEDIATE``;
PostgreSQL takes one transaction-scoped advisory lock, because the case logic reads then writes
("is a case open for this key? if not, open one") and must not interleave across workers. Events
arrive at a few per second per site, so one writer at a time costs nothing measurable.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from pipeline.config import redact_url
from pipeline.errors import StoreError


class StoreIntegrityError(StoreError):
    """A constraint refused a write (duplicate key, append-only table)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


@dataclass(frozen=True, slots=True)
class AppendOnly:
    """Migration item: rows of ``table`` can be inserted, never changed or deleted."""

    table: str


MigrationItem = str | AppendOnly


def is_postgres_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


class Backend(Protocol):
    location: str  # for messages: a path, or a URL without its credentials

    def reader(self) -> AbstractContextManager[Connection]:
        """Each statement autocommits."""
        ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """One serialised write, rolled back on any exception."""
        ...

    def migrate(self, migrations: dict[int, list[MigrationItem]], latest: int) -> None: ...
    def schema_version(self) -> int: ...
    def close(self) -> None: ...

    def notify(self, channel: str) -> None:
        """Tell other processes listening on ``channel`` that something changed."""
        ...

    def listen(
        self, channel: str, keep_going: Callable[[], bool], on_notice: Callable[[], None]
    ) -> bool:
        """Call ``on_notice`` for each notice on ``channel`` while ``keep_going()``; False at
        once where the engine has no notices (the caller polls instead)."""
        ...


def _too_new(location: str, version: int, latest: int) -> StoreError:
    return StoreError(
        f"{location} has schema version {version}, newer than this gridsight ({latest}); "
        "upgrade gridsight instead of downgrading the store"
    )


# -- SQLite ---------------------------------------------------------------------------------


class _SqliteConn:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        try:
            return self.db.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            raise StoreIntegrityError(str(exc)) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.db.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise StoreIntegrityError(str(exc)) from exc


class _NoNotices:
    """SQLite has no notices between processes: readers poll (``ChangeFeed``)."""

    def notify(self, channel: str) -> None:  # noqa: ARG002
        return None

    def listen(self, channel: str, keep_going: Callable[[], bool],  # noqa: ARG002
               on_notice: Callable[[], None]) -> bool:  # noqa: ARG002  # fmt: skip
        return False


class SqliteBackend(_NoNotices):
    """WAL mode; a short-lived connection per call, so none is shared between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # created owner-only before SQLite opens it; its -wal and -shm files copy the mode
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            with self._connect() as db:
                # Turning a new file to WAL needs an exclusive lock and SQLite does not wait
                # for it (no busy handler): processes opening it together retry briefly.
                deadline = time.monotonic() + 30.0
                while True:
                    try:
                        db.execute("PRAGMA journal_mode=WAL")
                        break
                    except sqlite3.OperationalError as exc:
                        if "locked" not in str(exc) or time.monotonic() > deadline:
                            raise
                        time.sleep(0.02)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open event store {path}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            # PostgreSQL's two-argument maximum; SQLite spells it MAX(a, b)
            db.create_function("GREATEST", 2, max, deterministic=True)
            yield db
        finally:
            db.close()

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        with self._connect() as db:
            yield _SqliteConn(db)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteConn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def schema_version(self) -> int:
        with self._connect() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, migrations: dict[int, list[MigrationItem]], latest: int) -> None:
        try:
            with self._connect() as db:
                while True:
                    # the version is read under the write lock: processes starting together
                    # (cluster workers on one host) must not apply the same step twice
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        version = int(db.execute("PRAGMA user_version").fetchone()[0])
                        if version > latest:
                            raise _too_new(self.location, version, latest)
                        if version == latest:
                            db.execute("COMMIT")
                            return
                        # executescript() would COMMIT first: run them inside our transaction
                        for statement in sqlite_statements(migrations[version + 1]):
                            db.execute(statement)
                        db.execute(f"PRAGMA user_version={version + 1}")
                        db.execute("COMMIT")
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot migrate event store {self.location}: {exc}") from exc

    def close(self) -> None:
        """Nothing held between calls."""


def sqlite_statements(items: list[MigrationItem]) -> Iterator[str]:
    for item in items:
        if isinstance(item, AppendOnly):
            for op, tag in (("UPDATE", "u"), ("DELETE", "d")):
                yield (
                    f"CREATE TRIGGER {item.table}_append_only_{tag} BEFORE {op} ON {item.table}\n"
                    f"BEGIN SELECT RAISE(ABORT, '{item.table} is append-only'); END;"
                )
        else:
            yield from _split(item)


def _split(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip():
        raise StoreError(f"incomplete SQL statement in migration: {buf.strip()[:80]!r}")


# -- PostgreSQL -----------------------------------------------------------------------------

# any constant works; this one spells "gridsigh" in ASCII, unlikely to meet another app's lock
_WRITE_LOCK = 0x6772696473696768


@lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """``?`` → ``%s`` outside string literals; a literal ``%`` is doubled for psycopg."""
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


_PG_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    # SQLite's REAL is 8 bytes; PostgreSQL's is 4, which would round epoch seconds to minutes
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
)  # fmt: skip


def pg_statements(items: list[MigrationItem]) -> Iterator[str]:
    for item in items:
        if isinstance(item, AppendOnly):
            yield (
                "CREATE OR REPLACE FUNCTION gridsight_append_only() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME "
                "USING ERRCODE = 'integrity_constraint_violation'; END $$"
            )
            yield (
                f"CREATE TRIGGER {item.table}_append_only BEFORE UPDATE OR DELETE ON "
                f"{item.table} FOR EACH ROW EXECUTE FUNCTION gridsight_append_only()"
            )
            yield (  # TRUNCATE skips row triggers
                f"CREATE TRIGGER {item.table}_append_only_t BEFORE TRUNCATE ON {item.table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION gridsight_append_only()"
            )
            continue
        for statement in _split(item):
            for pattern, repl in _PG_TYPES:
                statement = pattern.sub(repl, statement)
            yield statement


class _PgConn:
    def __init__(self, conn: Any, errors: Any) -> None:
        self.conn = conn
        self.errors = errors

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        try:
            # without arguments psycopg takes the text as is, so a literal % stays single
            cur: Cursor = (
                self.conn.execute(pg_sql(sql), tuple(args)) if args else self.conn.execute(sql)
            )
            return cur
        except self.errors.IntegrityError as exc:
            raise StoreIntegrityError(str(exc).strip()) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if not rows:
            return
        try:
            with self.conn.cursor() as cur:
                cur.executemany(pg_sql(sql), rows)
        except self.errors.IntegrityError as exc:
            raise StoreIntegrityError(str(exc).strip()) from exc


class PostgresBackend:
    """A small connection pool per process (psycopg 3, the ``[postgres]`` extra)."""

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise StoreError(
                "a PostgreSQL store needs psycopg: pip install -e '.[postgres]'"
            ) from exc
        self.location = redact_url(url)
        self._url = url  # for the listening connection; never logged (location is)
        self._errors = psycopg.errors
        self._psycopg = psycopg
        try:  # one plain connection first: the pool would only say "timeout", not why
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            reason = str(exc).strip().replace(url, self.location)
            raise StoreError(f"cannot connect to event store {self.location}: {reason}") from None
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max_connections, kwargs={"autocommit": True},
            check=ConnectionPool.check_connection, open=False, name="gridsight",
        )  # fmt: skip
        try:
            self.pool.open(wait=True, timeout=15.0)
        except Exception as exc:  # psycopg_pool.PoolTimeout hides the server's reason in logs
            self.pool.close()  # or its threads keep trying to connect
            raise StoreError(f"cannot connect to event store {self.location}: {exc}") from exc

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        with self.pool.connection() as conn:
            yield _PgConn(conn, self._errors)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            yield _PgConn(conn, self._errors)

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            return _pg_version(conn)

    def migrate(self, migrations: dict[int, list[MigrationItem]], latest: int) -> None:
        try:
            with self.pool.connection() as conn, conn.transaction():
                # several workers may start at once: one migrates, the others then see it done
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS gridsight_schema (version INTEGER NOT NULL)"
                )
                version = _pg_version(conn)
                if version > latest:
                    raise _too_new(self.location, version, latest)
                for v in range(version + 1, latest + 1):
                    for statement in pg_statements(migrations[v]):
                        conn.execute(statement)
                conn.execute("DELETE FROM gridsight_schema")
                conn.execute("INSERT INTO gridsight_schema VALUES (%s)", (max(version, latest),))
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot migrate event store {self.location}: {exc}") from exc

    def close(self) -> None:
        self.pool.close()

    def notify(self, channel: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(f"NOTIFY {_identifier(channel)}")

    def listen(
        self, channel: str, keep_going: Callable[[], bool], on_notice: Callable[[], None]
    ) -> bool:
        """One connection of its own (a pooled one would hand the LISTEN to others)."""
        try:
            conn = self._psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        except self._psycopg.Error:
            return False  # the caller polls
        try:
            with conn:
                conn.execute(f"LISTEN {_identifier(channel)}")
                while keep_going():
                    for _ in conn.notifies(timeout=1.0):
                        on_notice()
        except self._psycopg.Error:
            return False  # the server went away: the caller polls (and listens next time)
        return True


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a channel name: {name!r}")
    return name


def _pg_version(conn: Any) -> int:
    exists = conn.execute("SELECT to_regclass('gridsight_schema')").fetchone()[0]
    if exists is None:
        return 0
    row = conn.execute("SELECT version FROM gridsight_schema").fetchone()
    return 0 if row is None else int(row[0])


def open_backend(location: str | Path) -> Backend:
    if is_postgres_url(location):
        return PostgresBackend(str(location))
    return SqliteBackend(Path(location))
