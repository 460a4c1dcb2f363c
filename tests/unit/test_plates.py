"""车牌: the real plate reader on generated plates, and how parking uses plates to tell cars
apart (scripted reads)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.detect.plate_lookups import Answer, InlinePlates, PlateWorker, Region
from pipeline.detect.plates import PLATE_RE, PlateRead, PlateReader, PlateSighting, normalise
from pipeline.rules.parking import ParkingAnalyzer, ParkingDetails, ParkingRule
from pipeline.types import EventNotice, EventState
from tests.scenes.plates import PlateSpec, degrade, draw_plate, place, plate_corners
from tests.unit.test_parking import CAR, LANE, T0, WALK, dets, every, frame


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


def bumper(spec: PlateSpec, width_px: float, yaw: float, seed: int) -> NDArray[np.uint8]:
    """A plain car front (grille, lights) with the plate on it, as a camera would see it."""
    img = np.full((360, 640, 3), (200, 200, 205), np.uint8)
    cv2.rectangle(img, (120, 120), (520, 330), (150, 150, 155), -1)  # bumper
    cv2.rectangle(img, (180, 140), (460, 190), (40, 40, 40), -1)  # grille
    for x in (140, 440):
        cv2.rectangle(img, (x, 60), (x + 60, 100), (230, 230, 240), -1)  # lights
    aspect = (480 if spec.style == "green" else 440) / 140
    corners = plate_corners((320, 260), width_px, aspect, yaw, 0.05)
    return degrade(place(img, draw_plate(spec), corners), np.random.default_rng(seed))


@pytest.mark.parametrize(
    ("spec", "width", "yaw"),
    [
        (PlateSpec("京A12345", "blue"), 140, 0.0),
        (PlateSpec("粤B7K2Q9", "blue"), 110, 15.0),
        (PlateSpec("苏ED51712", "green"), 120, -12.0),
        (PlateSpec("川R0Y3VE", "yellow"), 100, 8.0),
    ],
)
def test_reads_generated_plates_exactly(
    reader: PlateReader, spec: PlateSpec, width: float, yaw: float
) -> None:
    reads = reader.read(bumper(spec, width, yaw, seed=int(width)))
    assert reads, "no plate found"
    best = reads[0]
    assert best.text == spec.text and best.valid
    assert best.colour == spec.style
    assert best.sighting.width_px == pytest.approx(width * np.cos(np.radians(yaw)), rel=0.15)


def test_region_search_and_nothing_on_a_plain_car(reader: PlateReader) -> None:
    img = bumper(PlateSpec("浙C88888", "blue"), 90, 0.0, seed=5)
    wide = np.zeros((720, 1280, 3), np.uint8)
    wide[300:660, 600:1240] = img
    found = reader.read(wide, (700.0, 380.0, 1140.0, 640.0))
    assert found and found[0].text == "浙C88888"
    x1, y1, _, _ = found[0].sighting.box
    assert 800 < x1 < 960 and 500 < y1 < 600  # corners in the whole image's pixels
    plain = np.full((360, 640, 3), (150, 150, 155), np.uint8)
    assert reader.read(plain) == []


def test_the_worker_reads_off_thread_and_answers_in_frame_pixels(reader: PlateReader) -> None:
    img = bumper(PlateSpec("浙C88888", "blue"), 90, 0.0, seed=5)
    wide = np.zeros((720, 1280, 3), np.uint8)
    wide[300:660, 600:1240] = img
    region = (700.0, 380.0, 1140.0, 640.0)
    inline = reader.read(wide, region)
    worker = PlateWorker(reader)
    lookups = worker.lookups("cam1")
    assert lookups.ask(7, wide, region)
    assert lookups.answers() == []  # not started: nothing read yet, nothing lost either
    worker.start()
    worker.stop()  # reads what was asked before it stops
    answers = lookups.answers()
    assert [k for k, _ in answers] == [7] and lookups.answers() == []
    found = answers[0][1]
    assert found and found[0].text == "浙C88888" == inline[0].text
    np.testing.assert_allclose(found[0].sighting.corners, inline[0].sighting.corners, atol=2.0)
    # a hint in frame pixels travels with the crop and comes back in frame pixels
    worker.start()
    assert lookups.ask(8, wide, region, hint=inline[0].sighting)
    worker.stop()
    ((key, (hinted,)),) = lookups.answers()
    assert key == 8 and hinted.text == "浙C88888"
    np.testing.assert_allclose(hinted.sighting.corners, inline[0].sighting.corners, atol=0.01)


def test_a_hinted_read_skips_the_search_unless_the_plate_is_not_there(
    reader: PlateReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = bumper(PlateSpec("浙C88888", "blue"), 90, 0.0, seed=5)
    (found,) = reader.read(img)
    searches: list[int] = []
    search = reader.detector.detect

    def counted(image: NDArray[np.uint8]) -> list[PlateSighting]:
        searches.append(1)
        return search(image)

    monkeypatch.setattr(reader.detector, "detect", counted)
    (again,) = reader.read(img, hint=found.sighting)
    assert again.text == "浙C88888" and again.colour == "blue" and searches == []
    # the car left: at the hinted place there is no plate, so it is searched for (not here)
    plain = np.full_like(img, 150)
    assert reader.read(plain, hint=found.sighting) == [] and searches == [1]
    # another car, its plate elsewhere: the search finds it
    moved = np.roll(img, 60, axis=1)
    (other,) = reader.read(moved, hint=found.sighting)
    assert other.text == "浙C88888" and searches == [1, 1]
    assert other.sighting.box[0] == pytest.approx(found.sighting.box[0] + 60, abs=3)


class Gate:
    """A plate source that reads only when let through, counting what it was asked."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.asked = 0

    def read(
        self,
        image: NDArray[np.uint8],
        region: Region | None = None,
        hint: PlateSighting | None = None,
    ) -> list[PlateRead]:
        self.asked += 1
        self.open.wait(10)
        return [plate_read("京A12345")]


