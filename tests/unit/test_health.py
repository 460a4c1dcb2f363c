"""Camera health history: state changes, stalls seen and ended, uptime over a window."""

from __future__ import annotations

from pipeline.health import HealthTracker, uptime_fraction
from pipeline.types import DecodeMode, HealthChange, HealthState


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
