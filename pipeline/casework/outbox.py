"""Durable, signed delivery of case updates to any number of subscribers (transactional outbox).

A case transition and its outbox rows are written in one SQLite transaction
(``CaseService`` calls ``Outbox.enqueue`` inside it), so a change is never lost and never sent
without having happened. ``deliver_due`` POSTs pending rows: HMAC-SHA256 signature over
``"<timestamp>.<idempotency key>.<body>"``, an ``Idempotency-Key`` that stays the same on
every retry (signed, so a captured request cannot be replayed under a new key), and the
row is marked delivered only after a 2xx (or 409: "already have it"). A process killed between
the POST and the mark sends the row again on restart with the same key, which an idempotent
receiver applies once: at-least-once transport, exactly-once effect. Failures back off
exponentially with jitter; after ``max_attempts`` (or a permanent 4xx) the row is dead-lettered
for an admin to inspect and requeue. Rows for one (subscriber, case) go out in order: a later
update waits while an earlier one is still pending.

HTTP is stdlib ``urllib`` on purpose: one small POST per row needs no client library, and the
sender runs in the pipeline's case worker thread.

Alerts (``[[alerts]]``) go through the same table: when a case opens (before review: they are
for the people who review), a row per alert target in scope, sent with ``apprise`` (WeCom,
DingTalk, Feishu, email, …) with the alert snapshot attached; at most one per camera per
``min_interval_s`` (rows beyond are not written: a storm of cases is one alert). Webhook
subscribers hear only reviewed states (``PUSHED_STATES``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.casework.cases import PUSHED_STATES, Action, Case, HistoryEntry, case_json
from pipeline.config import AlertTarget, Subscriber
from pipeline.evidence.report import canonical_json
from pipeline.store import outbox as rows
from pipeline.store.db import Connection
from pipeline.store.repository import EventStore

PAYLOAD_SCHEMA = "gridsight.case-update/1"
ALERT_SCHEMA = "gridsight.alert/1"
SIGNATURE_HEADER = "X-Gridsight-Signature"
TIMESTAMP_HEADER = "X-Gridsight-Timestamp"
_RETRYABLE_4XX = frozenset({408, 425, 429})
_BACKOFF_BASE_S = 5.0
_BACKOFF_MAX_S = 3600.0


IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: bytes, timestamp: int, key: str, body: bytes) -> str:
    """The signature of one request: timestamp, idempotency key and body, all covered."""
    mac = hmac.new(secret, f"{timestamp}.{key}.".encode(), hashlib.sha256)
    mac.update(body)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes, timestamp: str | None, key: str | None, body: bytes, signature: str | None,
    now: float, tolerance_s: float = 300.0,
) -> str | None:  # fmt: skip
    """None if valid, else why not (for a 401 message). Old timestamps are replays; a replay
    inside the window carries its signed key, which the receiver has already answered."""
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}"
    if not key or len(key) > 200:
        return f"{IDEMPOTENCY_HEADER} header is required (at most 200 characters)"
    try:
        ts = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not an integer"
    if abs(now - ts) > tolerance_s:
        return f"{TIMESTAMP_HEADER} is more than {tolerance_s:.0f} s away from now"
    if not hmac.compare_digest(sign(secret, ts, key, body), signature):
        return "signature does not match"
    return None


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int | None  # None: no response (connection refused, timeout)
    error: str | None


Post = Callable[[str, bytes, dict[str, str], float], HttpResult]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an instruction: following it would turn the signed POST
    into a GET to wherever the receiver (or whoever answers for it) points, and count that
    host's 200 as delivered."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResult:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            return HttpResult(int(resp.status), None)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            where = str(exc.headers.get("Location", "?"))[:200]
            return HttpResult(exc.code, f"HTTP {exc.code} redirect to {where} not followed; "
                              "configure the subscriber's final URL")  # fmt: skip
        return HttpResult(exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        return HttpResult(None, str(getattr(exc, "reason", exc))[:200])


# (apprise URLs, title, body, attachment, timeout) → result
Notify = Callable[[str, str, str, Path | None, float], HttpResult]


def apprise_notify(
    urls: str, title: str, body: str, attachment: Path | None, timeout_s: float
) -> HttpResult:
    """One notification through apprise; its per-service errors go to the log."""
    import apprise

    sender = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
    if not sender.add(urls):
        return HttpResult(400, "apprise does not accept the configured URL(s)")  # permanent
    for server in sender:
        server.socket_read_timeout = server.socket_connect_timeout = timeout_s
    attach = apprise.AppriseAttachment(str(attachment)) if attachment is not None else None
    if sender.notify(title=title, body=body, attach=attach):
        return HttpResult(200, None)
    return HttpResult(None, "apprise: not delivered (see the log for the service's answer)")


def was_pushed(store: EventStore, subscriber_id: str, case_id: str) -> bool:
    """Whether an update of ``case_id`` was sent (or is being sent) to ``subscriber_id``:
    only then may that subscriber's callbacks act on the case."""
    return rows.was_attempted(store, subscriber_id, case_id)


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    attempted: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    subscriber_id: str
    idempotency_key: str
    case_id: str | None
    kind: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    delivered_at: float | None


