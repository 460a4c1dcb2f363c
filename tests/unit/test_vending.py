"""占道经营 on synthetic frames: stalls (detected or not) count, passers-by and light do not."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pipeline.config import ZoneConfig
from pipeline.detect.detector import COCO_IDS
from pipeline.rules.occupancy import StaticForeground
from pipeline.rules.vending import VendingAnalyzer, VendingDetails, VendingRule
from pipeline.types import Detections, EventNotice, EventState, EventType, Frame

W, H = 320, 240
T0 = 1_763_863_200.0  # 2025-11-23 10:00 +08:00, a Sunday
WALK = ZoneConfig(
    id="walk", kind="walkway", polygon=[(0.05, 0.5), (0.95, 0.5), (0.95, 0.98), (0.05, 0.98)]
)
SHOP = ZoneConfig(
    id="shop", kind="shop_front", polygon=[(0.05, 0.1), (0.45, 0.1), (0.45, 0.45), (0.05, 0.45)]
)
PERMIT = ZoneConfig(
    id="ok", kind="permitted_stall", polygon=[(0.7, 0.5), (0.95, 0.5), (0.95, 0.98), (0.7, 0.98)]
)
RNG = np.random.default_rng(0)
PAVING = np.clip(
    np.kron(RNG.integers(90, 150, (H // 8, W // 8, 1)), np.ones((8, 8, 3)))
    + RNG.normal(0, 3, (H, W, 3)),
    0,
    255,
).astype(np.uint8)


NOISE = [RNG.normal(0, 2, (H, W, 3)).astype(np.float32) for _ in range(7)]


def at(s: float) -> object:
    return pytest.approx(T0 + s, abs=1e-6)


def scene(
    t: float,
    *,
    stall: tuple[int, int, int, int] | None = None,
    walker: bool = False,
    gain: float = 1.0,
) -> np.ndarray:
    img = PAVING.astype(np.float32)
    if stall is not None:
        x1, y1, x2, y2 = stall
        img[y1:y2, x1:x2] = (30, 80, 200)  # a red tarp with crates: no COCO class
        img[y1 + 5 : y2 - 5, x1 + 5 : x1 + 25] = (40, 140, 60)
    if walker:  # people walking by, never at the same place twice in a row
        x = int(20 + 37 * t) % 260
        img[140:200, x : x + 14] = (20, 20, 20)
    img = img * gain + NOISE[int(t) % len(NOISE)]
    return np.clip(img, 0, 255).astype(np.uint8)


def frame(t: float, image: np.ndarray) -> Frame:
    return Frame("cam", 0, 1, t, T0 + t, image, (W, H), True)


def analyzer(zones: list[ZoneConfig] | None = None, **rule: Any) -> VendingAnalyzer:
    params: dict[str, Any] = {
        "analyzer": "vending",
        "min_dwell_s": 180,
        "clear_s": 60,
        "update_interval_s": 60,
    }
    params.update(rule)
    ids = iter(f"ev{i}" for i in range(1, 100))
    return VendingAnalyzer("cam", VendingRule(**params), zones or [WALK, SHOP, PERMIT], "Asia/Shanghai",
                           new_id=lambda _t: next(ids))  # fmt: skip


def run(a: VendingAnalyzer, seconds: float, draw: Callable[[float], np.ndarray],
        dets: Callable[[float], Detections] = lambda t: Detections.empty(), step: float = 2.0) -> list[EventNotice]:  # fmt: skip
    out: list[EventNotice] = []
    t = 0.0
    while t <= seconds:
        out.extend(a.observe(frame(t, draw(t)), dets(t)))
        t += step
    return out


STALL = (60, 150, 160, 225)  # ~34 % of the walkway zone


def test_undetectable_stall_is_found_by_the_background_model() -> None:
    notices = run(analyzer(), 600, lambda t: scene(t, stall=STALL if 60 <= t < 420 else None))
    states = [(n.event.event_id, n.event.state) for n in notices]
    assert states[0] == ("ev1", EventState.STARTED)
    assert states[-1] == ("ev1", EventState.ENDED)
    start = notices[0].event
    assert start.event_type == EventType.ROAD_OCCUPATION_VENDING
    d = start.details
    assert isinstance(d, VendingDetails)
    assert d.static_fraction > 0.9 and d.objects == ()
    assert 0.2 < d.peak_occupancy < 0.5
    # seen after about a minute in the recent background, but dated from its arrival
    assert T0 + 60 - 10 <= start.started_at <= T0 + 60 + 15
    assert T0 + 60 + 180 - 10 <= start.alerted_at <= T0 + 60 + 180 + 15
    end = notices[-1].event
    assert isinstance(end.details, VendingDetails) and end.details.end_reason == "cleared"
    assert T0 + 420 <= (end.ended_at or 0) <= T0 + 420 + 120


def test_an_alert_due_on_a_recovered_keyframe_comes_on_the_next_one() -> None:
    """Still-scene decoding: while the stall's dwell runs the analyzer awaits an alert (its
    keyframes all decoded); an alert never comes on a recovered keyframe (analysed late), but
    on the current one that follows it."""
    from dataclasses import replace

    a = analyzer()

    def draw(t: float) -> np.ndarray:
        return scene(t, stall=STALL if t >= 60 else None)

    awaiting = [a.timer_due_s == -math.inf]
    t = 0.0
    while a.timer_due_s != -math.inf and t < 200:
        assert not a.observe(frame(t, draw(t)), Detections.empty())
        t += 2.0
    awaiting.append(a.timer_due_s == -math.inf)  # occupied, dwell running
    on_recovered: list[EventNotice] = []
    on_current: list[EventNotice] = []
    while not on_current and t < 600:
        late = replace(frame(t, draw(t)), recovered=True)
        on_recovered += a.observe(late, Detections.empty())
        on_current += a.observe(frame(t + 1, draw(t + 1)), Detections.empty())
        t += 4.0
    assert on_recovered == []
    assert [n.event.state for n in on_current] == [EventState.STARTED]
    awaiting.append(a.timer_due_s == -math.inf)
    assert awaiting == [False, True, False]


def test_pedestrians_and_lighting_do_not_occupy() -> None:
    def draw(t: float) -> np.ndarray:
        return scene(t, walker=True, gain=0.7 if t > 200 else 1.0)

    assert run(analyzer(), 600, draw) == []


def test_person_standing_still_is_not_a_stall() -> None:
    waiting = (100, 140, 130, 215)

    def dets(t: float) -> Detections:
        return Detections(
            xyxy=np.array([waiting], np.float32) - np.array([2, 2, -2, -2], np.float32),
            confidence=np.array([0.8], np.float32),
            class_id=np.array([COCO_IDS["person"]], np.int32),
        )

    assert run(analyzer(), 600, lambda t: scene(t, stall=waiting if t >= 30 else None), dets) == []
    # the same blob without the person detection is occupation
    assert run(analyzer(), 600, lambda t: scene(t, stall=waiting if t >= 30 else None))


def test_detected_stall_objects_count_by_their_footprint() -> None:
    umbrella = (80.0, 120.0, 200.0, 200.0)

    def dets(t: float) -> Detections:
        return Detections(
            xyxy=np.array([umbrella], np.float32), confidence=np.array([0.8], np.float32),
            class_id=np.array([COCO_IDS["umbrella"]], np.int32),
        )  # fmt: skip

    notices = run(analyzer(), 300, lambda t: scene(t), dets)
    assert notices and notices[0].event.state == EventState.STARTED
    d = notices[0].event.details
    assert isinstance(d, VendingDetails) and d.objects == ("umbrella",)
    assert notices[0].event.alerted_at == at(180)  # detected at once: dwell from t = 0


def test_shop_front_goods_are_a_different_event_type() -> None:
    goods = (30, 40, 120, 100)
    notices = run(analyzer(), 500, lambda t: scene(t, stall=goods if t >= 30 else None))
    assert notices and notices[0].event.event_type == EventType.SHOP_FRONT_SPILLOVER


def test_permitted_stall_area_is_exempt() -> None:
    inside_permit = (230, 150, 300, 225)
    assert run(analyzer(), 500, lambda t: scene(t, stall=inside_permit)) == []


def test_exempt_market_day_and_schedule() -> None:
    market = run(analyzer(exempt_dates=["2025-11-23"]), 500, lambda t: scene(t, stall=STALL))
    assert market == []
    night_only = run(
        analyzer(schedule=[{"start": "20:00", "end": "23:00"}]),
        500,
        lambda t: scene(t, stall=STALL),
    )
    assert night_only == []


def test_mobile_vendor_stopping_repeatedly() -> None:
    spots = [(20, 150, 80, 220), (120, 150, 180, 220), (60, 150, 130, 220)]

    def draw(t: float) -> np.ndarray:
        k = int((t - 60) // 240)  # from t = 60, every 4 min: 2 min standing, 2 min gone
        return scene(t, stall=spots[k % 3] if t >= 60 and (t - 60) % 240 < 120 and k < 3 else None)

    notices = run(analyzer(mobile_min_stop_s=30, recent_s=20), 900, draw)
    mobile = [n for n in notices if n.event.event_type == EventType.UNLICENSED_MOBILE_VENDING]
    assert [n.event.state for n in mobile] == [EventState.STARTED, EventState.ENDED]
    d = mobile[0].event.details
    assert isinstance(d, VendingDetails) and d.stops == 3
    assert not [n for n in notices if n.event.event_type == EventType.ROAD_OCCUPATION_VENDING]


def test_stall_present_at_start_is_found_with_an_empty_scene_reference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import cv2

    ref = tmp_path / "empty.jpg"
    cv2.imwrite(str(ref), PAVING)
    notices = run(analyzer(empty_scene=str(ref)), 300, lambda t: scene(t, stall=STALL))
    assert notices and notices[0].event.state == EventState.STARTED


def test_static_foreground_model_ignores_global_brightness() -> None:
    bg = StaticForeground([WALK])
    for k in range(60):
        m = bg.update(scene(k * 2, gain=1.0 if k < 30 else 0.6), T0 + k * 2)
    assert m.mean() < 0.01
