"""File sources: sampled decoding, looping with continuous timestamps, a missing file."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray

import pipeline.ingest.source as source_module
from pipeline.errors import ConfigError
from pipeline.ingest.health import HealthTracker
from pipeline.ingest.hwdecode import HwDecode
from pipeline.ingest.media import encode_h264
from pipeline.ingest.packet_ring import PacketRing
from pipeline.ingest.source import SourceSettings, StreamSource
from pipeline.ingest.still import StillSettings
from pipeline.ops.compose import pipeline
from pipeline.types import CameraHealth, DecodeMode, Frame, HealthState
from tests.conftest import camera_dict
from tests.media import (
    Actor,
    ColorBoxDetector,
    Scene,
    lacking_device,
    stored_as_shown_differently,
    write_h264,
    write_h265,
)


def run_source(
    settings: SourceSettings,
    ring: PacketRing,
    stop_after_frames: int | None = None,
    health: HealthTracker | None = None,
) -> list[Frame]:
    frames: list[Frame] = []
    stop = threading.Event()

    def sink(f: Frame) -> bool:
        frames.append(f)
        if stop_after_frames is not None and len(frames) >= stop_after_frames:
            stop.set()
        return True

    health = health or HealthTracker(settings.camera_id, settings.decode_mode, time.time, 5.0)
    src = StreamSource(settings, ring, sink, health, stop)
    thread = threading.Thread(target=src.run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h264(tmp_path_factory.mktemp("src") / "c.mp4", Scene(duration_s=4, fps=10, gop=10))


def settings(url: Path, mode: DecodeMode, **kw: object) -> SourceSettings:
    return SourceSettings(
        camera_id="cam1", url=str(url), redacted_url=str(url), decode_mode=mode,
        realtime=False, start_time_s=1000.0, analysis_width=160, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(DecodeMode.KEYFRAMES, 4), (DecodeMode.SAMPLED, 8), (DecodeMode.FULL, 40)],
)
def test_decode_modes_emit_what_analyzers_need(clip: Path, mode: DecodeMode, expected: int) -> None:
    ring = PacketRing("cam1", 60)
    frames = run_source(settings(clip, mode, sample_fps=2.0), ring)
    assert len(frames) == expected
    assert frames[0].image.shape == (120, 160, 3)  # converted straight to the analysis width
    assert not frames[0].image.flags.writeable
    assert frames[0].time_s == 1000.0
    assert [f.seq for f in frames] == list(range(1, expected + 1))
    if mode == DecodeMode.KEYFRAMES:
        assert all(f.is_keyframe for f in frames)
    assert ring.span_s == pytest.approx(3.9)  # every packet is kept, whatever is decoded


def test_keyframes_of_a_stream_with_b_frames_come_out_at_once_and_in_order(
    tmp_path: Path,
) -> None:
    """A decoder reorders B-frame streams: fed keyframes alone it once handed each out two
    GOPs late (H.264, 3 B-frames) and lost the last two."""
    import av

    path = tmp_path / "bf.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "3",
                          "threads": "1"}  # fmt: skip
        for i in range(40):
            img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) // (1 + i % 4)
            vf = av.VideoFrame.from_ndarray(np.asarray(img, np.uint8), format="bgr24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    ring = PacketRing("cam1", 60)
    read_when_emitted: list[float] = []
    frames: list[Frame] = []

    def sink(f: Frame) -> bool:
        frames.append(f)
        read_when_emitted.append(ring.span_s)
        return True

    stop = threading.Event()
    s = settings(path, DecodeMode.KEYFRAMES)
    src = StreamSource(s, ring, sink, HealthTracker("cam1", s.decode_mode, time.time, 5.0), stop)
    src.run()
    assert [f.pts_s for f in frames] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    # each as soon as its own packet is read, not when later keyframes arrive
    assert read_when_emitted == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=0.15)


@pytest.mark.parametrize(
    ("turns", "mirror", "sar", "shape", "shown"),
    [(0, False, None, None, (160, 90)), (1, False, None, None, (160, 90)),
     (2, False, None, None, (160, 90)), (3, False, None, None, (160, 90)),
     # a front camera or an editor: mirrored (FFmpeg's rotation alone reads a half turn)
     (0, True, None, None, (160, 90)), (1, True, None, None, (160, 90)),
     (2, True, None, None, (160, 90)), (3, True, None, None, (160, 90)),
     (0, False, Fraction(16, 11), None, (160, 90)),  # PAL D1 of a 16:9 scene: samples widened
     (0, False, Fraction(10, 11), None, (176, 100)),  # NTSC 4:3: heightened (to even, 99 → 100)
     # a recorder that does not signal it, shown as the integrator says (display_aspect)
     (0, False, Fraction(16, 11), Fraction(16, 9), (160, 90)),
     (1, False, Fraction(16, 11), Fraction(16, 9), (160, 90))],
)  # fmt: skip
def test_pictures_reach_the_analyzers_as_shown(
    tmp_path: Path,
    turns: int,
    mirror: bool,
    sar: Fraction | None,
    shape: Fraction | None,
    shown: tuple[int, int],
) -> None:
    """A phone stores its upright picture turned (and a front camera mirrored), with a
    display matrix; a recorder's D1 channel stores squeezed samples and says how wide they
    are (or the integrator does). The analyzers, the motion stage and snapshots get the
    picture as a player shows it (a phone's throw once reached the analyzer lying on its
    side; a mirrored one, upside down)."""
    upright = np.zeros((90, 160, 3), np.uint8)
    upright[:45, :80] = 255  # top-left quadrant: shows which way up the picture comes out
    upright_clip = encode_h264(tmp_path / "up.mp4", [upright] * 5, fps=5, gop=5, crf=10)
    stored = stored_as_shown_differently(
        upright_clip, tmp_path / "st.mp4", turns=turns, sar=sar, signal=shape is None,
        mirror=mirror,
    )  # fmt: skip
    lumas: list[NDArray[np.uint8]] = []
    frames: list[Frame] = []
    s = replace(settings(stored, DecodeMode.FULL), analysis_width=0, display_shape=shape)

    def sink(f: Frame) -> bool:
        frames.append(f)
        return True

    health = HealthTracker("cam1", s.decode_mode, time.time, 5.0)
    src = StreamSource(s, PacketRing("cam1", 60), sink, health, threading.Event(),
                       on_luma=lambda y, *_: lumas.append(y.copy()))  # fmt: skip
    src.run()
    # all five, also the last ones a B-frame decoder still holds when the file ends
    assert len(frames) == len(lumas) == 5
    w, h = shown
    for f, y in zip(frames, lumas, strict=True):
        assert f.native_size == shown and f.image.shape == (h, w, 3) and y.shape == (h, w)
        for img in (f.image[..., 1], y):
            assert img[h // 18 : h * 4 // 9, w // 32 : w * 15 // 32].mean() > 200  # top left
            assert img[h * 5 // 9 :, :].mean() < 40 and img[:, w * 9 // 16 :].mean() < 40


def test_looping_file_keeps_time_and_timestamps_monotonic(clip: Path) -> None:
    ring = PacketRing("cam1", 60)
    frames = run_source(settings(clip, DecodeMode.KEYFRAMES, loop=True), ring, stop_after_frames=10)
    times = [f.time_s for f in frames[:10]]
    assert times == pytest.approx([1000.0 + i for i in range(10)])
    assert {f.epoch for f in frames} == {1}  # a loop is not a reconnect
    collector = ring.collect(1000.0, 1009.0)
    dts = [p.dts for p in collector.packets if p.dts is not None]
    assert len(dts) == len(collector.packets)
    assert dts == sorted(dts) and len(set(dts)) == len(dts)


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_a_still_scene_decodes_few_keyframes_and_an_arrival_is_seen_when_it_happened(
    tmp_path: Path, codec: str
) -> None:
    """A car stops at 11.5 s in a still street (1 s GOP, text clock outside the zones). Decoding
    a keyframe only every 3 s while nothing moves, the analyzers still get the keyframe at 12 s
    (recovered when 14 s showed the change)."""
    car = Actor((180, 150, 260, 200), 11.5, 99.0, velocity=(0.0, 0.0))
    scene = Scene(duration_s=20, fps=10, gop=10, actors=(car,))
    path = (write_h264 if codec == "h264" else write_h265)(tmp_path / "still.mp4", scene)
    still = StillSettings(interval_s=3.0, roi=(0.4, 0.5, 1.0, 1.0))

    def car_seen(f: Frame) -> bool:
        return bool(f.image[80:95, 100:125, 0].mean() < 60)  # the box (blue 40) at 160 wide

    every = run_source(settings(path, DecodeMode.KEYFRAMES), PacketRing("cam1", 60))
    sparse = run_source(settings(path, DecodeMode.KEYFRAMES, still=still), PacketRing("c", 60))
    assert len(every) == 20
    times = [round(f.time_s - 1000.0, 3) for f in sparse]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len(sparse) <= 12
    first = [next(round(f.time_s - 1000.0, 3) for f in fs if car_seen(f)) for fs in (every, sparse)]
    assert first == [12.0, 12.0]
    # 12 recovered (13, between it and the one that showed the change, adds nothing), then
    # every keyframe until two in a row stand still
    assert times[times.index(12.0) :] == [12.0, 14.0, 15.0, 16.0, 19.0]
    assert not any(car_seen(f) for f in sparse if f.time_s < 1011.5)


def test_a_looping_still_scene_keeps_time_moving_forward(tmp_path: Path) -> None:
    """A car stands 11.5-16.5 s in an 18 s clip: it leaves at the keyframe skipped just before
    the file starts again. That keyframe's timestamps are the last loop's: it is not recovered
    after the loop (it would come out a whole loop late, before the loop's own frames)."""
    car = Actor((180, 150, 260, 200), 11.5, 16.5, velocity=(0.0, 0.0))
    path = write_h264(tmp_path / "loop.mp4", Scene(duration_s=18, fps=10, gop=10, actors=(car,)))
    still = StillSettings(interval_s=3.0, roi=(0.4, 0.5, 1.0, 1.0))
    frames = run_source(
        settings(path, DecodeMode.KEYFRAMES, still=still, loop=True),
        PacketRing("cam1", 60),
        stop_after_frames=16,
    )
    times = [round(f.time_s - 1000.0, 3) for f in frames]
    assert max(times) > 19.0  # went round
    assert times == sorted(times) and len(set(times)) == len(times)


def test_missing_file_is_refused_before_start(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config([camera_dict(url=str(tmp_path / "gone.mp4"))])
    with pytest.raises(ConfigError, match=r"gone\.mp4"):
        pipeline(cfg)


def failing(s: SourceSettings, seconds: float) -> tuple[CameraHealth, list[Frame]]:
    """A source left to try a stream that will not open for ``seconds``: its health then, and
    the frames it gave (none, ever)."""
    frames: list[Frame] = []

    def sink(f: Frame) -> bool:
        frames.append(f)
        return True

    health = HealthTracker("cam1", s.decode_mode, time.time, 5.0)
    stop = threading.Event()
    t = threading.Thread(
        target=StreamSource(s, PacketRing("cam1", 60), sink, health, stop).run, daemon=True
    )
    t.start()
    time.sleep(seconds)
    snap = health.snapshot()
    stop.set()
    t.join(5)
    return snap, frames


def test_unopenable_stream_goes_offline_without_frames(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    s = settings(bad, DecodeMode.KEYFRAMES, backoff_initial_s=0.05, backoff_max_s=0.1, loop=True)
    snap, frames = failing(s, 0.8)
    assert frames == []
    assert snap.state in (HealthState.OFFLINE, HealthState.CONNECTING)
    assert snap.last_error is not None and "cannot open" in snap.last_error
    assert snap.epoch == 0  # never connected, so no epoch was started


def test_skipping_the_deblocking_filter_changes_pictures_slightly_not_frames(
    tmp_path: Path,
) -> None:
    scene = Scene(
        duration_s=3,
        fps=10,
        gop=10,
        actors=(Actor(box=(20, 40, 90, 120), t0=0, t1=9, velocity=(40.0, 5.0)),),
    )
    noise = np.random.default_rng(1).normal(0, 6, (scene.height, scene.width, 3))
    pictures = (
        np.clip(scene.render(i / scene.fps) + noise, 0, 255).astype(np.uint8) for i in range(30)
    )
    # a camera-like encoding: deblocking on (x264's ultrafast preset turns it off), coarse QP
    video = encode_h264(tmp_path / "moving.mp4", pictures, fps=10, gop=10, crf=32)

    def decode(skip: bool) -> list[Frame]:
        ring = PacketRing("cam1", 60)
        s = settings(video, DecodeMode.FULL, skip_deblocking=skip)
        return run_source(replace(s, analysis_width=scene.width), ring)

    full, fast = decode(False), decode(True)
    assert [f.pts_s for f in fast] == [f.pts_s for f in full] and len(full) == 30
    diffs = [
        float(np.abs(a.image.astype(np.int16) - b.image.astype(np.int16)).mean())
        for a, b in zip(full, fast, strict=True)
    ]
    assert max(diffs) > 0.0  # the option reaches the decoder
    assert max(diffs) < 3.0  # and only nudges edges, the picture is the same


def test_deblocking_is_skipped_only_for_motion_only_cameras(make_config) -> None:  # type: ignore[no-untyped-def]
    facade = {"id": "f", "kind": "facade", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
    grid = {
        "id": "g", "building": "1", "zone": "f", "bottom_floor": 1, "top_floor": 6,
        "columns": ["01", "02"], "corners": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]],
    }  # fmt: skip
    throwing = camera_dict(id="t", zones=[facade], facades=[grid], rules=[{"analyzer": "throwing"}])
    cfg = make_config([camera_dict(), throwing, {**throwing, "id": "u", "skip_deblocking": False}])
    rt = pipeline(cfg, detector=ColorBoxDetector()).runtime
    assert not rt.cameras["cam1"].source.s.skip_deblocking  # parking: the detector's pictures
    assert rt.cameras["t"].source.s.skip_deblocking
    assert not rt.cameras["u"].source.s.skip_deblocking  # the integrator's choice wins


# -- hardware decoding (``[ingest] hwaccel``): never a reason for a camera to fail -----------


def test_a_camera_asked_to_decode_on_a_device_it_lacks_decodes_on_the_cpu_and_says_why(
    clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    device = lacking_device()
    health = HealthTracker("cam1", DecodeMode.KEYFRAMES, time.time, 5.0)
    s = settings(clip, DecodeMode.KEYFRAMES)
    asked = run_source(replace(s, hwaccel=device), PacketRing("cam1", 60), health=health)
    plain = run_source(s, PacketRing("cam1", 60))
    assert len(asked) == len(plain) == 4
    assert all(np.array_equal(a.image, b.image) for a, b in zip(asked, plain, strict=True))
    decoder = health.snapshot().decoder
    assert decoder.startswith("cpu (") and f"no {device}" in decoder
    assert "decoding on the CPU" in caplog.text


def test_a_stream_its_device_will_not_open_is_decoded_on_the_cpu(
    clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The device passed its probe, but this stream does not open on it (the GPU's decoder
    sessions used up): the camera goes on, on the CPU."""
    monkeypatch.setattr(source_module, "choose", HwDecode)  # the probe: usable
    real_open = av.open

    def open_(*args: object, hwaccel: object = None, **kw: object) -> object:
        if hwaccel is not None:
            raise OSError(12, "Cannot allocate memory")
        return real_open(*args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(av, "open", open_)  # as the source calls it
    health = HealthTracker("cam1", DecodeMode.KEYFRAMES, time.time, 5.0)
    s = replace(settings(clip, DecodeMode.KEYFRAMES), hwaccel="cuda")
    frames = run_source(s, PacketRing("cam1", 60), health=health)
    assert len(frames) == 4
    assert health.snapshot().decoder == "cpu (cuda: OSError: Cannot allocate memory (errno 12))"


def test_a_camera_that_cannot_be_reached_is_not_blamed_on_its_decoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_module, "choose", HwDecode)
    s = replace(settings(tmp_path / "gone.mp4", DecodeMode.KEYFRAMES), hwaccel="cuda")
    snap, _ = failing(s, 0.5)
    assert snap.last_error is not None and "cannot open" in snap.last_error
    assert snap.decoder == "cuda"  # tried again on the device at the next connection


def test_a_streams_display_matrix_is_read_once_not_for_every_frame(
    clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a frame's side data ties the frame into a reference cycle that only the
    garbage collector frees: read for every frame, decoded 1080p pictures piled up by the
    hundred megabytes and collecting them cost a camera's CPU."""
    import pipeline.ingest.display as display_module

    real = display_module.orientation
    reads: list[int] = []

    def counted(frame: av.VideoFrame) -> tuple[int, bool]:
        reads.append(1)
        return real(frame)

    monkeypatch.setattr(display_module, "orientation", counted)
    frames = run_source(settings(clip, DecodeMode.FULL), PacketRing("cam1", 60))
    assert len(frames) == 40 and len(reads) == 1


def test_a_fault_while_reading_a_picture_starts_a_new_session_not_a_silent_camera(
    clip: Path,
) -> None:
    """Before, anything but a stream error (here the motion stage's hook) ended the source's
    thread: the camera stayed "online" and gave nothing more, for ever."""
    frames: list[Frame] = []
    stop = threading.Event()
    calls = [0]

    def sink(f: Frame) -> bool:
        frames.append(f)
        if len(frames) >= 30:
            stop.set()
        return True

    def hook(*_: object) -> None:
        calls[0] += 1
        if calls[0] == 5:
            raise ValueError("operands could not be broadcast together")

    s = settings(clip, DecodeMode.FULL, loop=True, backoff_initial_s=0.05, backoff_max_s=0.1)
    health = HealthTracker("cam1", s.decode_mode, time.time, 5.0)
    src = StreamSource(s, PacketRing("cam1", 60), sink, health, stop, on_luma=hook)
    thread = threading.Thread(target=src.run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and len(frames) >= 30
    assert [f.epoch for f in frames[:4]] == [1] * 4 and frames[-1].epoch == 2  # reconnected
    changes = health.history()
    assert any("ValueError: operands" in (c.reason or "") for c in changes), changes
