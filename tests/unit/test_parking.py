"""Illegal-parking rule on synthetic detection sequences; times come from the frames."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from pipeline.config import ZoneConfig
from pipeline.detect.detector import COCO_IDS
from pipeline.rules.parking import ParkingAnalyzer, ParkingDetails, ParkingRule
from pipeline.types import (
    Detections,
    EventNotice,
    EventState,
    EventType,
    Frame,
)

W, H = 320, 240
IMAGE = np.zeros((H, W, 3), np.uint8)
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # a Monday
LANE = ZoneConfig(
    id="lane", kind="fire_lane", polygon=[(0.2, 0.5), (0.8, 0.5), (0.8, 0.95), (0.2, 0.95)]
)
WALK = ZoneConfig(
    id="walk", kind="no_parking", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 0.45), (0.0, 0.45)]
)
CAR = (100.0, 130.0, 180.0, 180.0)  # bottom centre (140, 180) lies in LANE


def at(seconds: float) -> object:
    """Frame time ``seconds`` after T0, compared exactly (epoch seconds are ~1.8e9: a relative
    tolerance would hide minutes)."""
    return pytest.approx(T0 + seconds, abs=1e-6)


def frame(t: float, seq: int = 0, epoch: int = 1) -> Frame:
    return Frame("cam1", seq, epoch, t - T0, t, IMAGE, (W, H), True)


def dets(*items: tuple[tuple[float, float, float, float], str, int]) -> Detections:
    if not items:
        return Detections.empty()
    return Detections(
        xyxy=np.array([b for b, _, _ in items], np.float32),
        confidence=np.full((len(items),), 0.8, np.float32),
        class_id=np.array([COCO_IDS[c] for _, c, _ in items], np.int32),
        track_id=np.array([tid for _, _, tid in items], np.int64),
    )


def analyzer(**rule: Any) -> ParkingAnalyzer:
    params: dict[str, Any] = {
        "analyzer": "illegal_parking", "min_dwell_s": 60, "confirm_s": 4, "max_gap_s": 10,
        "cooldown_s": 120, "update_interval_s": 20,
    }  # fmt: skip
    params.update(rule)
    ids = iter(f"ev{i}" for i in range(1, 100))
    return ParkingAnalyzer(
        "cam1", ParkingRule(**params), [LANE, WALK], "Asia/Shanghai", new_id=lambda _t: next(ids)
    )


def run(
    a: ParkingAnalyzer,
    times: Iterable[float],
    scene: Callable[[float], Detections],
    seq: int = 0,
) -> list[EventNotice]:
    """``seq``: the first frame's sequence number (going on from frames already observed)."""
    out: list[EventNotice] = []
    for i, t in enumerate(times):
        out.extend(a.observe(frame(T0 + t, seq + i), scene(t)))
    return out


def every(step: float, until: float, start: float = 0.0) -> list[float]:
    return [start + i * step for i in range(int((until - start) / step) + 1)]


def parked(t0: float, t1: float, box: tuple[float, float, float, float] = CAR, cls: str = "car",
           tid: Callable[[float], int] = lambda t: 7) -> Callable[[float], Detections]:  # fmt: skip
    return lambda t: dets((box, cls, tid(t))) if t0 <= t < t1 else dets()


def states(notices: list[EventNotice]) -> list[tuple[str, EventState]]:
    return [(n.event.event_id, n.event.state) for n in notices]


def test_one_event_per_stay_with_exact_times() -> None:
    notices = run(analyzer(), every(2, 200), parked(10, 150))
    started = [n for n in notices if n.event.state == EventState.STARTED]
    ended = [n for n in notices if n.event.state == EventState.ENDED]
    assert len(started) == 1 and len(ended) == 1
    ev = started[0].event
    assert ev.event_type == EventType.FIRE_LANE_OCCUPATION
    assert ev.started_at == at(10)
    assert ev.alerted_at == at(70)  # first frame with dwell ≥ 60 s
    assert started[0].first_evidence_jpeg is not None  # photo taken when confirmed (t = 14)
    assert started[0].first_evidence_time_s == at(14)
    end = ended[0].event
    assert end.ended_at == at(148)  # last frame it was seen
    assert isinstance(end.details, ParkingDetails)
    assert end.details.end_reason == "left" and end.details.dwell_s == pytest.approx(138)
    updates = [n.event.alerted_at for n in notices if n.event.state == EventState.UPDATED]
    assert len(updates) == 3  # t = 90, 110, 130 (every 20 s)


