"""Cases: what happens to a detection afterwards (复核 → 上报 → 派遣 → 处置 → 核查 → 结案).

A *case* gathers the detections of one problem at one place: while a case is open for
(camera, zone, event type), new detections attach to it instead of opening another
(一次录入、多方共用). Every transition is one row appended to ``case_history`` (SQLite
triggers refuse UPDATE and DELETE) with actor, time, reason; invalid transitions raise
``CaseError`` naming the state and action. Deadlines come from the SLA policy
(``CasesConfig.sla``) on continuous or working-hours clocks (``pipeline.casework.sla``);
``tick(now)`` escalates breaches along the escalation chain (物业 → 社区 → 街道/城管)
and runs the automatic re-check (自动核查) of disposed cases. Time comes from an injected
clock, so the whole lifecycle runs in virtual time in tests.

Outbound delivery is transactional: each transition that a platform must hear about enqueues
its outbox rows in the same SQLite transaction (``pipeline.casework.outbox``), so a crash can never
leave a state change unsent or a message about a change that did not happen.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pipeline.casework.sla import SlaClock
from pipeline.codes import DEVICE_EVENT_TYPES
from pipeline.config import CasesConfig, SlaRule
from pipeline.errors import PipelineError
from pipeline.store import cases as rows
from pipeline.store.cases import CaseRows
from pipeline.store.db import Connection
from pipeline.store.repository import EventRow, EventStore


class CaseError(PipelineError):
    """A refused case operation (unknown case, invalid transition, missing reason)."""


class CaseState(StrEnum):
    PENDING_REVIEW = "pending_review"
    REPORTED = "reported"
    DISPATCHED = "dispatched"
    RESPONDED = "responded"
    DISPOSED = "disposed"
    VERIFYING = "verifying"
    CLOSED = "closed"
    REJECTED = "rejected"
    RETURNED = "returned"
    SUSPENDED = "suspended"
    VERIFY_FAILED = "verify_failed"


class Action(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    DISPATCH = "dispatch"
    RESPOND = "respond"
    DISPOSE = "dispose"
    RETURN = "return"
    SUSPEND = "suspend"
    RESUME = "resume"
    CLOSE = "close"  # human 核查结案 (no camera re-check, or an on-site check)
    # system-only actions
    DETECT = "detect"
    DETECT_AGAIN = "detect_again"
    VERIFY = "verify"
    VERIFY_PASS = "verify_pass"
    VERIFY_FAIL = "verify_fail"
    ESCALATE = "escalate"
    OVERDUE = "overdue"


S, A = CaseState, Action
OPEN_STATES = frozenset(S) - {S.CLOSED, S.REJECTED}
# (state, action) → new state. SUSPEND/RESUME are handled separately (any open state).
TRANSITIONS: dict[tuple[CaseState, Action], CaseState] = {
    (S.PENDING_REVIEW, A.ACCEPT): S.REPORTED,
    (S.PENDING_REVIEW, A.REJECT): S.REJECTED,
    (S.REPORTED, A.DISPATCH): S.DISPATCHED,
    (S.RETURNED, A.DISPATCH): S.DISPATCHED,
    (S.VERIFY_FAILED, A.DISPATCH): S.DISPATCHED,
    (S.DISPATCHED, A.RESPOND): S.RESPONDED,
    (S.DISPATCHED, A.RETURN): S.RETURNED,
    (S.RESPONDED, A.RETURN): S.RETURNED,
    (S.DISPATCHED, A.DISPOSE): S.DISPOSED,
    (S.RESPONDED, A.DISPOSE): S.DISPOSED,
    (S.DISPOSED, A.VERIFY): S.VERIFYING,
    (S.VERIFYING, A.VERIFY_PASS): S.CLOSED,
    (S.VERIFYING, A.VERIFY_FAIL): S.VERIFY_FAILED,
    (S.DISPOSED, A.CLOSE): S.CLOSED,
    (S.VERIFYING, A.CLOSE): S.CLOSED,
}
HUMAN_ACTIONS = frozenset(
    {A.ACCEPT, A.REJECT, A.DISPATCH, A.RESPOND, A.DISPOSE, A.RETURN, A.SUSPEND, A.RESUME, A.CLOSE}
)
# What a receiving platform may do through its callback: work the case it was sent (派遣, 处置,
# 退回, 核查结案). Review (accept/reject) and suspending stay with the monitoring center.
PLATFORM_ACTIONS = frozenset({A.DISPATCH, A.RESPOND, A.DISPOSE, A.RETURN, A.CLOSE})
REJECT_REASONS = frozenset(
    {"false_positive", "duplicate", "out_of_scope", "insufficient_evidence", "other"}
)
NEEDS_REASON = frozenset({A.RETURN, A.SUSPEND, A.CLOSE})
# States a receiving platform hears about (never before human review).
PUSHED_STATES = frozenset(OPEN_STATES - {S.PENDING_REVIEW}) | {S.CLOSED}
NO_CASE_TYPES = DEVICE_EVENT_TYPES  # operational notices, not governance cases


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    dedup_key: str
    camera_id: str
    zone_id: str | None
    rule_id: str | None
    event_type: str
    severity: str
    state: str
    resume_state: str | None
    escalation_level: int
    assignee: str | None
    supervised: bool
    hotspot: bool
    parent_case_id: str | None
    recurrence_count: int
    first_event_id: str
    last_event_id: str
    detections: int
    created_at: float
    updated_at: float
    last_seen_at: float
    closed_at: float | None
    review_by: float | None
    respond_by: float | None
    dispose_by: float | None
    recheck_until: float | None
    suspended_at: float | None
    recheck_since: float | None
    after_relpath: str | None
    after_sha256: str | None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def next_deadline(self) -> tuple[str, float] | None:
        """The deadline that the SLA sweep watches now (kind, epoch)."""
        if self.state == S.PENDING_REVIEW and self.review_by is not None:
            return "review", self.review_by
        if self.state in (S.DISPATCHED, S.RESPONDED):
            pending = [("dispose", self.dispose_by)]
            if self.state == S.DISPATCHED:
                pending.insert(0, ("respond", self.respond_by))
            live = [(k, t) for k, t in pending if t is not None]
            return min(live, key=lambda kt: kt[1]) if live else None
        if self.state == S.VERIFYING and self.recheck_until is not None:
            return "recheck", self.recheck_until
        return None


# the store's column order is the dataclass's field order (rows become ``Case(*row)``)
assert tuple(f.name for f in fields(Case)) == rows.CASE_COLUMNS


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int
    case_id: str
    at: float
    action: str
    from_state: str | None
    to_state: str
    actor: str
    actor_type: str  # human | system | platform
    reason_code: str | None
    reason: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReviewStats:
    camera_id: str
    zone_id: str | None
    rule_id: str | None
    event_type: str
    accepted: int
    rejected: int
    reject_reasons: dict[str, int]
    precision: float | None
    suggestion: str | None


class Probe(Protocol):
    """Asks the pipeline whether a case's problem is still there (自动核查)."""

    def still_present(self, case: Case, since: float, now: float) -> bool | None:
        """True: still there; False: gone; None: cannot tell now (camera offline)."""


