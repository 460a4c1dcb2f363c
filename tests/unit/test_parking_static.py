"""Illegal parking's class-agnostic path: stays started by static objects, on generated images.

The images are a textured road with a painted object on it; the detector output is scripted
(a "cell phone" box, as COCO models call a car seen from above, or nothing at all).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.config import ZoneConfig
from pipeline.detect.detector import COCO_IDS
from pipeline.rules.ground import GroundPlane
from pipeline.rules.parking import ParkingAnalyzer, ParkingDetails, ParkingRule, vehicle_sized
from pipeline.types import Detections, EventNotice, EventState, EventType, Frame

W, H = 320, 240
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
# 192 × 108 px drawn as 12 × 6.75 m: 16 px per metre
LANE = [(0.2, 0.5), (0.8, 0.5), (0.8, 0.95), (0.2, 0.95)]
CAR = (120, 140, 200, 180)  # 80 × 40 px = 5 × 2.5 m seen from above
BAG = (150, 150, 166, 166)  # 1 × 1 m
Box = tuple[int, int, int, int]


def road(seed: int = 3) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (H, W)).astype(np.float32), (0, 0), 2.0)
    grey = np.clip(90 + noise, 0, 255).astype(np.uint8)
    return np.asarray(cv2.merge([grey, grey, grey]), np.uint8)


BACKGROUND = road()


def draw(box: Box | None, rng: np.random.Generator) -> NDArray[np.uint8]:
    img = BACKGROUND.copy()
    if box is not None:
        x1, y1, x2, y2 = box
        cv2.rectangle(img, (x1, y1), (x2, y2), (40, 40, 190), -1)  # red roof
        cv2.rectangle(img, (x1 + 10, y1 + 6), (x1 + 24, y2 - 6), (30, 30, 30), -1)  # windscreen
    noise = rng.normal(0, 2, img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def analyzer(*, size_m: tuple[float, float] | None = None, **rule: Any) -> ParkingAnalyzer:
    zone = ZoneConfig(id="lane", kind="no_parking", polygon=LANE, size_m=size_m)
    params: dict[str, Any] = {
        "analyzer": "illegal_parking", "min_dwell_s": 60, "confirm_s": 4, "max_gap_s": 10,
        "cooldown_s": 120, "update_interval_s": 1000, "static_settle_s": 20,
    }  # fmt: skip
    params.update(rule)
    ids = iter(f"ev{i}" for i in range(1, 100))
    return ParkingAnalyzer(
        "cam1", ParkingRule(**params), [zone], "Asia/Shanghai", new_id=lambda _t: next(ids)
    )


def labelled(box: Box | None, cls: str, conf: float = 0.6) -> Detections:
    if box is None:
        return Detections.empty()
    return Detections(
        xyxy=np.array([box], np.float32),
        confidence=np.array([conf], np.float32),
        class_id=np.array([COCO_IDS[cls]], np.int32),
    )


def run(
    a: ParkingAnalyzer,
    where: Callable[[float], Box | None],
    detect: Callable[[Box | None], Detections],
    until: float = 160.0,
    step: float = 2.0,
) -> list[EventNotice]:
    rng = np.random.default_rng(0)
    out: list[EventNotice] = []
    for i in range(int(until / step)):
        t = i * step
        box = where(t)
        image = draw(box, rng)
        out.extend(a.observe(Frame("cam1", i, 1, t, T0 + t, image, (W, H), True), detect(box)))
    out.extend(a.close(T0 + until, "end_of_stream"))
    return out


def standing(box: Box, t0: float, t1: float) -> Callable[[float], Box | None]:
    return lambda t: box if t0 <= t < t1 else None


def nothing(_box: Box | None) -> Detections:
    return Detections.empty()


def started(notices: list[EventNotice]) -> list[EventNotice]:
    return [n for n in notices if n.event.state == EventState.STARTED]


def test_a_car_the_detector_calls_a_cell_phone_raises_one_dated_event() -> None:
    notices = run(analyzer(), standing(CAR, 10, 130), lambda b: labelled(b, "cell phone"))
    first = started(notices)
    assert len(first) == 1
    ev = first[0].event
    d = ev.details
    assert isinstance(d, ParkingDetails)
    assert ev.event_type == EventType.ILLEGAL_PARKING_MOTOR
    assert d.started_by == "static_object" and d.class_name == "vehicle"
    assert any(e.startswith("detector_box:cell phone×") for e in d.evidence)
    # dated back by static_settle_s: the object arrived at 10 s and became static ~20 s later
    assert ev.started_at - T0 == pytest.approx(10, abs=4.0)
    ended = [n for n in notices if n.event.state == EventState.ENDED]
    assert len(ended) == 1 and ended[0].event.ended_at is not None
    assert ended[0].event.ended_at - T0 == pytest.approx(128, abs=2.5)


def test_without_any_detector_box_an_uncalibrated_zone_raises_nothing() -> None:
    assert started(run(analyzer(), standing(CAR, 10, 130), nothing)) == []


def test_a_calibrated_zone_confirms_a_car_by_its_ground_footprint() -> None:
    notices = run(analyzer(size_m=(12.0, 6.75)), standing(CAR, 10, 130), nothing)
    assert len(started(notices)) == 1
    d = started(notices)[0].event.details
    assert isinstance(d, ParkingDetails) and d.footprint_m is not None
    long, short = d.footprint_m
    assert long == pytest.approx(5.0, abs=0.6) and short == pytest.approx(2.5, abs=0.6)


def test_a_bag_on_a_calibrated_zone_is_not_a_vehicle() -> None:
    assert started(run(analyzer(size_m=(12.0, 6.75)), standing(BAG, 10, 130), nothing)) == []


def test_a_person_waiting_is_cut_out_of_the_static_objects() -> None:
    # the painted object stands still but the detector says it is a person
    notices = run(analyzer(size_m=(12.0, 6.75)), standing(CAR, 10, 130),
                  lambda b: labelled(b, "person"))  # fmt: skip
    assert started(notices) == []


def test_a_car_driving_through_never_becomes_static() -> None:
    def driving(t: float) -> Box | None:
        x = int(t * 4) % 240
        return (x, 140, x + 80, 180)

    notices = run(analyzer(size_m=(12.0, 6.75)), driving, lambda b: labelled(b, "cell phone"))
    assert started(notices) == []


def test_the_hole_a_car_leaves_behind_is_not_a_car() -> None:
    # parked when the camera started (so part of the learnt empty scene), gone at 10 s: the road
    # there now differs from the empty scene in the car's shape (a "ghost"), with no outline
    notices = run(analyzer(size_m=(12.0, 6.75)), standing(CAR, 0, 10), nothing, until=200)
    assert started(notices) == []


def test_a_named_vehicle_keeps_one_stay_when_it_also_becomes_static() -> None:
    notices = run(analyzer(), standing(CAR, 10, 130), lambda b: labelled(b, "car", 0.8))
    assert len(started(notices)) == 1
    d = started(notices)[0].event.details
    assert isinstance(d, ParkingDetails)
    assert d.started_by == "vehicle_detection" and d.class_name == "car"
    assert any(e.startswith("static_object×") for e in d.evidence)
    assert started(notices)[0].event.started_at - T0 == pytest.approx(10)


def test_static_objects_off_needs_a_vehicle_class() -> None:
    notices = run(
        analyzer(size_m=(12.0, 6.75), static_objects=False),
        standing(CAR, 10, 130),
        lambda b: labelled(b, "cell phone"),
    )
    assert started(notices) == []


def test_ground_footprint_and_vehicle_size() -> None:
    g = GroundPlane(np.array(LANE, np.float64), np.array([[0, 0], [12, 0], [12, 6.75], [0, 6.75]]))
    ys, xs = np.mgrid[CAR[1] : CAR[3], CAR[0] : CAR[2]]
    fp = g.footprint(np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32), (W, H))
    assert fp is not None and fp[0] == pytest.approx(5.0, abs=0.1)
    assert vehicle_sized(fp) and not vehicle_sized((1.0, 1.0)) and not vehicle_sized((30.0, 2.0))
    # a point past the horizon of a tilted ground plane has no place on the ground
    tilted = GroundPlane(
        np.array([(0.4, 0.5), (0.6, 0.5), (0.9, 0.9), (0.1, 0.9)], np.float64),
        np.array([[0, 0], [3, 0], [3, 10], [0, 10]], np.float64),
    )
    assert tilted.to_ground(np.array([[0.5, 0.1]], np.float32)) is None
    assert tilted.to_ground(np.array([[0.5, 0.7]], np.float32)) is not None


def test_size_m_needs_four_corners() -> None:
    with pytest.raises(ValueError, match="exactly 4 corners"):
        ZoneConfig(id="z", kind="no_parking", polygon=LANE[:3], size_m=(3.0, 4.0))


def test_a_vehicle_box_arriving_later_names_the_static_objects_stay() -> None:
    # the roof and bonnet without the lower body: its bottom edge well above the object's
    inner = (CAR[0] + 2, CAR[1] - 2, CAR[2] - 2, CAR[3] - 14)
    calls = [0]

    def detect(box: Box | None) -> Detections:
        """ "cell phone" for a minute, then a tighter "car" box (another model, or the light)."""
        calls[0] += 1
        if box is None or calls[0] < 30:
            return labelled(box, "cell phone")
        return labelled(inner, "car", 0.5)

    notices = run(analyzer(), standing(CAR, 10, 130), detect)
    assert len(started(notices)) == 1
    ended = [n for n in notices if n.event.state == EventState.ENDED]
    assert len(ended) == 1
    d = ended[0].event.details
    assert isinstance(d, ParkingDetails) and d.class_name == "car"
