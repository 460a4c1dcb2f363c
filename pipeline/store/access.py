"""Who may do what, and what they did: API tokens, the audit log, platform callbacks' answers,
and the dashboard's figures. The API layer calls these; it runs no SQL of its own."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.codes import DEVICE_EVENT_TYPES
from pipeline.store.db import Connection
from pipeline.store.repository import EventStore, append_audit, in_cameras

# Also the lifetime of tokens made before tokens had one (schema v4).
DEFAULT_TTL_S = 90 * 86400.0
_ACTIVE = "revoked_at IS NULL AND COALESCE(expires_at, created_at + ?) > ?"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


# -- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenScope:
    """What a token may see: the cameras of these grids (``grid_code``) and these cameras."""

    grids: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()

    def json(self) -> str:
        return json.dumps({"grids": list(self.grids), "cameras": list(self.cameras)})

    @classmethod
    def of_json(cls, text: str | None) -> TokenScope | None:
        if text is None:
            return None
        raw = json.loads(text)
        return cls(tuple(raw.get("grids", ())), tuple(raw.get("cameras", ())))


def add_token(
    store: EventStore, digest: str, name: str, role: str, now: float, ttl_s: float,
    scope: TokenScope | None = None,
) -> None:  # fmt: skip
    """Store a token's hash. An expired token of the same name is revoked first, so the name
    can be renewed; an active one makes this fail (StoreIntegrityError)."""
    with store.transaction() as db:
        db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
            "AND expires_at IS NOT NULL AND expires_at <= ?",
            (now, name, now),
        )
        db.execute(
            "INSERT INTO api_tokens (token_sha256, name, role, created_at, expires_at, "
            "scope_json) VALUES (?, ?, ?, ?, ?, ?)",
            (digest, name, role, now, now + ttl_s, None if scope is None else scope.json()),
        )


def revoke_tokens(store: EventStore, name: str, now: float) -> bool:
    with store.transaction() as db:
        cur = db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (now, name),
        )
        return cur.rowcount > 0


def active_token(
    store: EventStore, digest: str, now: float
) -> tuple[str, str, TokenScope | None] | None:
    """(name, role, scope) of an active (not revoked, not expired) token."""
    with store.reader() as db:
        row = db.execute(
            f"SELECT name, role, scope_json FROM api_tokens WHERE token_sha256 = ? AND {_ACTIVE}",
            (digest, DEFAULT_TTL_S, now),
        ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), TokenScope.of_json(row[2]))


# -- users and browser sessions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str
    role: str
    scope: TokenScope | None


def put_user(store: EventStore, name: str, password_hash: str, role: str,
             scope: TokenScope | None, now: float) -> None:  # fmt: skip
    """Add a user, or give an existing one a new password, role and scope (enabled again);
    their open sessions end (a changed password must log everyone out)."""
    scope_json = None if scope is None else scope.json()
    with store.transaction() as db:
        updated = db.execute(
            "UPDATE users SET password_hash = ?, role = ?, scope_json = ?, disabled_at = NULL "
            "WHERE name = ?", (password_hash, role, scope_json, name),
        ).rowcount  # fmt: skip
        if not updated:
            db.execute(
                "INSERT INTO users (name, password_hash, role, scope_json, created_at) "
                "VALUES (?, ?, ?, ?, ?)", (name, password_hash, role, scope_json, now),
            )  # fmt: skip
        _end_sessions_of(db, name, now)


def _end_sessions_of(db: Connection, name: str, now: float) -> None:
    db.execute("UPDATE sessions SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
               (now, name))  # fmt: skip


def disable_user(store: EventStore, name: str, now: float) -> bool:
    with store.transaction() as db:
        done = db.execute("UPDATE users SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL",
                          (now, name)).rowcount  # fmt: skip
        _end_sessions_of(db, name, now)
    return bool(done)


def active_user(store: EventStore, name: str) -> User | None:
    with store.reader() as db:
        row = db.execute(
            "SELECT name, password_hash, role, scope_json FROM users "
            "WHERE name = ? AND disabled_at IS NULL", (name,),
        ).fetchone()  # fmt: skip
    return None if row is None else User(str(row[0]), str(row[1]), str(row[2]),
                                         TokenScope.of_json(row[3]))  # fmt: skip


def add_session(store: EventStore, digest: str, user: str, csrf: str, now: float,
                ttl_s: float) -> None:  # fmt: skip
    with store.transaction() as db:
        db.execute(
            "INSERT INTO sessions (session_sha256, user_name, csrf, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)", (digest, user, csrf, now, now + ttl_s),
        )  # fmt: skip


def active_session(store: EventStore, digest: str, now: float) -> tuple[User, str] | None:
    """(the user, the session's CSRF token) of an open session of an enabled user."""
    with store.reader() as db:
        row = db.execute(
            "SELECT u.name, u.password_hash, u.role, u.scope_json, s.csrf FROM sessions s "
            "JOIN users u ON u.name = s.user_name WHERE s.session_sha256 = ? "
            "AND s.revoked_at IS NULL AND s.expires_at > ? AND u.disabled_at IS NULL",
            (digest, now),
        ).fetchone()
    if row is None:
        return None
    return User(str(row[0]), str(row[1]), str(row[2]), TokenScope.of_json(row[3])), str(row[4])


def end_session(store: EventStore, digest: str, now: float) -> None:
    with store.transaction() as db:
        db.execute("UPDATE sessions SET revoked_at = ? WHERE session_sha256 = ? "
                   "AND revoked_at IS NULL", (now, digest))  # fmt: skip


# -- audit ----------------------------------------------------------------------------------


def audit(store: EventStore, at: float, actor: str, role: str, action: str, target: str,
          detail: dict[str, Any]) -> None:  # fmt: skip
    with store.transaction() as db:
        append_audit(db, at, actor, role, action, target, detail)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) matching strings that start with ``prefix``."""
    for ch in ("\\", "%", "_"):
        prefix = prefix.replace(ch, "\\" + ch)
    return prefix + "%"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any]


def audit_log(
    store: EventStore, actor: str | None, target_prefix: str | None, limit: int
) -> list[AuditEntry]:
    """Newest first."""
    clauses, args = [], []
    if actor is not None:
        clauses.append("actor = ?")
        args.append(actor)
    if target_prefix is not None:
        clauses.append("target LIKE ? ESCAPE '\\'")
        args.append(like_prefix(target_prefix))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with store.reader() as db:
        rows = db.execute(
            f"SELECT seq, at, actor, role, action, target, detail_json FROM audit_log {where} "
            "ORDER BY seq DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
    return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]


# -- platform callbacks -----------------------------------------------------------------------


def callback_answer(
    store: EventStore, subscriber_id: str, key: str
) -> tuple[int, dict[str, Any], str] | None:
    """(status, answer, body sha256) given to this subscriber's key before, if any."""
    with store.reader() as db:
        row = db.execute(
            "SELECT status, result_json, body_sha256 FROM inbound "
            "WHERE subscriber_id = ? AND idempotency_key = ?",
            (subscriber_id, key),
        ).fetchone()
    return None if row is None else (int(row[0]), json.loads(row[1]), str(row[2]))


