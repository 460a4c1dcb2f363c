"""A camera's rules run side by side: one that fails does not take the others down."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from pipeline.config import parse_config
from pipeline.rules.base import Analyzer
from pipeline.rules.camera import CameraPipeline
from pipeline.rules.motion import MotionNeeds
from pipeline.types import Blobs, DecodeMode, Detections, EventNotice, Frame, MotionSample
from tests.conftest import camera_dict


@dataclass
class Rule:
    """An analyzer that counts what it is shown and raises on the samples named in
    ``fail_on`` (a bug some scene meets)."""

    rule_id: str
    fail_on: frozenset[int] = frozenset()
    seen: list[int] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    classes: frozenset[int] = frozenset()
    decode_mode: DecodeMode = DecodeMode.FULL
    motion: MotionNeeds | None = None
    clean_pictures: bool = False
    max_frame_gap_s: float = float("inf")
    timer_due_s: float = float("inf")

    def observe(self, frame: Frame, detections: Detections) -> list[EventNotice]:
        return []

    def observe_motion(self, sample: MotionSample) -> list[EventNotice]:
        if sample.seq in self.fail_on:
            raise IndexError("index 13 is out of bounds for axis 0 with size 13")
        self.seen.append(sample.seq)
        return []

    def close(self, time_s: float, reason: str) -> list[EventNotice]:
        self.closed.append(reason)
        return []


def motion(seq: int) -> MotionSample:
    return MotionSample("cam1", seq, 1, seq / 25, 1.7e9 + seq / 25, Blobs.empty(), False, 0.0,
                        (1280, 720))  # fmt: skip


def test_a_rule_that_fails_is_logged_ended_and_restarted_while_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cam = parse_config({"cameras": [camera_dict()]}).cameras[0]
    bad, good = Rule("falls", fail_on=frozenset({3})), Rule("parking")
    again = Rule("falls")
    fresh: list[Analyzer] = [again, Rule("parking")]
    pipe = CameraPipeline(cam, [bad, good], rebuild=lambda: fresh)
    with caplog.at_level(logging.ERROR):
        for seq in range(6):
            pipe.process_motion(motion(seq))
    assert good.seen == [0, 1, 2, 3, 4, 5]  # the camera's other rule saw every sample
    assert bad.seen == [0, 1, 2] and bad.closed == ["analyzer_fault"]
    assert pipe.analyzers[0] is again and again.seen == [4, 5]
    assert pipe.analyzers[1] is good  # the rule that did not fail keeps what it learned
    assert pipe.faults == 1
    (record,) = caplog.records
    assert "camera cam1: rule falls failed" in record.getMessage() and record.exc_info