def test_a_full_worker_refuses_asks_instead_of_blocking() -> None:
    gate = Gate()
    worker = PlateWorker(gate, max_pending=2)
    lookups = worker.lookups("cam1")
    image = np.zeros((200, 200, 3), np.uint8)
    worker.start()
    assert lookups.ask(1, image, (10, 10, 50, 50))
    deadline = threading.Event()
    while gate.asked == 0 and not deadline.wait(0.01):
        pass  # the worker holds job 1: the queue is empty again
    assert lookups.ask(2, image, (10, 10, 50, 50)) and lookups.ask(3, image, (10, 10, 50, 50))
    assert not lookups.ask(4, image, (10, 10, 50, 50))  # two waiting: the third is refused
    assert worker.refused == 1
    gate.open.set()
    worker.stop()
    assert sorted(k for k, _ in lookups.answers()) == [1, 2, 3]


def test_normalise_and_grammar() -> None:
    assert normalise("苏E·D51712") == "苏ED51712"
    assert normalise("京a 1234o") == "京A12340"  # O is never issued: it is a zero
    assert PLATE_RE.match("苏ED51712") and PLATE_RE.match("京A12345")
    assert PLATE_RE.match("粤B1234学")
    assert not PLATE_RE.match("京I12345")  # no I as office letter
    assert not PLATE_RE.match("A123456") and not PLATE_RE.match("京A1234")


# -- parking: same car or another one ------------------------------------------------------


def plate_read(text: str, conf: float = 0.97) -> PlateRead:
    corners = np.array([[120, 170], [160, 170], [160, 180], [120, 180]], np.float32)
    return PlateRead(text, conf, True, "blue", PlateSighting(corners, 0.8, False))


class Script:
    """A plate source reading what a time-table says (seconds after T0)."""

    def __init__(self, plate_at: Callable[[float], str | None]) -> None:
        self.plate_at = plate_at
        self.calls: list[float] = []
        self.hints: list[PlateSighting | None] = []
        self.now = 0.0

    def read(
        self,
        image: NDArray[np.uint8],
        region: tuple[float, float, float, float] | None = None,
        hint: PlateSighting | None = None,
    ) -> list[PlateRead]:
        self.calls.append(self.now)
        self.hints.append(hint)
        text = self.plate_at(self.now)
        return [] if text is None else [plate_read(text)]