def record_callback(store: EventStore, subscriber_id: str, key: str, body_sha256: str, at: float,
                    status: int, answer: dict[str, Any]) -> None:  # fmt: skip
    with store.transaction() as db:
        db.execute(
            "INSERT INTO inbound (subscriber_id, idempotency_key, body_sha256, at, status, "
            "result_json) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (subscriber_id, key, body_sha256, at, status, json.dumps(answer, ensure_ascii=False)),
        )


# -- dashboard ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dashboard:
    events: Sequence[tuple[str, float]]  # (event type, alerted at), camera events left out
    breached: frozenset[str]  # cases that ever missed a deadline
    dispatched: Sequence[str]  # cases created since, that were dispatched
    states: dict[str, int]  # cases created since, by state


def dashboard(store: EventStore, since: float, cameras: frozenset[str] | None = None) -> Dashboard:
    """``cameras``: a scoped reader's cameras (None: all)."""
    ev_scope, ev_args = in_cameras(cameras)
    c_scope, c_args = in_cameras(cameras, "c.camera_id")
    ev_and = f" AND {ev_scope}" if ev_scope else ""
    c_and = f" AND {c_scope}" if c_scope else ""
    with store.reader() as db:
        events = [(str(r[0]), float(r[1])) for r in db.execute(
            f"SELECT event_type, alerted_at FROM events WHERE alerted_at >= ?{ev_and}",
            (since, *ev_args),
        ).fetchall() if r[0] not in DEVICE_EVENT_TYPES]  # fmt: skip
        breached = frozenset(str(r[0]) for r in db.execute(
            "SELECT DISTINCT h.case_id FROM case_history h JOIN cases c USING (case_id) "
            f"WHERE h.action IN ('escalate', 'overdue'){c_and}", c_args,
        ))  # fmt: skip
        dispatched = [str(r[0]) for r in db.execute(
            "SELECT DISTINCT h.case_id FROM case_history h JOIN cases c USING (case_id) "
            f"WHERE h.action = 'dispatch' AND c.created_at >= ?{c_and}", (since, *c_args),
        )]  # fmt: skip
        states = {str(k): int(v) for k, v in db.execute(
            f"SELECT c.state, COUNT(*) FROM cases c WHERE c.created_at >= ?{c_and} GROUP BY 1",
            (since, *c_args),
        ).fetchall()}  # fmt: skip
    return Dashboard(events, breached, dispatched, states)
