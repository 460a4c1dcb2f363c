"""A store written by schema v2 opens under the current schema with its events intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipeline.store.db import sqlite_statements
from pipeline.store.repository import _MIGRATIONS, SCHEMA_VERSION, EventStore


def test_v1_store_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in sqlite_statements(_MIGRATIONS[1]):
        db.execute(statement)
    db.execute(
        "INSERT INTO events VALUES ('e1', 'cam1', 'bin_overflow', 'ended', 'normal', 'bin1', "
        "'bins', 1.0, 2.0, 3.0, 4.0, 0.9, '{\"report_id\": \"e1\"}', NULL, NULL, 5.0)"
    )
    for statement in sqlite_statements(_MIGRATIONS[2]):
        db.execute(statement)
    db.execute("INSERT INTO api_tokens VALUES ('h1', 'ops', 'operator', 1.0, NULL)")
    db.execute("INSERT INTO inbound VALUES ('k1', 'grid', 1.0, 200, '{}')")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    store = EventStore(path)
    assert store.schema_version == SCHEMA_VERSION == 6
    row = store.get_event("e1")
    assert row is not None and row.report == {"report_id": "e1"}
    with store.reader() as conn:
        assert conn.execute("SELECT purged_at FROM events").fetchone() == (None,)
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)  # v6
        # tokens and callback answers carried over (api.auth gives old tokens a lifetime)
        # … unscoped (v5): they see every camera, as before
        assert conn.execute("SELECT name, expires_at, scope_json FROM api_tokens").fetchall() == [
            ("ops", None, None)
        ]
        assert conn.execute("SELECT subscriber_id, idempotency_key FROM inbound").fetchall() == [
            ("grid", "k1")
        ]


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    """Cluster workers on one host open the same new SQLite file at the same moment."""
    import subprocess
    import sys
    import time

    path = tmp_path / "shared.db"
    # all open at the same instant, after their (slow, uneven) imports
    code = (
        "import sys, time; from pipeline.store.repository import EventStore; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); EventStore(sys.argv[1])"
    )
    at = str(time.time() + 3.0)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), at], stderr=subprocess.PIPE)
             for _ in range(6)]  # fmt: skip
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)
    assert EventStore(path).schema_version == SCHEMA_VERSION