class AfterSnapshot(Protocol):
    def __call__(self, case: Case, now: float) -> tuple[str, str] | None:
        """Save an "after" picture of the case's camera; (relpath, sha256) or None."""


class Enqueue(Protocol):
    def __call__(
        self, db: Connection, case: Case, entry: HistoryEntry, report: dict[str, Any]
    ) -> None: ...


def dedup_key(camera_id: str, zone_id: str | None, event_type: str) -> str:
    return f"{camera_id}|{zone_id or '-'}|{event_type}"


class EventProbe:
    """Re-check from the detection stream: the analyzers keep watching every zone, so the
    problem is still there when an episode of the same (camera, zone, type) is open now or
    began after 处置; a camera that was not online for the re-check cannot tell."""

    def __init__(self, store: EventStore, online: Callable[[str], bool]) -> None:
        self.store = store
        self.online = online

    def still_present(self, case: Case, since: float, now: float) -> bool | None:
        if not self.online(case.camera_id):
            return None
        return rows.events_still_there(self.store, case.camera_id, case.event_type,
                                       case.zone_id, since, now) > 0  # fmt: skip


class CaseService:
    def __init__(
        self,
        store: EventStore,
        policy: CasesConfig,
        tz: ZoneInfo,
        clock: Callable[[], float],
        *,
        enqueue: Enqueue | None = None,
        probe: Probe | None = None,
        after_snapshot: AfterSnapshot | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """``on_change``: called after each committed change of any case (live views)."""
        self.store = store
        self.policy = policy
        self.tz = tz
        self.clock = clock
        self.enqueue = enqueue
        self.probe = probe
        self.after_snapshot = after_snapshot
        self.new_id = new_id
        self.on_change = on_change

    # -- reading --------------------------------------------------------------------------

    def get(self, case_id: str) -> Case:
        found = rows.get_case(self.store, case_id)
        if found is None:
            raise CaseError(f"case {case_id!r} not found")
        return Case(*found)

    def query(
        self,
        *,
        state: str | None = None,
        camera_id: str | None = None,
        event_type: str | None = None,
        open_only: bool = False,
        limit: int = 100,
        offset: int = 0,
        cameras: frozenset[str] | None = None,
    ) -> tuple[list[Case], int]:
        """``cameras``: only these cameras' cases (a scoped reader; None: all)."""
        found, total = rows.query_cases(
            self.store, {"state": state, "camera_id": camera_id, "event_type": event_type},
            OPEN_STATES if open_only else None, limit, offset, cameras,
        )  # fmt: skip
        return [Case(*r) for r in found], total

    def history(self, case_id: str) -> list[HistoryEntry]:
        return [_entry(r) for r in rows.history(self.store, case_id)]

    def events_of(self, case_id: str) -> list[str]:
        return rows.events_of(self.store, case_id)

    def case_of_event(self, event_id: str) -> str | None:
        return rows.case_of_event(self.store, event_id)

    # -- detections -----------------------------------------------------------------------

    def on_event(self, row: EventRow) -> Case | None:
        """Attach a stored detection to its case, opening one if none is open."""
        case = self._on_event(row)
        if case is not None:
            self._changed()
        return case

    def counter(self, cameras: frozenset[str] | None = None) -> tuple[int, float]:
        """(number of cases, latest change): moves whenever any case (of ``cameras``, a
        scoped reader's) changes."""
        return rows.counter(self.store, cameras)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
        self.store.announce_case_change()  # live views of other processes

    def _on_event(self, row: EventRow) -> Case | None:
        if row.event_type in NO_CASE_TYPES:
            return None
        key = dedup_key(row.camera_id, row.zone_id, row.event_type)
        now = self.clock()
        with self.store.transaction() as db:
            repo = CaseRows(db)
            linked = repo.case_of_event(row.event_id)
            if linked is not None:
                repo.seen(linked, row.updated_at)
                return self._require(db, linked)
            case_id = repo.latest_in_states(key, OPEN_STATES)
            if case_id is not None:
                repo.attach(case_id, row.event_id, row.updated_at, now)
                case = self._require(db, case_id)
                self._append(db, case, A.DETECT_AGAIN, case.state, "pipeline", "system",
                             detail={"event_id": row.event_id})  # fmt: skip
                return case
            return self._open(db, row, key, now)

    def _open(self, db: Connection, row: EventRow, key: str, now: float) -> Case:
        window = self.policy.recurrence_days * 86400.0
        repo = CaseRows(db)
        prior = repo.recent(key, now - window)
        recurrences = len(prior)
        sla = self.policy.sla_for(row.event_type)
        case_id = self.new_id()
        hotspot = recurrences + 1 >= self.policy.hotspot_count
        repo.insert((
            case_id, key, row.camera_id, row.zone_id, row.rule_id, row.event_type,
            row.severity, S.PENDING_REVIEW.value, None, 0, None, int(hotspot), int(hotspot),
            prior[0] if prior else None, recurrences, row.event_id, row.event_id,
            1, now, now, row.updated_at, None, now + sla.review_min * 60.0, None, None,
            None, None, None, None, None,
        ))  # fmt: skip
        repo.link(case_id, row.event_id)
        case = self._require(db, case_id)
        detail = {"event_id": row.event_id, "recurrence_count": recurrences}
        self._append(db, case, A.DETECT, None, "pipeline", "system", detail=detail)
        if row.event_type in self.policy.auto_report:
            case = self._apply(db, case, A.ACCEPT, "auto_report", "system", now)
        return case

    # -- transitions ----------------------------------------------------------------------

    def act(
        self,
        case_id: str,
        action: Action | str,
        actor: str,
        *,
        actor_type: str = "human",
        reason_code: str | None = None,
        reason: str | None = None,
        unit: str | None = None,
    ) -> Case:
        """A human (or platform callback) action on a case; raises CaseError if refused."""
        try:
            act = Action(action)
        except ValueError:
            raise CaseError(f"unknown action {action!r}") from None
        if act not in HUMAN_ACTIONS:
            raise CaseError(f"action {act} is taken by the system only")
        if actor_type == "platform" and act not in PLATFORM_ACTIONS:
            allowed = ", ".join(sorted(PLATFORM_ACTIONS))
            raise CaseError(f"a platform may not {act} a case (platform actions: {allowed})")
        if act == A.REJECT and reason_code not in REJECT_REASONS:
            raise CaseError(f"reject needs reason_code, one of {', '.join(sorted(REJECT_REASONS))}")
        if act in NEEDS_REASON and not (reason or "").strip():
            raise CaseError(f"{act} needs a reason")
        if unit is not None and unit not in {u.id for u in self.policy.escalation}:
            known = ", ".join(u.id for u in self.policy.escalation)
            raise CaseError(f"unknown unit {unit!r} (known: {known})")
        now = self.clock()
        with self.store.transaction() as db:
            case = self._require(db, case_id)
            case = self._apply(
                db, case, act, actor, actor_type, now,
                reason_code=reason_code, reason=reason, unit=unit,
            )  # fmt: skip
        self._changed()
        return case

    def _apply(
        self,
        db: Connection,
        case: Case,
        act: Action,
        actor: str,
        actor_type: str,
        now: float,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
        unit: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Case:
        state = CaseState(case.state)
        sla = self.policy.sla_for(case.event_type)
        clock = self._clock(sla)
        changes: dict[str, Any] = {}
        if act == A.SUSPEND:
            if state not in OPEN_STATES or state == S.SUSPENDED:
                raise CaseError(f"case {case.case_id} is {state}: cannot suspend")
            new = S.SUSPENDED
            changes = {"resume_state": state.value, "suspended_at": now}
        elif act == A.RESUME:
            if state != S.SUSPENDED or case.resume_state is None:
                raise CaseError(f"case {case.case_id} is {state}: only a suspended case resumes")
            new = CaseState(case.resume_state)
            since = case.suspended_at or now
            # the clock stood still while suspended: every deadline moves by the time lost
            for col in ("review_by", "respond_by", "dispose_by", "recheck_until"):
                t = getattr(case, col)
                if t is not None:
                    changes[col] = clock.add(now, clock.between(since, t))
            changes |= {"resume_state": None, "suspended_at": None}
        else:
            target = TRANSITIONS.get((state, act))
            if target is None:
                allowed = sorted(a for (s_, a) in TRANSITIONS if s_ == state) + (
                    ["suspend"] if state in OPEN_STATES and state != S.SUSPENDED else []
                )
                raise CaseError(
                    f"case {case.case_id} is {state}: cannot {act} "
                    f"(allowed: {', '.join(allowed) or 'none'})"
                )
            new = target
        if act == A.DISPATCH:
            level = case.escalation_level
            if state in (S.VERIFY_FAILED,):
                level = min(level + 1, len(self.policy.escalation) - 1)
            if unit is None:
                unit = self.policy.escalation[level].id
            else:
                level = max(level, [u.id for u in self.policy.escalation].index(unit))
            changes |= {
                "assignee": unit,
                "escalation_level": level,
                "respond_by": clock.add(now, sla.respond_min * 60.0),
                "dispose_by": clock.add(now, sla.dispose_min * 60.0),
            }
        elif act == A.ACCEPT:
            changes["review_by"] = None
        elif act == A.DISPOSE:
            changes |= {"respond_by": None, "dispose_by": None}
        elif act == A.VERIFY:
            changes |= {"recheck_since": now, "recheck_until": now + sla.recheck_min * 60.0}
        elif act in (A.VERIFY_FAIL, A.VERIFY_PASS, A.CLOSE):
            changes["recheck_until"] = None
        if new in (S.CLOSED, S.REJECTED):
            changes |= {"closed_at": now, "review_by": None, "respond_by": None,
                        "dispose_by": None, "recheck_until": None}  # fmt: skip
        case = self._update(db, case, state=new.value, updated_at=now, **changes)
        self._append(db, case, act, state.value, actor, actor_type, reason_code=reason_code,
                     reason=reason, detail=(detail or {}) | ({"unit": unit} if unit else {}),
                     at=now)  # fmt: skip
        if act == A.DISPOSE and sla.recheck_min > 0:
            case = self._apply(db, case, A.VERIFY, "pipeline", "system", now)
        return case

    # -- clocks ---------------------------------------------------------------------------

    def tick(self) -> list[HistoryEntry]:
        """Escalate breached deadlines and finish due re-checks; returns what it appended."""
        now = self.clock()
        watched = (S.PENDING_REVIEW, S.DISPATCHED, S.RESPONDED, S.VERIFYING)
        cases = [Case(*r) for r in rows.cases_in_states(self.store, watched)]
        due = [c for c in cases if (d := c.next_deadline()) and d[1] <= now]
        appended: list[HistoryEntry] = []
        for case in due:
            appended.extend(self._tick_one(case.case_id, now))
        if appended:
            self._changed()
        return appended

    def _tick_one(self, case_id: str, now: float) -> list[HistoryEntry]:
        if self.probe is not None:
            case = self.get(case_id)
            deadline = case.next_deadline()
            if deadline and deadline[0] == "recheck" and deadline[1] <= now:
                return self._recheck(case, now)
        with self.store.transaction() as db:
            case = self._require(db, case_id)
            deadline = case.next_deadline()
            if deadline is None or deadline[1] > now:
                return []  # changed meanwhile
            kind, _ = deadline
            if kind == "review":
                case = self._update(db, case, review_by=None, supervised=1)
                return [self._append(db, case, A.OVERDUE, case.state, "sla", "system",
                                     detail={"deadline": "review"}, at=now)]  # fmt: skip
            if kind == "recheck":  # no probe configured: a person must check
                case = self._update(db, case, recheck_until=None)
                detail = {"deadline": "recheck", "probe": "none"}
                return [self._append(db, case, A.OVERDUE, case.state, "sla", "system",
                                     detail=detail, at=now)]  # fmt: skip
            return [self._escalate(db, case, kind, now)]

    def _escalate(self, db: Connection, case: Case, kind: str, now: float) -> HistoryEntry:
        sla = self.policy.sla_for(case.event_type)
        clock = self._clock(sla)
        top = len(self.policy.escalation) - 1
        level = min(case.escalation_level + 1, top)
        unit = self.policy.escalation[level].id
        limit = (sla.respond_min if kind == "respond" else sla.dispose_min) * 60.0
        changes: dict[str, Any] = {"supervised": 1, "escalation_level": level, "assignee": unit}
        changes[f"{kind}_by"] = clock.add(now, limit)  # the next unit gets a fresh clock
        if kind == "dispose" and case.respond_by is not None:
            changes["respond_by"] = None
        action = A.ESCALATE if level > case.escalation_level else A.OVERDUE
        case = self._update(db, case, updated_at=now, **changes)
        return self._append(
            db, case, action, case.state, "sla", "system",
            detail={"deadline": kind, "level": level, "unit": unit}, at=now,
        )  # fmt: skip

    def _recheck(self, case: Case, now: float) -> list[HistoryEntry]:
        since = case.recheck_since or now
        present = self.probe.still_present(case, since, now) if self.probe else None
        sla = self.policy.sla_for(case.event_type)
        after = None
        if present is False and self.after_snapshot is not None:
            after = self.after_snapshot(case, now)
        with self.store.transaction() as db:
            case = self._require(db, case.case_id)
            if case.state != S.VERIFYING:
                return []
            seq0 = CaseRows(db).last_seq()
            if present is None:  # camera could not look: try again one re-check later
                case = self._update(db, case, recheck_until=now + sla.recheck_min * 60.0)
                detail = {"deadline": "recheck", "probe": "unavailable"}
                self._append(db, case, A.OVERDUE, case.state, "pipeline", "system",
                             detail=detail, at=now)  # fmt: skip
            elif present:
                case = self._apply(db, case, A.VERIFY_FAIL, "pipeline", "system", now)
                self._apply(db, case, A.DISPATCH, "pipeline", "system", now,
                            detail={"rework": True})  # fmt: skip
            else:
                if after is not None:
                    case = self._update(db, case, after_relpath=after[0], after_sha256=after[1])
                detail = {"after_relpath": after[0], "after_sha256": after[1]} if after else {}
                self._apply(db, case, A.VERIFY_PASS, "pipeline", "system", now, detail=detail)
            appended = CaseRows(db).history_after(seq0)
        return [_entry(r) for r in appended]

    # -- reviewer precision -----------------------------------------------------------------

    def review_stats(self, min_reviews: int = 5) -> list[ReviewStats]:
        """Measured precision of each (camera, zone, rule) from reviewer verdicts."""
        groups: dict[tuple[str, str | None, str | None, str], list[tuple[str, str | None]]] = {}
        for cam, zone, rule, etype, action, code in rows.verdicts(self.store):
            groups.setdefault((cam, zone, rule, etype), []).append((action, code))
        out = []
        for (cam, zone, rule, etype), verdicts in sorted(groups.items(), key=str):
            acc = sum(1 for a, _ in verdicts if a == "accept")
            rej = len(verdicts) - acc
            reasons: dict[str, int] = {}
            for a, code in verdicts:
                if a == "reject":
                    reasons[code or "other"] = reasons.get(code or "other", 0) + 1
            precision = acc / len(verdicts) if verdicts else None
            suggestion = None
            if precision is not None and len(verdicts) >= min_reviews and precision < 0.8:
                fp = reasons.get("false_positive", 0)
                suggestion = _suggest(etype, fp, rej)
            out.append(
                ReviewStats(cam, zone, rule, etype, acc, rej, reasons, precision, suggestion)
            )
        return out

    # -- storage helpers --------------------------------------------------------------------

    def _clock(self, sla: SlaRule) -> SlaClock:
        return SlaClock(sla.clock, self.policy.calendar, self.tz)

    @staticmethod
    def _require(db: Connection, case_id: str) -> Case:
        found = CaseRows(db).get(case_id)
        if found is None:
            raise CaseError(f"case {case_id!r} not found")
        return Case(*found)

    def _update(self, db: Connection, case: Case, **changes: Any) -> Case:
        if not changes:
            return case
        CaseRows(db).update(case.case_id, changes)
        return self._require(db, case.case_id)

    def _append(
        self,
        db: Connection,
        case: Case,
        action: Action,
        from_state: str | None,
        actor: str,
        actor_type: str,
        *,
        reason_code: str | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> HistoryEntry:
        at = self.clock() if at is None else at
        detail = detail or {}
        repo = CaseRows(db)
        seq = repo.append_history(case.case_id, at, action.value, from_state, case.state, actor,
                                  actor_type, reason_code, reason, detail)  # fmt: skip
        entry = HistoryEntry(seq, case.case_id, at, action.value, from_state, case.state,
                             actor, actor_type, reason_code, reason, detail)  # fmt: skip
        if self.enqueue is not None:  # the outbox decides who hears of what
            self.enqueue(db, case, entry, repo.event_report(case.last_event_id))
        return entry


def _entry(r: Sequence[Any]) -> HistoryEntry:
    seq, case_id, at, action, from_state, to_state, actor, actor_type, code, reason, detail = r
    return HistoryEntry(
        seq, case_id, at, action, from_state, to_state, actor, actor_type, code, reason,
        json.loads(detail),
    )  # fmt: skip


def _suggest(event_type: str, false_positives: int, rejected: int) -> str:
    if false_positives * 2 < rejected:
        return "most rejections are not false positives: review routing/zones (out_of_scope)"
    if event_type.startswith("illegal_parking") or event_type == "fire_lane_occupation":
        return "raise min_dwell_s by 50 % or tighten the zone polygon"
    if event_type in ("road_occupation_vending", "shop_front_spillover"):
        return "raise occupancy_on (e.g. +0.05) or min_dwell_s; check permitted_stall areas"
    if event_type == "unlicensed_mobile_vending":
        return "raise mobile_stops or mobile_min_stop_s"
    if event_type in ("bin_overflow", "exposed_garbage"):
        return "raise min_observations or above_rim_fraction / ground_fraction by 0.05"
    if event_type == "high_altitude_throwing":
        return "check the façade polygon for moving distractors; raise min_fall_m"
    return "raise the rule's thresholds"


def case_json(case: Case, history: Sequence[HistoryEntry], tz: ZoneInfo) -> dict[str, Any]:
    """The case block carried in pushed payloads and API responses."""
    from pipeline.evidence.labels import iso

    return {
        "case_id": case.case_id,
        "state": case.state,
        "escalation_level": case.escalation_level,
        "assignee": case.assignee,
        "supervised": bool(case.supervised),
        "hotspot": bool(case.hotspot),
        "parent_case_id": case.parent_case_id,
        "recurrence_count_30d": case.recurrence_count,
        "detections": case.detections,
        "created_at": iso(case.created_at, tz),
        "last_seen_at": iso(case.last_seen_at, tz),
        "closed_at": iso(case.closed_at, tz),
        "deadlines": {
            "review_by": iso(case.review_by, tz),
            "respond_by": iso(case.respond_by, tz),
            "dispose_by": iso(case.dispose_by, tz),
            "recheck_until": iso(case.recheck_until, tz),
        },
        "history": [
            {
                "seq": h.seq,
                "at": iso(h.at, tz),
                "action": h.action,
                "from": h.from_state,
                "to": h.to_state,
                "actor": h.actor,
                "actor_type": h.actor_type,
                "reason_code": h.reason_code,
                "reason": h.reason,
                "detail": h.detail,
            }
            for h in history
        ],
    }