def analyzer(script: Script, **rule: float) -> ParkingAnalyzer:
    params = {"analyzer": "illegal_parking", "min_dwell_s": 60, "confirm_s": 4, "max_gap_s": 10,
              "cooldown_s": 120, "update_interval_s": 20, **rule}  # fmt: skip
    ids = iter(f"ev{i}" for i in range(1, 100))
    return ParkingAnalyzer("cam1", ParkingRule.model_validate(params), [LANE, WALK],
                           "Asia/Shanghai", new_id=lambda _t: next(ids),
                           plates=InlinePlates(script))  # fmt: skip


def run(a: ParkingAnalyzer, script: Script, times: Iterable[float],
        present: Callable[[float], bool]) -> list[EventNotice]:  # fmt: skip
    out: list[EventNotice] = []
    for i, t in enumerate(times):
        script.now = t
        out.extend(a.observe(frame(T0 + t, i), dets((CAR, "car", 7)) if present(t) else dets()))
    return out


def details(n: EventNotice) -> ParkingDetails:
    assert isinstance(n.event.details, ParkingDetails)
    return n.event.details


class Late:
    """Lookups answered one frame late and refused every other ask, as a busy worker does."""

    def __init__(self, source: Script) -> None:
        self.source = source
        self.waiting: list[Answer] = []
        self.ready: list[Answer] = []
        self.refuse = False  # flipped before each ask: the first is refused

    def ask(
        self, key: int, image: NDArray[np.uint8], region: Region, hint: PlateSighting | None = None
    ) -> bool:
        self.refuse = not self.refuse
        if self.refuse:
            return False
        self.waiting.append((key, self.source.read(image, region, hint)))
        return True

    def answers(self) -> list[Answer]:
        ready, self.ready, self.waiting = self.ready, self.waiting, []
        return ready


def test_late_and_refused_reads_still_name_the_car() -> None:
    script = Script(lambda t: "京A12345")
    late = Late(script)
    ids = iter(f"ev{i}" for i in range(1, 100))
    rule = ParkingRule.model_validate({"analyzer": "illegal_parking", "min_dwell_s": 60,
                                       "confirm_s": 4, "max_gap_s": 10, "cooldown_s": 120,
                                       "update_interval_s": 20})  # fmt: skip
    a = ParkingAnalyzer("cam1", rule, [LANE, WALK], "Asia/Shanghai",
                        new_id=lambda _t: next(ids), plates=late)  # fmt: skip
    notices = run(a, script, every(2, 120), lambda t: 10 <= t < 200)
    started = [n for n in notices if n.event.state == EventState.STARTED]
    assert len(started) == 1
    plate = details(started[0]).plate
    assert plate is not None and plate.text == "京A12345"
    # refused at 40 s, read at 42 s (answered at 44 s); due again 20 s later, at 62 s,
    # refused, read at 64 s: a refused look is made at the next frame and not counted
    assert script.calls[:2] == [42, 64]
    assert plate.reads == plate.attempts


def test_the_plate_goes_into_the_report_and_is_not_read_every_frame() -> None:
    script = Script(lambda t: None if t < 50 else "京A12345")
    notices = run(analyzer(script), script, every(2, 120), lambda t: 10 <= t < 200)
    started = [n for n in notices if n.event.state == EventState.STARTED]
    assert len(started) == 1
    plate = details(started[0]).plate
    assert plate is not None and plate.text == "京A12345" and plate.colour == "blue"
    assert plate.reads >= 1 and plate.attempts >= 2
    # first look at half the dwell (40 s), again 20 s later (read), then every update interval
    assert script.calls[:3] == [40, 60, 80]
    # once read, the plate is looked for where it was read first
    assert script.hints[:2] == [None, None] and script.hints[2] is not None


def test_short_stops_are_not_read_and_an_unreadable_plate_is_given_up() -> None:
    script = Script(lambda t: None)
    run(analyzer(script), script, every(2, 20), lambda t: 10 <= t < 20)  # a drop-off
    assert script.calls == []
    run(analyzer(script, min_dwell_s=600), script, every(2, 1200), lambda t: t >= 10)
    assert len(script.calls) == 5  # 310, 330, 370, 450, 610 s: then it stops trying


