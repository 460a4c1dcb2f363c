"""The change gate decides when the detector must look again."""

from __future__ import annotations

import numpy as np

from pipeline.config import ZoneConfig
from pipeline.detect.gate import ChangeGate, GateSettings
from pipeline.types import Frame

ZONE = ZoneConfig(
    id="z", kind="fire_lane", polygon=[(0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)]
)
RNG = np.random.default_rng(0)
BASE = RNG.integers(60, 200, (360, 640, 3), dtype=np.uint8)


def frame(img: np.ndarray, t: float, epoch: int = 1) -> Frame:
    return Frame("c", 0, epoch, t, t, img, (640, 360), True)


def noisy(img: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    return np.clip(img + RNG.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def gate(**kw: float | bool) -> ChangeGate:
    return ChangeGate(GateSettings(**kw), [ZONE])  # type: ignore[arg-type]


def test_still_scene_with_noise_and_exposure_drift_is_skipped() -> None:
    g = gate()
    assert g.should_detect(frame(BASE, 0))  # first frame: always
    darker = np.clip(BASE * 0.9, 0, 255).astype(np.uint8)
    assert not g.should_detect(frame(noisy(BASE), 2))
    assert not g.should_detect(frame(noisy(darker), 4))
    assert (g.detected, g.skipped) == (1, 2)


def test_object_entering_the_zone_is_detected() -> None:
    g = gate()
    g.should_detect(frame(BASE, 0))
    car = BASE.copy()
    car[250:300, 450:530] = 30  # 80×50 px vehicle in a 640×360 frame, inside the zone
    assert g.should_detect(frame(noisy(car), 2))


def test_change_outside_the_zones_is_ignored() -> None:
    g = gate()
    g.should_detect(frame(BASE, 0))
    walker = BASE.copy()
    walker[20:120, 20:60] = 255  # top-left, far from the zone
    assert not g.should_detect(frame(walker, 2))


def test_slow_changes_accumulate_against_the_last_detected_frame() -> None:
    g = gate()
    g.should_detect(frame(BASE, 0))
    img = BASE.copy()
    decisions = []
    for step in range(1, 8):
        img = img.copy()
        img[250:300, 450 : 450 + 12 * step] = 30  # grows by a few pixels per frame
        decisions.append(g.should_detect(frame(img, 2 * step)))
    assert any(decisions)


def test_max_skip_epoch_change_and_disabled_force_detection() -> None:
    g = gate(max_skip_s=10.0)
    g.should_detect(frame(BASE, 0))
    assert not g.should_detect(frame(BASE, 8))
    assert g.should_detect(frame(BASE, 10))  # 10 s since the last detection
    assert g.should_detect(frame(BASE, 11, epoch=2))  # reconnected
    off = gate(enabled=False)
    assert all(off.should_detect(frame(BASE, t)) for t in range(3))