def test_an_alert_falling_on_a_recovered_keyframe_comes_on_the_current_one() -> None:
    """Still-scene decoding analyses a recovered keyframe a GOP late, just before the keyframe
    that showed the change: the stay is dated by it, the alert waits for the current frame.
    Until it alerts the analyzer says when its dwell runs out (its keyframes must all be
    decoded from an interval before)."""
    from dataclasses import replace

    a = analyzer()
    scene = parked(10, 150)
    due = [a.timer_due_s]
    for i, t in enumerate(every(2, 68)):
        assert not a.observe(frame(T0 + t, i), scene(t))
    due.append(a.timer_due_s)  # confirmed at 14 s, dwell running: 60 s from 10 s
    late = replace(frame(T0 + 70, 40), recovered=True)
    assert a.observe(late, scene(70)) == []  # dwell 60 s reached, but on a recovered frame
    started = a.observe(frame(T0 + 72, 41), scene(72))
    due.append(a.timer_due_s)
    assert states(started) == [("ev1", EventState.STARTED)]
    assert started[0].event.started_at == at(10) and started[0].event.alerted_at == at(72)
    assert due == [math.inf, at(70), math.inf]


def test_a_stay_whose_vehicle_is_unseen_awaits_its_end() -> None:
    """While a stay's vehicle is unseen its end is a timer too (max_gap_s): the analyzer asks
    for every keyframe until the stay ends, so a car back at its place, or another one there,
    after the gap starts a new stay. With sparse keyframes the end was decided up to an
    interval late and a car back by then continued the old stay (two events became one)."""
    a = analyzer(cooldown_s=0)
    scene = parked(10, 100)  # alerts at 70 s; gone from 100 s
    due = {}
    for i, t in enumerate(every(2, 140)):
        a.observe(frame(T0 + t, i), scene(t))
        due[t] = a.timer_due_s
    assert due[12] == -math.inf  # not yet confirmed: every keyframe
    assert due[20] == at(70)  # confirmed, its dwell (60 s from 10 s) running
    assert due[80] == due[98] == math.inf  # alerted, seen standing
    assert due[100] == due[108] == -math.inf  # unseen since 98 s, its gap running
    assert due[110] == math.inf  # ended: not seen for more than max_gap_s (10 s)
    # where a still scene's keyframes 6 s apart fall (102, 108, 114 s), the stay, unseen
    # since 98 s, has not ended at 108 s, and at 114 s the car is back: it went on
    b = analyzer(cooldown_s=0)

    def back(t: float) -> Detections:
        return dets((CAR, "car", 7)) if 10 <= t < 100 or t >= 113 else dets()

    times = [*every(2, 100), 102]  # still decoding notices the change and decodes each one
    run(b, times, back)
    assert b.timer_due_s == -math.inf  # so the source decodes every keyframe: 104, 106, ...
    notices = run(b, every(2, 130, 104), back, len(times))
    assert [n.event.state for n in notices if n.event.state != EventState.UPDATED] == [
        EventState.ENDED
    ]  # the first stay ends at 110 s; the car back at 114 s is a new stay (alerts later)