class Outbox:
    def __init__(
        self,
        store: EventStore,
        subscribers: Sequence[Subscriber],
        secrets: Mapping[str, bytes],
        tz: ZoneInfo,
        clock: Callable[[], float],
        *,
        post: Post = http_post,
        rng: random.Random | None = None,
        on_sent: Callable[[OutboxRow], None] | None = None,
        sending: bool = True,
        alerts: Sequence[AlertTarget] = (),
        alert_urls: Mapping[str, str] | None = None,
        notify: Notify = apprise_notify,
        attachment: Callable[[str], Path | None] | None = None,
    ) -> None:
        """``sending=False``: this process only enqueues (an API without a pipeline); the
        process running the case worker, which has every key, delivers. ``alert_urls``: the
        apprise URLs of the alert targets (from their ``url_env``); ``attachment``: a local
        file for an evidence relpath (the snapshot attached to an alert)."""
        missing = [s.id for s in subscribers if s.id not in secrets]
        missing += [a.id for a in alerts if a.id not in (alert_urls or {})]
        if missing and sending:
            raise ValueError(f"no HMAC secret or alert URL for {', '.join(missing)}")
        self.store = store
        self.subscribers = {s.id: s for s in subscribers}
        self.alerts = {a.id: a for a in alerts}
        self.alert_urls = dict(alert_urls or {})
        self.notify = notify
        self.attachment = attachment
        self.secrets = dict(secrets)
        self.tz = tz
        self.clock = clock
        self.post = post
        self.rng = rng or random.Random()
        # test hook: called after a successful POST, before the row is marked delivered
        self.on_sent = on_sent

    # -- writing (inside the caller's transaction) ------------------------------------------

    def enqueue(
        self, db: Connection, case: Case, entry: HistoryEntry, report: dict[str, Any]
    ) -> None:
        now = self.clock()
        if entry.action == Action.DETECT.value:
            self._enqueue_alerts(db, case, report, now)
        if case.state not in PUSHED_STATES or entry.action == Action.DETECT.value:
            return  # platforms hear of a case once a person has reviewed it
        for sub in self.subscribers.values():
            if not _covers(sub.event_types, case.event_type):
                continue
            key = f"{case.case_id}:{entry.seq}:{sub.id}"
            payload = {
                "schema": PAYLOAD_SCHEMA,
                "idempotency_key": key,
                "subscriber_id": sub.id,
                "kind": entry.action,
                "case": case_json(case, [entry], self.tz),
                "report": report,
            }
            rows.enqueue(db, sub.id, key, case.case_id, entry.action, payload, now)

    def _enqueue_alerts(
        self, db: Connection, case: Case, report: dict[str, Any], now: float
    ) -> None:
        grids = {g.get("code") for g in report.get("location", {}).get("grids", [])}
        snapshot = next((e.get("relpath") for e in report.get("evidence", [])
                         if e.get("name") == "alert"), None)  # fmt: skip
        for target in self.alerts.values():
            if not _in_scope(target, case, grids):
                continue
            if target.min_interval_s and rows.recent_alerts(
                db, target.id, case.camera_id, now - target.min_interval_s
            ):
                continue  # this camera alerted this target a moment ago: the UI has the rest
            link = f"{target.link_base}{case.case_id}" if target.link_base else None
            urgent = "【紧急】" if case.severity == "urgent" else ""
            title = f"{urgent}{report.get('title_zh', case.event_type)}"
            body = "\n".join(x for x in (
                report.get("summary_zh"), report.get("title_en"), report.get("created_at"),
                f"案件 case {case.case_id}", link,
            ) if x)  # fmt: skip
            key = f"{case.case_id}:alert:{target.id}"
            payload = {"schema": ALERT_SCHEMA, "idempotency_key": key, "target_id": target.id,
                       "case_id": case.case_id, "event_type": case.event_type,
                       "severity": case.severity, "camera_id": case.camera_id,
                       "title": title, "body": body, "link": link,
                       "snapshot_relpath": snapshot}  # fmt: skip
            rows.enqueue(db, target.id, key, case.case_id, "alert", payload, now)

    # -- sending --------------------------------------------------------------------------

    def deliver_due(self, limit: int = 50) -> DeliveryStats:
        """Send what is due, up to ``limit`` attempts; a delivered row frees the next one of
        its (subscriber, case) in the same call."""
        total = DeliveryStats()
        while total.attempted + total.dead < limit:
            stats = self._pass(limit - total.attempted - total.dead)
            total = DeliveryStats(
                *(a + b for a, b in zip(astuple(total), astuple(stats), strict=True))
            )
            if stats.delivered == 0:
                break
        return total

    def _pass(self, limit: int) -> DeliveryStats:
        now = self.clock()
        attempted = delivered = failed = dead = 0
        for seq, sub_id, key, payload_json, attempts in rows.due(self.store, now, limit):
            sub: Subscriber | AlertTarget | None = self.subscribers.get(sub_id)
            sub = sub or self.alerts.get(sub_id)
            if sub is not None and sub_id not in self.secrets and sub_id not in self.alert_urls:
                continue  # not ours to send (see ``sending``)
            if sub is None:  # subscriber removed from the config: keep the row, say why
                self._mark(seq, "dead", attempts, now, "subscriber no longer configured")
                dead += 1
                continue
            attempted += 1
            if isinstance(sub, AlertTarget):
                result = self._alert(sub, json.loads(payload_json))
            else:
                body = canonical_json(json.loads(payload_json))
                ts = int(self.clock())
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    IDEMPOTENCY_HEADER: key,
                    TIMESTAMP_HEADER: str(ts),
                    SIGNATURE_HEADER: sign(self.secrets[sub_id], ts, key, body),
                }
                result = self.post(sub.url, body, headers, sub.timeout_s)
            ok = result.status is not None and (200 <= result.status < 300 or result.status == 409)
            if ok:
                if self.on_sent is not None:
                    self.on_sent(self._row(seq))
                self._mark(seq, "delivered", attempts + 1, self.clock(), None)
                delivered += 1
                continue
            permanent = (  # a redirect will not change by retrying: a human must look
                result.status is not None
                and 300 <= result.status < 500
                and result.status not in _RETRYABLE_4XX
            )
            if permanent or attempts + 1 >= sub.max_attempts:
                self._mark(seq, "dead", attempts + 1, self.clock(), result.error)
                dead += 1
            else:
                delay = min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2.0**attempts)
                delay *= self.rng.uniform(0.5, 1.0)  # jitter: receivers recover without a stampede
                self._mark(seq, "pending", attempts + 1, self.clock() + delay, result.error)
                failed += 1
        return DeliveryStats(attempted, delivered, failed, dead)

    def _alert(self, target: AlertTarget, payload: dict[str, Any]) -> HttpResult:
        rel = payload.get("snapshot_relpath")
        picture = self.attachment(rel) if rel and self.attachment is not None else None
        return self.notify(self.alert_urls[target.id], payload["title"], payload["body"],
                           picture, target.timeout_s)  # fmt: skip

    def _mark(self, seq: int, state: str, attempts: int, at: float, error: str | None) -> None:
        rows.mark(self.store, seq, state, attempts, at, error)

    # -- inspection -----------------------------------------------------------------------

    def _row(self, seq: int) -> OutboxRow:
        return self.rows(seq=seq)[0]

    def rows(self, state: str | None = None, seq: int | None = None) -> list[OutboxRow]:
        return [OutboxRow(*r) for r in rows.rows(self.store, state, seq)]

    def counts(self) -> dict[str, int]:
        return rows.counts(self.store)

    def requeue(self, seq: int) -> bool:
        """Give a dead-lettered row a fresh set of attempts."""
        return rows.requeue(self.store, seq, self.clock())


def _covers(event_types: Sequence[str], event_type: str) -> bool:
    """Whether a receiver's ``event_types`` ("*": all) include ``event_type``."""
    return "*" in event_types or event_type in event_types


def _in_scope(target: AlertTarget, case: Case, grids: set[Any]) -> bool:
    return (
        _covers(target.event_types, case.event_type)
        and case.severity in target.severities
        and (not target.cameras or case.camera_id in target.cameras)
        and (not target.grid_codes or bool(grids & set(target.grid_codes)))
    )
