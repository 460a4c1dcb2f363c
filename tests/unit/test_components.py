"""Small components: schedule, packet ring, frame hub, watermark, tracker, backoff, zones."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, time as dtime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from pipeline.config import ScheduleWindow, ZoneConfig
from pipeline.detect.track import ByteTracker
from pipeline.ingest.packet_ring import PacketRecord, PacketRing
from pipeline.ingest.queues import FrameHub, Watermark
from pipeline.ingest.source import backoff_delay
from pipeline.rules.schedule import Schedule
from pipeline.rules.zones import compile_zone
from pipeline.types import Detections, Frame

TZ = ZoneInfo("Asia/Shanghai")


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=TZ).timestamp()


# -- schedule -----------------------------------------------------------------------------


def test_schedule_day_window_and_weekdays() -> None:
    s = Schedule(
        [ScheduleWindow(days=["mon", "tue"], start=dtime(7), end=dtime(22))], "Asia/Shanghai"
    )
    assert s.active(local(2026, 11, 23, 7))  # Monday 07:00
    assert not s.active(local(2026, 11, 23, 6, 59))
    assert not s.active(local(2026, 11, 23, 22))  # end is exclusive
    assert not s.active(local(2026, 11, 25, 12))  # Wednesday


def test_schedule_overnight_window_belongs_to_start_day() -> None:
    s = Schedule([ScheduleWindow(days=["fri"], start=dtime(22), end=dtime(6))], "Asia/Shanghai")
    assert s.active(local(2026, 11, 27, 23))  # Friday 23:00
    assert s.active(local(2026, 11, 28, 5, 59))  # Saturday early morning
    assert not s.active(local(2026, 11, 28, 23))  # Saturday night
    assert not s.active(local(2026, 11, 27, 5))  # Friday early morning (Thursday's night)


def test_empty_schedule_is_always() -> None:
    assert Schedule([], "UTC").active(0.0)


# -- packet ring --------------------------------------------------------------------------


def rec(t: float, key: bool, epoch: int = 1) -> PacketRecord:
    return PacketRecord(b"x" * 100, int(t * 1000), int(t * 1000), key, t, epoch)


class _Tmpl:  # stands in for StreamTemplate (only identity matters to the ring)
    pass


def filled_ring(until: float, gop: float = 2.0, fps: int = 10, max_age: float = 30.0) -> PacketRing:
    ring = PacketRing("cam1", max_age)
    ring.start_epoch(1, _Tmpl())  # type: ignore[arg-type]
    for i in range(int(until * fps)):
        t = i / fps
        ring.append(rec(t, i % int(gop * fps) == 0))
    return ring


def test_clip_starts_on_keyframe_before_preroll_and_waits_for_postroll() -> None:
    ring = filled_ring(until=20.0)
    clip = ring.collect(15.5, 21.0)
    assert not clip.done.is_set()
    assert clip.packets[0].is_keyframe and clip.packets[0].time_s == 14.0
    for i in range(200, 215):
        ring.append(rec(i / 10, i % 20 == 0))
    assert clip.done.is_set() and not clip.truncated
    assert clip.packets[-1].time_s == 21.0


def test_ring_trims_old_packets_and_flags_short_preroll() -> None:
    ring = filled_ring(until=60.0, max_age=10.0)
    assert ring.span_s <= 10.0
    clip = ring.collect(30.0, 55.0)  # 30 s is no longer held
    assert clip.truncated and clip.packets[0].is_keyframe and clip.packets[0].time_s >= 50.0


def test_reconnect_truncates_open_clip() -> None:
    ring = filled_ring(until=10.0)
    clip = ring.collect(8.0, 20.0)
    ring.end_epoch()
    assert clip.done.is_set() and clip.truncated


# -- frame hub and watermark --------------------------------------------------------------


def fr(cam: str, seq: int) -> Frame:
    return Frame(cam, seq, 1, float(seq), float(seq), np.zeros((2, 2, 3), np.uint8), (2, 2), True)


def test_live_hub_drops_oldest_and_counts() -> None:
    hub = FrameHub(maxlen=2)
    hub.register("a")
    for i in range(5):
        assert hub.put(fr("a", i))
    assert hub.drops("a") == 3
    batch = hub.take_batch(4, 0.0)
    assert batch is not None and [f.seq for f in batch] == [3]


def test_live_hub_never_drops_a_recovered_keyframe() -> None:
    """A still scene's change comes as two frames at once, the recovered keyframe where it
    began and the current one: the recovered one takes no place and is never the one dropped
    (it dates the change); the live frames after it are dropped oldest first."""
    from dataclasses import replace

    hub = FrameHub(maxlen=2)
    hub.register("a")
    hub.put(fr("a", 0))
    hub.put(replace(fr("a", 1), recovered=True))
    hub.put(fr("a", 2))  # frame 0, the recovered 1 and the current 2: room for them
    assert hub.drops("a") == 0
    hub.put(fr("a", 3))  # behind: the oldest live frame (0) goes
    hub.put(fr("a", 4))  # then 2
    assert hub.drops("a") == 2
    seqs = []
    while batch := hub.take_batch(1, 0.0):
        seqs += [f.seq for f in batch]
        hub.release(["a"])
    assert seqs == [1, 3, 4]


def test_hub_round_robin_is_fair() -> None:
    hub = FrameHub(maxlen=10)
    for cam in "abc":
        hub.register(cam)
    for i in range(6):
        hub.put(fr("a", i))
    hub.put(fr("b", 0))
    hub.put(fr("c", 0))
    batch = hub.take_batch(3, 0.0)
    assert batch is not None and sorted(f.camera_id for f in batch) == ["a", "b", "c"]


def test_camera_with_frame_in_flight_is_not_served_again() -> None:
    hub = FrameHub(maxlen=4)
    hub.register("a")
    hub.put(fr("a", 0))
    hub.put(fr("a", 1))
    first = hub.take_batch(4, 0.0)
    assert first is not None and [f.seq for f in first] == [0]  # one per camera per batch
    assert hub.take_batch(4, 0.0, idle_wait_s=0.05) == []  # still in flight: order kept
    hub.release(["a"])
    second = hub.take_batch(4, 0.0)
    assert second is not None and [f.seq for f in second] == [1]


def test_replay_hub_blocks_instead_of_dropping() -> None:
    hub = FrameHub(maxlen=1, block=True)
    hub.register("a")
    hub.put(fr("a", 0))
    done = threading.Event()

    def put_second() -> None:
        hub.put(fr("a", 1))
        done.set()

    threading.Thread(target=put_second, daemon=True).start()
    assert not done.wait(0.3)  # blocked while full
    assert hub.take_batch(1, 0.0)
    hub.release(["a"])
    assert done.wait(2.0)
    assert hub.drops("a") == 0
    hub.close()
    drained = hub.take_batch(1, 0.0)  # a frame queued before close is still delivered
    assert drained is not None and [f.seq for f in drained] == [1]
    assert hub.take_batch(1, 0.0) is None


def test_watermark_holds_source_only_while_frames_in_flight() -> None:
    wm = Watermark(lead_s=5.0)
    stop = threading.Event()
    wm.emitted()
    wm.processed(10.0)
    t0 = time.monotonic()
    wm.wait(100.0, stop)  # nothing in flight: returns at once
    assert time.monotonic() - t0 < 0.1
    wm.emitted()
    released = threading.Event()

    def wait_then_release() -> None:
        wm.wait(20.0, stop)
        released.set()

    threading.Thread(target=wait_then_release, daemon=True).start()
    assert not released.wait(0.3)
    wm.processed(16.0)
    assert released.wait(2.0)


# -- tracker, backoff, zones ----------------------------------------------------------------


def test_bytetrack_keeps_id_of_moving_box_and_resets() -> None:
    tr = ByteTracker()
    ids = []
    for i in range(6):
        d = Detections(
            xyxy=np.array([[10 + 4 * i, 10, 60 + 4 * i, 50]], np.float32),
            confidence=np.array([0.9], np.float32),
            class_id=np.array([2], np.int32),
        )
        ids.append(int(tr.update(d, 100.0 + 0.5 * i).track_id[0]))
    assert len(set(ids[1:])) == 1 and ids[1] >= 0
    tr.reset()
    assert int(tr.update(d, 200.0).track_id[0]) == -1  # fresh tracker: not yet confirmed


def test_backoff_grows_with_jitter_and_caps() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(n, 1.0, 60.0, rng) for n in range(10)]
    for n, d in enumerate(delays):
        cap = min(60.0, 2.0**n)
        assert cap / 2 <= d <= cap
    assert max(delays) <= 60.0


def test_zone_contains_and_overlap() -> None:
    z = compile_zone(
        ZoneConfig(
            id="z", kind="fire_lane", polygon=[(0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)]
        ),
        200,
        100,
    )
    pts = np.array([[150, 75], [10, 10], [100, 50]], np.float32)
    assert z.contains(pts).tolist() == [True, False, True]  # edge counts as inside
    ov = z.box_overlap(
        np.array([[100, 50, 200, 100], [0, 0, 100, 50], [50, 25, 150, 75]], np.float32)
    )
    np.testing.assert_allclose(ov, [1.0, 0.0, 0.25], atol=1e-6)


@pytest.mark.parametrize("anchor", ["bottom_center", "center"])
def test_detection_anchors(anchor: str) -> None:
    d = Detections(
        xyxy=np.array([[0, 0, 10, 20]], np.float32),
        confidence=np.array([1.0], np.float32),
        class_id=np.array([2], np.int32),
    )
    expected = [5, 20] if anchor == "bottom_center" else [5, 10]
    assert d.anchors(anchor).tolist() == [expected]


def test_detections_validate_shapes() -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        Detections(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="confidence"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), np.zeros(2, np.int32))


@pytest.mark.parametrize(
    ("native", "max_w", "expected"),
    [
        ((1920, 1080), 1280, (960, 540)),
        ((2560, 1440), 1280, (1280, 720)),
        ((3840, 2160), 1280, (1280, 720)),
        ((704, 576), 1280, (704, 576)),
        ((1920, 1080), 0, (1920, 1080)),
        ((320, 240), 160, (160, 120)),
    ],
)
def test_analysis_size_uses_whole_number_ratios(
    native: tuple[int, int], max_w: int, expected: tuple[int, int]
) -> None:
    from pipeline.ingest.source import analysis_size

    assert analysis_size(*native, max_w) == expected