def test_dwell_survives_tracker_id_switches() -> None:
    # the tracker re-identifies the same parked car under a new id every 30 s
    notices = run(analyzer(), every(2, 120), parked(0, 200, tid=lambda t: int(t // 30)))
    assert states(notices)[0] == ("ev1", EventState.STARTED)
    assert {n.event.event_id for n in notices} == {"ev1"}
    last = notices[-1].event.details
    assert isinstance(last, ParkingDetails)
    assert last.track_ids == (0, 1, 2, 3, 4)


def test_short_occlusion_keeps_the_stay() -> None:
    # a bus hides the car from 30 to 38 s (< max_gap 10 s)
    scene = parked(0, 200)
    notices = run(analyzer(), every(2, 100), lambda t: dets() if 30 <= t < 38 else scene(t))
    assert [s for _, s in states(notices)].count(EventState.STARTED) == 1
    assert notices[0].event.alerted_at == at(60)


def test_box_jitter_does_not_restart_the_clock() -> None:
    rng = np.random.default_rng(1)

    def jittery(t: float) -> Detections:
        j = rng.uniform(-6, 6, 4)
        return dets((tuple(np.add(CAR, j)), "car", 7))

    notices = run(analyzer(), every(2, 100), jittery)
    assert notices[0].event.state == EventState.STARTED
    assert notices[0].event.alerted_at == at(60)


def test_moving_car_through_the_zone_raises_nothing() -> None:
    def driving(t: float) -> Detections:
        x = 20 + 3 * t  # 3 px/s: slow, but never stands still
        return dets(((x, 130.0, x + 80, 180.0), "car", 3))

    assert run(analyzer(min_dwell_s=20), every(2, 90), driving) == []


def test_long_occlusion_ends_event_and_cooldown_blocks_realert() -> None:
    scene = parked(0, 1000)
    hidden = lambda t: dets() if 100 <= t < 130 else scene(t)  # noqa: E731
    notices = run(analyzer(), every(2, 400), hidden)
    got = states(notices)
    assert got[0] == ("ev1", EventState.STARTED)
    ends = [n for n in notices if n.event.state == EventState.ENDED]
    assert ends[0].event.event_id == "ev1" and ends[0].event.ended_at == at(98)
    second = [n for n in notices if n.event.event_id == "ev2"]
    assert second[0].event.state == EventState.STARTED
    # ended at 98 → cooldown until 218 (dwell alone would have allowed 190)
    assert second[0].event.alerted_at == at(218)
    d = second[0].event.details
    assert isinstance(d, ParkingDetails) and d.previous_event_id == "ev1"


def test_schedule_only_counts_enforced_time() -> None:
    # enforced from 10:02 local; the car is parked from 10:00
    rule = {"schedule": [{"start": "10:02", "end": "22:00"}]}
    notices = run(analyzer(**rule), every(2, 300), parked(0, 1000))
    assert notices[0].event.state == EventState.STARTED
    assert notices[0].event.alerted_at == at(180)  # 10:02 + 60 s
    d = notices[0].event.details
    assert isinstance(d, ParkingDetails) and d.dwell_s == pytest.approx(180)


def test_outside_schedule_no_event() -> None:
    rule = {"schedule": [{"days": ["sat", "sun"], "start": "00:00", "end": "00:00"}]}
    assert run(analyzer(**rule), every(2, 300), parked(0, 1000)) == []


def test_vehicle_groups_and_zone_kinds() -> None:
    bike = (100.0, 40.0, 130.0, 90.0)  # bottom centre in the no_parking "walk" zone
    a = analyzer(vehicles=["car", "bicycle"])
    notices = run(a, every(2, 80), lambda t: dets((bike, "bicycle", 1), (CAR, "car", 2)))
    types = {n.event.zone_id: n.event.event_type for n in notices}
    assert types == {
        "walk": EventType.ILLEGAL_PARKING_NON_MOTOR,
        "lane": EventType.FIRE_LANE_OCCUPATION,
    }


def test_classes_not_in_rule_are_ignored() -> None:
    assert run(analyzer(), every(2, 100), parked(0, 200, cls="bicycle")) == []


def test_vehicle_outside_zones_is_ignored() -> None:
    assert run(analyzer(), every(2, 100), parked(0, 200, box=(250.0, 130.0, 300.0, 235.0))) == []


def test_close_ends_open_events() -> None:
    a = analyzer()
    notices = run(a, every(2, 80), parked(0, 200))
    assert notices[-1].event.state in (EventState.STARTED, EventState.UPDATED)
    closed = a.close(T0 + 80, "end_of_stream")
    assert len(closed) == 1 and closed[0].event.state == EventState.ENDED
    d = closed[0].event.details
    assert isinstance(d, ParkingDetails) and d.end_reason == "end_of_stream"
    assert a.active_stays == 0


def test_gap_in_frames_is_reported_as_camera_gap() -> None:
    a = analyzer()
    run(a, every(2, 80), parked(0, 1000))
    later = a.observe(frame(T0 + 200, 99), dets((CAR, "car", 7)))
    ended = [n for n in later if n.event.state == EventState.ENDED]
    assert ended and isinstance(ended[0].event.details, ParkingDetails)
    assert ended[0].event.details.end_reason == "camera_gap"


def test_car_driving_in_from_the_image_edge_is_not_standing_until_it_stops() -> None:
    # the car enters from the right edge: its box is cut off by the frame, so boxes overlap a
    # lot while it is still moving; it stops at t = 20
    def arriving(t: float) -> Detections:
        x1 = max(100.0, 300.0 - 10.0 * t)
        return dets(((x1, 130.0, min(x1 + 120.0, float(W)), 180.0), "car", 7))

    notices = run(analyzer(min_dwell_s=30), every(2, 80), arriving)
    assert notices[0].event.started_at == at(20)


def test_one_vehicle_boxed_under_two_classes_is_one_stay() -> None:
    truck_box = (102.0, 131.0, 181.0, 180.0)
    notices = run(
        analyzer(), every(2, 100), lambda t: dets((CAR, "car", 1), (truck_box, "truck", 2))
    )
    assert len({n.event.event_id for n in notices}) == 1
