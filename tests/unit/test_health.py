"""Camera health history: state changes, stalls seen and ended, uptime over a window."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.config import AppConfig
from pipeline.ingest.health import HealthTracker, uptime_fraction
from pipeline.ops.compose import pipeline
from pipeline.runtime import Runtime
from pipeline.types import DecodeMode, Event, HealthChange, HealthState
from tests.conftest import camera_dict
from tests.media import ColorBoxDetector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_history_records_connects_stalls_and_outages() -> None:
    clock = Clock()
    h = HealthTracker("cam", DecodeMode.SAMPLED, clock, stall_after_s=5.0)
    clock.now += 2
    h.connected(1)
    h.frame_out(0.0)  # online at 1002
    for _ in range(10):
        clock.now += 1
        h.frame_out(0.0)
    clock.now += 20  # no frames for 20 s: stalled from 1012 + 5
    assert h.snapshot().state == HealthState.STALLED
    h.snapshot()  # seen twice, recorded once
    clock.now += 1
    h.frame_out(0.0)  # frames again at 1033
    h.set_state(HealthState.OFFLINE, "read timeout")  # 1033
    clock.now += 10
    h.set_state(HealthState.CONNECTING)
    states = [(c.at, c.state) for c in h.history()]
    assert states == [
        (1000.0, HealthState.CONNECTING),
        (1002.0, HealthState.ONLINE),
        (1017.0, HealthState.STALLED),
        (1033.0, HealthState.ONLINE),
        (1033.0, HealthState.OFFLINE),
        (1043.0, HealthState.CONNECTING),
    ]
    assert h.history()[4].reason == "read timeout"
    # online 1002-1017 of 1000-1043
    assert h.uptime(3600) == round(15 / 43, 4)


def test_uptime_window_cuts_changes() -> None:
    ch = [
        HealthChange(0.0, HealthState.ONLINE, None),
        HealthChange(50.0, HealthState.OFFLINE, "x"),
        HealthChange(60.0, HealthState.ONLINE, None),
    ]
    assert uptime_fraction(ch, 40.0, 100.0) == round(50 / 60, 4)
    assert uptime_fraction(ch, -100.0, 100.0) == 0.9  # nothing known before the first change
    assert uptime_fraction([], 0.0, 1.0) is None


# Read through a call: a type checker would keep an attribute narrowed by one assert past the
# watchdog calls that change it.
def outage(rt: Runtime) -> Event | None:
    return rt.cameras["cam1"].outage


def down_since(rt: Runtime) -> float | None:
    return rt.cameras["cam1"].down_since


def test_slow_first_connect_is_not_an_outage_but_a_hung_or_failed_one_is(
    make_config: Callable[..., AppConfig],
) -> None:
    """The watchdog's view: CONNECTING only counts once it outlasts a healthy connect."""
    clock = Clock()
    ingest = {"open_timeout_s": 3, "stall_after_s": 2, "offline_event_after_s": 1}
    cfg = make_config([camera_dict(url="rtsp://127.0.0.1:9/x")], ingest=ingest)
    rt = pipeline(cfg, detector=ColorBoxDetector(), clock=clock).runtime  # not started: no threads
    cam = rt.cameras["cam1"]
    h = cam.health

    def tick(dt: float) -> None:
        clock.now += dt
        rt._check_outages(cfg.ingest.offline_event_after_s)

    # a first connect that takes 4 s (< open 3 s + first keyframe 2 s) and succeeds
    for _ in range(4):
        tick(1.0)
    assert outage(rt) is None and down_since(rt) is None
    h.connected(1)
    h.frame_out(0.0)
    tick(1.0)
    assert outage(rt) is None
    # the connection drops: a failed attempt starts the outage clock at once
    h.set_state(HealthState.OFFLINE, "cam1: read failed")
    tick(0.5)
    assert down_since(rt) == clock.now and outage(rt) is None
    h.set_state(HealthState.CONNECTING)  # the retry does not reset the clock
    tick(1.0)
    begun = outage(rt)
    assert begun is not None and begun.started_at == clock.now - 1.0
    h.connected(2)
    h.frame_out(1.0)
    tick(1.0)
    assert outage(rt) is None and down_since(rt) is None  # ended

    # a connect that hangs (opened, never a frame) is an outage from the attempt's start
    rt2 = pipeline(cfg, detector=ColorBoxDetector(), clock=clock).runtime
    cam2 = rt2.cameras["cam1"]
    began = clock.now
    cam2.health.set_state(HealthState.CONNECTING)
    for _ in range(4):
        clock.now += 1.0
        rt2._check_outages(1.0)
    assert outage(rt2) is None
    clock.now += 1.5
    rt2._check_outages(1.0)
    hung = outage(rt2)
    assert hung is not None and hung.started_at == began
