"""Still-scene keyframe decoding: which keyframes a keyframe camera decodes, and which it
recovers when the scene changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.ingest.still import StillDecoder, StillSettings

RNG = np.random.default_rng(1)
STILL = RNG.integers(60, 200, (540, 960), dtype=np.uint8)
ROI = (0.5, 0.5, 1.0, 1.0)


def noisy(img: NDArray[np.uint8], sigma: float = 3.0) -> NDArray[np.uint8]:
    return np.clip(img + RNG.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def with_car(img: NDArray[np.uint8], x: int = 600) -> NDArray[np.uint8]:
    out = img.copy()
    out[380:460, x : x + 140] = 25  # a dark vehicle inside the zones' box
    return out


def run(
    dec: StillDecoder[int], pictures: list[NDArray[np.uint8]], gop_s: float = 2.0
) -> list[tuple[int, list[int]]]:
    """Keyframes 0, 1, … ``gop_s`` apart: (keyframe decoded, the keyframe recovered before it
    where a change began among those skipped)."""
    out = []
    for i, luma in enumerate(pictures):
        if not dec.wants(i * gop_s):
            dec.hold(i)
            continue
        back = []
        if dec.changed(noisy(luma)):
            back = [j for j in dec.take_held() if dec.began_here(noisy(pictures[j]))][:1]
        out.append((i, back))
    return out


def test_a_still_scene_is_decoded_every_interval_and_an_arrival_recovers_what_was_skipped() -> None:
    dec: StillDecoder[int] = StillDecoder(StillSettings(interval_s=6.0, roi=ROI))
    darker = np.clip(STILL * 0.85, 0, 255).astype(np.uint8)  # auto-exposure: not a change
    scene = [STILL] * 9 + [darker] * 4 + [with_car(darker)] * 8
    got = run(dec, scene)
    decoded = [i for i, _ in got]
    # 0 always; 1, 2 to see it still twice; then one keyframe in three (6 s at a 2 s GOP)
    assert decoded[:6] == [0, 1, 2, 5, 8, 11]
    # the car is there from keyframe 13; the next decoded one (14) sees it and brings back 13,
    # so the analyzers see the arrival when it happened
    arrival = next(i for i, back in got if back)
    assert arrival == 14
    assert dict(got)[14] == [13]
    # then every keyframe until two in a row stand still, and sparse again
    assert decoded[decoded.index(14) :] == [14, 15, 16, 19]
    assert dec.skipped == len(scene) - len(decoded)


def test_changes_outside_the_zones_box_keep_the_scene_still() -> None:
    dec: StillDecoder[int] = StillDecoder(StillSettings(interval_s=6.0, roi=ROI))
    walker = STILL.copy()
    walker[20:200, 40:120] = 255  # top-left, away from the zones
    got = run(dec, [STILL] * 3 + [walker, STILL] * 4)
    assert got == [(0, []), (1, []), (2, []), (5, []), (8, [])]


def test_an_analyzer_awaiting_an_alert_gets_every_keyframe_from_an_interval_before() -> None:
    dec: StillDecoder[int] = StillDecoder(StillSettings(interval_s=6.0, roi=ROI))
    for i in range(6):  # still: 0, 1, 2, then every third
        if dec.wants(i * 2.0, timer_due_s=30.0):
            dec.changed(noisy(STILL))
    assert not dec.wants(12.0, timer_due_s=30.0)  # a dwell timer runs out at 30 s: not yet
    assert dec.wants(14.0, timer_due_s=-math.inf)  # a timer may decide now: decode it
    wanted = [t for t in (16.0, 18.0, 20.0, 22.0, 24.0, 26.0, 28.0, 30.0) if dec.wants(t, 30.0)]
    assert wanted == [20.0, 24.0, 26.0, 28.0, 30.0]  # sparse, then each one from 24 s


def test_a_longer_gop_is_not_skipped_past_the_interval() -> None:
    """At a 5 s GOP, skipping one keyframe would leave 10 s between decoded ones: none is."""
    dec: StillDecoder[int] = StillDecoder(StillSettings(interval_s=6.0, roi=ROI))
    got = run(dec, [STILL] * 8, gop_s=5.0)
    assert [i for i, _ in got] == list(range(8))


def test_a_new_connection_starts_over() -> None:
    dec: StillDecoder[int] = StillDecoder(StillSettings(interval_s=6.0, roi=ROI))
    run(dec, [STILL] * 4)
    dec.hold(99)
    dec.reset()
    assert dec.wants(100.0)  # nothing known about the scene: decode
    assert dec.changed(STILL)
    assert dec.take_held() == []  # packets of the old connection are never decoded


def test_a_camera_decodes_no_sparser_than_its_rules_can_use() -> None:
    """On by default; no sparser than half a parking rule's max_gap_s (one missed look must
    not end a stay) or a third of its dwell; nothing when the gate is off or asked off, or
    for a vending rule."""
    from pipeline.config import GateConfig, parse_config
    from pipeline.rules.camera import CameraPipeline, build_analyzers
    from pipeline.runtime import still_settings
    from tests.conftest import camera_dict

    def settings(
        rule: dict[str, object], gate: GateConfig, kind: str = "fire_lane"
    ) -> StillSettings | None:
        zone = {
            "id": "z",
            "kind": kind,
            "polygon": [[0.2, 0.5], [0.8, 0.5], [0.8, 0.95], [0.2, 0.95]],
        }
        cfg = parse_config({"cameras": [camera_dict(rules=[rule], zones=[zone])]})
        cam = cfg.cameras[0]
        pipe = CameraPipeline(cam, build_analyzers(cam, cfg.site, cfg.evidence), gate)
        return still_settings(gate, cam, pipe)

    parking: dict[str, object] = {"analyzer": "illegal_parking"}
    on = GateConfig()  # on by default
    default = settings(parking, on)
    assert default is not None and default.interval_s == 6.0
    # a short dwell holds it to a third of the dwell: the arrival's detection, plates and
    # first photo done long before the alert
    short = settings(parking | {"min_dwell_s": 12}, on)
    assert short is not None and short.interval_s == 4.0
    assert default.roi == pytest.approx((0.15, 0.45, 0.85, 1.0))  # the lane, padded
    quick = settings(parking | {"max_gap_s": 4}, on)
    assert quick is not None and quick.interval_s == 2.0
    assert settings(parking, GateConfig(still_decode_interval_s=0)) is None
    assert settings(parking, GateConfig(enabled=False, still_decode_interval_s=6.0)) is None
    assert settings({"analyzer": "vending"}, on, "walkway") is None  # its background model