def test_another_plate_twice_running_is_another_car() -> None:
    # car A stands from 10 s; between two looks it leaves and car B takes the exact spot at 100 s
    script = Script(lambda t: "京A12345" if t < 100 else "沪B67890")
    notices = run(analyzer(script), script, every(2, 220), lambda t: 10 <= t < 300)
    by_state = [(n.event.event_id, n.event.state) for n in notices]
    assert ("ev1", EventState.STARTED) in by_state
    ended = [n for n in notices if n.event.state == EventState.ENDED]
    assert len(ended) == 1 and details(ended[0]).end_reason == "replaced"
    assert details(ended[0]).plate is not None
    second = [
        n for n in notices if n.event.event_id == "ev2" and n.event.state == EventState.STARTED
    ]
    assert len(second) == 1
    d2 = details(second[0])
    assert d2.plate is not None and d2.plate.text == "沪B67890"
    # its dwell starts when the new plate was confirmed, not when car A arrived
    assert second[0].event.started_at - T0 >= 100
    assert d2.previous_event_id is None  # a different car: no cooldown, no link


def test_one_stray_read_is_not_a_new_car() -> None:
    script = Script(lambda t: "沪B67890" if 94 <= t < 96 else "京A12345")
    notices = run(analyzer(script), script, every(2, 200), lambda t: 10 <= t < 300)
    assert {n.event.event_id for n in notices} == {"ev1"}
    assert not [n for n in notices if n.event.state == EventState.ENDED]


def back_after_leaving(plate_at: Callable[[float], str]) -> EventNotice:
    """A car parks 10-100 s (one event, ended at 98 s), the spot is empty, and a car with the
    scripted plate stands there from 130 s: the second stay's STARTED notice."""
    script = Script(plate_at)
    present = lambda t: 10 <= t < 100 or t >= 130  # noqa: E731
    notices = run(analyzer(script, cooldown_s=120), script, every(2, 300), present)
    second = [
        n for n in notices if (n.event.event_id, n.event.state) == ("ev2", EventState.STARTED)
    ]
    assert len(second) == 1
    return second[0]


def test_same_plate_back_within_cooldown_is_linked_and_waits() -> None:
    second = back_after_leaving(lambda t: "京A12345")
    d = details(second)
    assert d.previous_event_id == "ev1" and d.same_vehicle_as_previous is True
    assert second.event.alerted_at - T0 >= 98 + 120  # blocked until the cooldown ends


def test_another_plate_within_cooldown_alerts_on_its_own_dwell() -> None:
    second = back_after_leaving(lambda t: "京A12345" if t < 105 else "沪B67890")
    d = details(second)
    assert d.previous_event_id is None and d.same_vehicle_as_previous is None
    assert second.event.alerted_at - T0 == pytest.approx(190, abs=2)  # 130 s + 60 s dwell


def _probs(reader: PlateReader, script: list[tuple[int, str, float]]) -> NDArray[np.float32]:
    """Recogniser output: blank everywhere but at the scripted (step, character, p)."""
    index = {c: i for i, c in enumerate(reader.characters)}
    probs = np.zeros((24, len(reader.characters)), np.float32)
    probs[:, 0] = 1.0
    for step, ch, p in script:
        probs[step, index[ch]] = p
        probs[step, 0] -= p
    return probs


def test_the_province_is_restored_by_the_plate_grammar(reader: PlateReader) -> None:
    tail = [(4 + 2 * i, ch, 0.9) for i, ch in enumerate("AD84756")]
    # 川 was too faint to win its step (the blank did): the province comes from before
    text, conf = reader.decode(_probs(reader, [(1, "川", 0.3), *tail]))
    assert text == "川AD84756" and conf < 0.9
    # a province misread as another 汉字 at its own step
    text, _ = reader.decode(_probs(reader, [(2, "东", 0.6), (2, "蒙", 0.3), *tail[:6]]))
    assert text == "蒙AD8475"
    # or as a Latin letter
    text, _ = reader.decode(_probs(reader, [(2, "X", 0.5), (2, "浙", 0.4), *tail[:6]]))
    assert text == "浙AD8475"
    # a clean read is left alone
    text, conf = reader.decode(_probs(reader, [(2, "京", 0.95), *tail[:6]]))
    assert text == "京AD8475" and conf > 0.9
