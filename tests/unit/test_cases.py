"""Case lifecycle: every transition, SLA clocks and escalation in virtual time, dedup, re-check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.casework.cases import (
    OPEN_STATES,
    TRANSITIONS,
    Action,
    Case,
    CaseError,
    CaseService,
    CaseState,
)
from pipeline.casework.sla import SlaClock
from pipeline.config import CasesConfig, WorkCalendar
from pipeline.rules.parking import ParkingDetails
from pipeline.store.db import StoreIntegrityError
from pipeline.store.repository import EventRow, EventStore
from pipeline.types import Event, EventState, EventType

TZ = ZoneInfo("Asia/Shanghai")
MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()  # a Monday, 09:00
H = 3600.0


class VirtualClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def store_event(store: EventStore, event_id: str, at: float, *, etype: EventType =
                EventType.FIRE_LANE_OCCUPATION, zone: str = "lane", state: EventState =
                EventState.STARTED, camera: str = "cam1", severity: str = "urgent") -> EventRow:  # fmt: skip
    details = ParkingDetails("fire_lane", "car", "motor", (0.1, 0.1, 0.2, 0.2),
                             (0.1, 0.1, 0.2, 0.2), 300, 300, 180, 0.8, 10, (1,))  # fmt: skip
    ev = Event(event_id, etype, state, camera, zone, "parking", at - 300, at, at,
               at if state == EventState.ENDED else None, 0.8, details)  # fmt: skip
    store.upsert_event(ev, severity, {"report_id": event_id}, None, None, at)
    row = store.get_event(event_id)
    assert row is not None
    return row


@dataclass
class World:
    store: EventStore
    clock: VirtualClock
    cases: CaseService


@pytest.fixture
def world(store_location: str | Path) -> Iterator[World]:
    """Every case test runs on SQLite and on a real PostgreSQL server."""
    store = EventStore(store_location)
    clock = VirtualClock(MON_9)
    ids = iter(f"case{i}" for i in range(1, 1000))
    yield World(
        store, clock, CaseService(store, CasesConfig(), TZ, clock, new_id=lambda: next(ids))
    )
    store.close()


def new_case(w: World, event_id: str = "ev1", **kw: object) -> Case:
    case = w.cases.on_event(store_event(w.store, event_id, w.clock(), **kw))  # type: ignore[arg-type]
    assert case is not None
    return case


def drive(w: World, case_id: str, *actions: Action) -> Case:
    case = w.cases.get(case_id)
    for a in actions:
        reason = "reason given" if a in (Action.RETURN, Action.SUSPEND, Action.CLOSE) else None
        code = "false_positive" if a == Action.REJECT else None
        case = w.cases.act(case_id, a, "op1", reason=reason, reason_code=code)
    return case


# Paths that reach every state from pending_review, so each transition can be tried from it.
PATHS: dict[CaseState, tuple[Action, ...]] = {
    CaseState.PENDING_REVIEW: (),
    CaseState.REPORTED: (Action.ACCEPT,),
    CaseState.REJECTED: (Action.REJECT,),
    CaseState.DISPATCHED: (Action.ACCEPT, Action.DISPATCH),
    CaseState.RESPONDED: (Action.ACCEPT, Action.DISPATCH, Action.RESPOND),
    CaseState.RETURNED: (Action.ACCEPT, Action.DISPATCH, Action.RETURN),
    CaseState.VERIFYING: (Action.ACCEPT, Action.DISPATCH, Action.DISPOSE),  # re-check on
    CaseState.CLOSED: (Action.ACCEPT, Action.DISPATCH, Action.DISPOSE, Action.CLOSE),
    CaseState.SUSPENDED: (Action.ACCEPT, Action.SUSPEND),
}
HUMAN = [Action.ACCEPT, Action.REJECT, Action.DISPATCH, Action.RESPOND, Action.DISPOSE,
         Action.RETURN, Action.SUSPEND, Action.RESUME, Action.CLOSE]  # fmt: skip


@pytest.mark.parametrize("state", list(PATHS))
@pytest.mark.parametrize("action", HUMAN)
def test_transition_table(world: World, state: CaseState, action: Action) -> None:
    case = new_case(world)
    case = drive(world, case.case_id, *PATHS[state])
    assert case.state == state
    if action == Action.SUSPEND:
        expected: CaseState | None = (
            CaseState.SUSPENDED if state in OPEN_STATES and state != CaseState.SUSPENDED else None
        )
    elif action == Action.RESUME:
        expected = CaseState.REPORTED if state == CaseState.SUSPENDED else None
    else:
        expected = TRANSITIONS.get((state, action))
        if expected == CaseState.DISPOSED:
            expected = CaseState.VERIFYING  # the default policy re-checks by camera
    before = len(world.cases.history(case.case_id))
    if expected is None:
        with pytest.raises(CaseError, match=f"is {state.value}: cannot|only a suspended"):
            drive(world, case.case_id, action)
        assert len(world.cases.history(case.case_id)) == before  # nothing recorded
        assert world.cases.get(case.case_id).state == state
    else:
        after = drive(world, case.case_id, action)
        assert after.state == expected
        hist = world.cases.history(case.case_id)
        assert hist[before].action == action.value and hist[before].actor == "op1"
        assert hist[before].from_state == state.value


def test_reasons_are_required(world: World) -> None:
    case = new_case(world)
    with pytest.raises(CaseError, match="reason_code"):
        world.cases.act(case.case_id, Action.REJECT, "op1")
    with pytest.raises(CaseError, match="reason_code"):
        world.cases.act(case.case_id, Action.REJECT, "op1", reason_code="boring")
    drive(world, case.case_id, Action.ACCEPT, Action.DISPATCH)
    with pytest.raises(CaseError, match="needs a reason"):
        world.cases.act(case.case_id, Action.RETURN, "unit-a")
    with pytest.raises(CaseError, match="system only"):
        world.cases.act(case.case_id, Action.VERIFY_PASS, "op1")
    with pytest.raises(CaseError, match="unknown unit"):
        world.cases.act(case.case_id, Action.RETURN, "op1", reason="x", unit="nobody")
    with pytest.raises(CaseError, match="not found"):
        world.cases.act("nope", Action.ACCEPT, "op1")


def test_history_is_append_only(world: World) -> None:
    case = new_case(world)
    drive(world, case.case_id, Action.ACCEPT)
    with world.store.reader() as db, pytest.raises(StoreIntegrityError, match="append-only"):
        db.execute("UPDATE case_history SET actor = 'someone else'")
    with world.store.reader() as db, pytest.raises(StoreIntegrityError, match="append-only"):
        db.execute("DELETE FROM case_history")


def test_property_misses_6h_response_and_case_escalates_to_community(world: World) -> None:
    # a normal, continuous-clock type with the default 物业 6 h response limit
    case = new_case(world, etype=EventType.ILLEGAL_PARKING_MOTOR, zone="z")
    cfg = CasesConfig(sla=[{"event_type": "*", "respond_min": 360, "dispose_min": 1440}])
    svc = CaseService(world.store, cfg, TZ, world.clock)
    svc.act(case.case_id, Action.ACCEPT, "op1")
    case = svc.act(case.case_id, Action.DISPATCH, "op1")
    assert case.assignee == "property" and case.respond_by == MON_9 + 6 * H
    world.clock.advance(6 * H - 1)
    assert svc.tick() == []
    world.clock.advance(1)
    [entry] = svc.tick()
    assert entry.action == "escalate" and entry.detail["unit"] == "community"
    case = svc.get(case.case_id)
    assert (case.escalation_level, case.assignee, case.supervised) == (1, "community", True)
    assert case.state == "dispatched" and case.respond_by == world.clock() + 6 * H
    # 社区 responds late as well → 街道/城管; the top of the chain stays there (overdue)
    world.clock.advance(6 * H)
    assert svc.tick()[0].detail["unit"] == "street"
    world.clock.advance(6 * H)
    assert svc.tick()[0].action == "overdue"
    assert svc.get(case.case_id).escalation_level == 2


def test_dispose_deadline_escalates_after_a_response(world: World) -> None:
    case = new_case(world)  # fire lane: respond 30 min, dispose 2 h, continuous
    drive(world, case.case_id, Action.ACCEPT, Action.DISPATCH)
    world.clock.advance(20 * 60)
    case = drive(world, case.case_id, Action.RESPOND)
    world.clock.advance(100 * 60)
    [entry] = world.cases.tick()
    assert entry.detail == {"deadline": "dispose", "level": 1, "unit": "community"}


def test_review_deadline_marks_supervised(world: World) -> None:
    case = new_case(world)  # urgent type: review within 10 min
    world.clock.advance(10 * 60)
    [entry] = world.cases.tick()
    assert entry.action == "overdue" and entry.detail["deadline"] == "review"
    assert world.cases.get(case.case_id).supervised
    assert world.cases.tick() == []  # once


def test_working_hours_clock_skips_nights_weekends_and_holidays() -> None:
    cal = WorkCalendar(holidays=[date(2026, 11, 30)], extra_workdays=[date(2026, 11, 29)])
    clock = SlaClock("working_hours", cal, TZ)
    fri_17 = datetime(2026, 11, 27, 17, 0, tzinfo=TZ).timestamp()
    # 2 working hours from Friday 17:00: one on Friday, one on Sunday 29th (调休 working day)
    assert clock.add(fri_17, 2 * H) == datetime(2026, 11, 29, 9, 0, tzinfo=TZ).timestamp()
    sun_17 = datetime(2026, 11, 29, 17, 0, tzinfo=TZ).timestamp()
    # Monday 30th is a holiday: 2 h from Sunday 17:00 end Tuesday 09:00
    assert clock.add(sun_17, 2 * H) == datetime(2026, 12, 1, 9, 0, tzinfo=TZ).timestamp()
    # lunch break (12-14) does not count
    mon_11 = datetime(2026, 11, 23, 11, 0, tzinfo=TZ).timestamp()
    assert clock.add(mon_11, 2 * H) == datetime(2026, 11, 23, 15, 0, tzinfo=TZ).timestamp()
    assert clock.between(mon_11, datetime(2026, 11, 23, 15, 0, tzinfo=TZ).timestamp()) == 2 * H
    assert clock.between(fri_17, fri_17 - 5) == 0.0


def test_bin_overflow_friday_evening_is_due_monday_morning(world: World) -> None:
    world.clock.t = datetime(2026, 11, 27, 17, 30, tzinfo=TZ).timestamp()  # Friday
    case = new_case(world, etype=EventType.BIN_OVERFLOW, zone="bin1")
    case = drive(world, case.case_id, Action.ACCEPT, Action.DISPATCH)
    # 2 working hours to respond: 30 min on Friday, 90 min on Monday
    assert case.respond_by == datetime(2026, 11, 30, 9, 30, tzinfo=TZ).timestamp()
    world.clock.t = datetime(2026, 11, 29, 23, 0, tzinfo=TZ).timestamp()
    assert world.cases.tick() == []  # the weekend does not count


def test_suspension_stops_the_clock(world: World) -> None:
    case = new_case(world)
    case = drive(world, case.case_id, Action.ACCEPT, Action.DISPATCH)
    respond_by = case.respond_by
    assert respond_by is not None
    world.clock.advance(10 * 60)
    drive(world, case.case_id, Action.SUSPEND)
    world.clock.advance(5 * H)
    assert world.cases.tick() == []
    case = drive(world, case.case_id, Action.RESUME)
    assert case.state == "dispatched"
    assert case.respond_by == pytest.approx(respond_by + 5 * H)


def test_detections_join_the_open_case_and_recurrences_link_and_mark_hotspots(world: World) -> None:
    first = new_case(world, "ev1")
    assert world.cases.on_event(store_event(world.store, "ev2", world.clock())) == world.cases.get(
        first.case_id
    )  # same camera, zone, type: one case
    case = world.cases.get(first.case_id)
    assert case.detections == 2 and world.cases.events_of(case.case_id) == ["ev1", "ev2"]
    assert new_case(world, "ev3", zone="other").case_id != first.case_id  # another zone
    drive(world, first.case_id, Action.ACCEPT, Action.DISPATCH, Action.DISPOSE, Action.CLOSE)
    world.clock.advance(86400)
    second = new_case(world, "ev4")
    assert second.parent_case_id == first.case_id and second.recurrence_count == 1
    assert not second.hotspot
    drive(world, second.case_id, Action.REJECT)  # a false alarm is not a recurrence
    third = new_case(world, "ev5")
    assert third.recurrence_count == 1 and third.parent_case_id == first.case_id
    drive(world, third.case_id, Action.ACCEPT, Action.DISPATCH, Action.DISPOSE, Action.CLOSE)
    fourth = new_case(world, "ev6")
    assert fourth.recurrence_count == 2 and fourth.hotspot and fourth.supervised
    world.clock.advance(31 * 86400)
    assert new_case(world, "ev7", zone="other").recurrence_count == 0


def test_camera_offline_notices_open_no_case(world: World) -> None:
    row = store_event(world.store, "off1", world.clock(), etype=EventType.CAMERA_OFFLINE)
    assert world.cases.on_event(row) is None


class FakeProbe:
    def __init__(self) -> None:
        self.answer: bool | None = False
        self.asked: list[tuple[str, float, float]] = []

    def still_present(self, case: Case, since: float, now: float) -> bool | None:
        self.asked.append((case.case_id, since, now))
        return self.answer


def test_automatic_recheck_closes_with_an_after_snapshot(world: World) -> None:
    probe = FakeProbe()
    svc = CaseService(world.store, CasesConfig(), TZ, world.clock, probe=probe,
                      after_snapshot=lambda case, now: (f"after/{case.case_id}.jpg", "ab" * 32))  # fmt: skip
    case = new_case(world)
    svc.act(case.case_id, Action.ACCEPT, "op1")
    svc.act(case.case_id, Action.DISPATCH, "op1")
    world.clock.advance(600)
    case = svc.act(case.case_id, Action.DISPOSE, "unit-a")
    assert case.state == "verifying" and case.recheck_until == world.clock() + 600
    world.clock.advance(599)
    assert svc.tick() == []
    world.clock.advance(1)
    [entry] = svc.tick()
    assert entry.action == "verify_pass" and entry.to_state == "closed"
    case = svc.get(case.case_id)
    assert case.after_relpath == f"after/{case.case_id}.jpg" and case.closed_at == world.clock()
    assert probe.asked == [(case.case_id, world.clock() - 600, world.clock())]


def test_recheck_that_still_sees_the_problem_redispatches_one_level_up(world: World) -> None:
    probe = FakeProbe()
    svc = CaseService(world.store, CasesConfig(), TZ, world.clock, probe=probe)
    case = new_case(world)
    for a in (Action.ACCEPT, Action.DISPATCH, Action.DISPOSE):
        svc.act(case.case_id, a, "op1")
    probe.answer = None  # camera offline: cannot tell, look again later
    world.clock.advance(600)
    assert [e.detail.get("probe") for e in svc.tick()] == ["unavailable"]
    probe.answer = True
    world.clock.advance(600)
    entries = svc.tick()
    assert [(e.action, e.to_state) for e in entries] == [
        ("verify_fail", "verify_failed"),
        ("dispatch", "dispatched"),
    ]
    case = svc.get(case.case_id)
    assert case.escalation_level == 1 and case.assignee == "community"


def test_review_stats_measure_precision_and_suggest(world: World) -> None:
    for i in range(6):
        case = new_case(world, f"e{i}", zone=f"z{i}")
        world.clock.advance(1)
        if i < 2:
            world.cases.act(case.case_id, Action.ACCEPT, "op1")
        else:
            world.cases.act(case.case_id, Action.REJECT, "op1", reason_code="false_positive")
    stats = {s.zone_id: s for s in world.cases.review_stats(min_reviews=1)}
    assert stats["z0"].precision == 1.0 and stats["z2"].precision == 0.0
    assert stats["z2"].suggestion is not None and "min_dwell_s" in stats["z2"].suggestion


def test_the_lifecycle_is_the_documented_one() -> None:
    # the spec, written out independently of pipeline.casework.cases.TRANSITIONS
    spec = """pending_review accept reported | pending_review reject rejected
    reported dispatch dispatched | returned dispatch dispatched | verify_failed dispatch dispatched
    dispatched respond responded | dispatched return returned | responded return returned
    dispatched dispose disposed | responded dispose disposed | disposed verify verifying
    verifying verify_pass closed | verifying verify_fail verify_failed | disposed close closed
    verifying close closed"""
    pairs = {tuple(p.split()) for p in spec.replace("\n", "|").split("|")}
    assert {(s.value, a.value, t.value) for (s, a), t in TRANSITIONS.items()} == pairs
