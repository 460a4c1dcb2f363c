"""垃圾满溢 / 暴露垃圾 on synthetic frames: bags above the rim or on the ground, over minutes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.config import ZoneConfig
from pipeline.detect.detector import COCO_IDS
from pipeline.rules.bins import BinAnalyzer, BinDetails, BinRule
from pipeline.types import Detections, EventNotice, EventState, EventType, Frame

W, H = 320, 240
T0 = 1_763_863_200.0
BIN = ZoneConfig(id="bin1", kind="bin_area", polygon=[(0.3, 0.2), (0.7, 0.2), (0.7, 0.95), (0.3, 0.95)],
                 rim=[(0.38, 0.5), (0.62, 0.5)])  # fmt: skip
LITTER = ZoneConfig(
    id="corner", kind="litter_area", polygon=[(0.75, 0.6), (0.98, 0.6), (0.98, 0.98), (0.75, 0.98)]
)
RNG = np.random.default_rng(1)
GROUND = np.clip(RNG.integers(100, 140, (H, W, 3)).astype(np.float32), 0, 255)
NOISE = [RNG.normal(0, 2, (H, W, 3)).astype(np.float32) for _ in range(5)]


def scene(
    t: float, *, piled: bool = False, bags: bool = False, dumped: bool = False, gain: float = 1.0
) -> np.ndarray:
    img = GROUND.copy()
    img[120:228, 122:198] = (40, 110, 40)  # the green bin, rim at y = 120
    if piled:
        img[96:122, 125:195] = (200, 200, 210)  # white bags heaped above the rim
    if bags:
        img[200:226, 100:124] = (30, 30, 30)  # black bags on the ground beside it
        img[205:228, 198:222] = (30, 30, 30)
    if dumped:
        img[170:225, 250:305] = (60, 90, 150)  # rubbish in the corner
    return np.asarray(np.clip(img * gain + NOISE[int(t) % 5], 0, 255), np.uint8)


def analyzer(**rule: Any) -> BinAnalyzer:
    params: dict[str, Any] = {
        "analyzer": "bins",
        "interval_s": 30,
        "min_observations": 4,
        "clear_observations": 3,
    }
    params.update(rule)
    ids = iter(f"ev{i}" for i in range(1, 50))
    return BinAnalyzer(
        "cam", BinRule(**params), [BIN, LITTER], "Asia/Shanghai", new_id=lambda _t: next(ids)
    )


def run(a: BinAnalyzer, seconds: float, draw: Callable[[float], np.ndarray],
        dets: Callable[[float], Detections] = lambda t: Detections.empty()) -> list[EventNotice]:  # fmt: skip
    out: list[EventNotice] = []
    t = 0.0
    while t <= seconds:
        out.extend(a.observe(Frame("cam", 0, 1, t, T0 + t, draw(t), (W, H), True), dets(t)))
        t += 2.0
    return out


def test_garbage_piled_above_the_rim_after_minutes_then_cleaned() -> None:
    notices = run(analyzer(), 900, lambda t: scene(t, piled=100 <= t < 500))
    assert [(n.event.event_type, n.event.state) for n in notices] == [
        (EventType.BIN_OVERFLOW, EventState.STARTED),
        (EventType.BIN_OVERFLOW, EventState.ENDED),
    ]
    start = notices[0].event
    d = start.details
    assert isinstance(d, BinDetails) and d.above_rim_fraction > 0.15  # bags cover ~20 %
    # the 4th consecutive overflowing look, 30 s apart: 90-120 s after the bags appeared
    assert T0 + 100 + 60 <= start.alerted_at <= T0 + 100 + 150
    end = notices[1].event
    assert isinstance(end.details, BinDetails) and end.details.end_reason == "clean"
    assert end.details.above_rim_fraction > 0.15  # what was there, not the clean bin


def test_bags_on_the_ground_count_too() -> None:
    notices = run(analyzer(), 400, lambda t: scene(t, bags=t >= 30))
    assert notices and notices[0].event.event_type == EventType.BIN_OVERFLOW
    d = notices[0].event.details
    assert isinstance(d, BinDetails) and d.ground_fraction > d.above_rim_fraction


def test_a_bag_set_down_for_a_minute_is_not_an_overflow() -> None:
    assert run(analyzer(), 600, lambda t: scene(t, piled=100 <= t < 160)) == []


def test_person_at_the_bin_is_not_judged_and_light_changes_do_not_count() -> None:
    person = np.array([[110.0, 40.0, 210.0, 235.0]], np.float32)

    def dets(t: float) -> Detections:
        if 60 <= t < 400:
            return Detections(
                person, np.array([0.9], np.float32), np.array([COCO_IDS["person"]], np.int32)
            )
        return Detections.empty()

    def draw(t: float) -> np.ndarray:
        img = scene(t, gain=0.75 if t > 450 else 1.0)
        if 60 <= t < 400:
            img[40:235, 110:210] = (80, 60, 50)  # someone standing at the bin for minutes
        return img

    assert run(analyzer(), 800, draw, dets) == []


def test_rubbish_where_there_is_no_container_is_exposed_garbage() -> None:
    notices = run(analyzer(), 400, lambda t: scene(t, dumped=t >= 30))
    assert [n.event.event_type for n in notices] == [EventType.EXPOSED_GARBAGE]
    assert notices[0].event.zone_id == "corner"
