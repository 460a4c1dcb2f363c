"""Live view remux on generated H.264: MP4 boxes cut correctly, the codec string from the SPS,
a viewer's bytes decode as video starting at a keyframe, and viewers share one remux."""

from __future__ import annotations

import io
import struct
import threading
import time
from pathlib import Path

import av
import pytest

from pipeline.ingest.display import Display
from pipeline.ingest.live import LiveHub, split_boxes
from pipeline.ingest.packet_ring import PacketRecord, PacketRing, StreamTemplate
from tests.media import Actor, Scene, stored_as_shown_differently, write_h264, write_h265


def test_boxes_are_cut_whole_whatever_the_chunks() -> None:
    a = struct.pack(">I4s", 12, b"ftyp") + b"isom"
    big = struct.pack(">I4sQ", 1, b"mdat", 16 + 3) + b"xyz"  # 64-bit size
    buf = bytearray()
    out: list[bytes] = []
    for byte in a + big:  # one byte at a time
        buf.append(byte)
        out += split_boxes(buf)
    assert out == [a, big] and not buf


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scene = Scene(width=320, height=240, fps=10, duration_s=12, gop=10,
                  actors=(Actor(box=(10, 10, 60, 60), t0=0, t1=12, velocity=(20, 0)),))  # fmt: skip
    return write_h264(tmp_path_factory.mktemp("live") / "cam.mp4", scene)


def feed(
    ring: PacketRing, clip: Path, *, after: int, pace_s: float, started: threading.Event
) -> None:
    """Demux the clip into the ring as a camera's source does (decoding, it learns how the
    pictures are shown); from packet ``after`` on, at ``pace_s`` per packet."""
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        tb = stream.time_base
        assert tb is not None
        template = StreamTemplate(stream)
        ring.start_epoch(1, template)
        for i, pkt in enumerate(c.demux(stream)):
            if pkt.size == 0:
                continue
            for frame in stream.decode(pkt):
                template.display = Display.of(frame, stream)
            t = float(pkt.pts * tb) if pkt.pts is not None else 0.0
            ring.append(PacketRecord(bytes(pkt), pkt.pts, pkt.dts, pkt.is_keyframe, t, 1))
            if i == after:
                started.set()
            if i >= after:
                time.sleep(pace_s)
    ring.end_epoch()


def test_two_viewers_share_one_remux_and_get_decodable_video(clip: Path) -> None:
    ring = PacketRing("cam1", 30.0)
    hub = LiveHub(lambda cid: ring if cid == "cam1" else None)
    assert hub.open("cam1") is None  # no stream yet: nothing to show, nothing faked
    started = threading.Event()
    feeder = threading.Thread(target=feed, args=(ring, clip),
                              kwargs={"after": 35, "pace_s": 0.02, "started": started})  # fmt: skip
    feeder.start()
    assert started.wait(10)
    first, second = hub.open("cam1"), hub.open("cam1")
    assert first is not None and second is not None
    # the encoder's profile (baseline, 0x42) and level, as MSE needs them
    assert first[0] == second[0] and first[0].startswith("avc1.42")
    assert hub.watching() == {"cam1": 2}
    data = [b"".join(stream) for _, stream in (first, second)]  # until the camera's end
    feeder.join(10)
    for body in data:
        assert body[4:8] == b"ftyp"
        with av.open(io.BytesIO(body), "r") as c:
            frames = list(c.decode(video=0))
        # from the last keyframe before they joined (packet 30) to the end (120 frames)
        assert 80 <= len(frames) <= 91 and frames[0].key_frame
    assert hub.watching() == {}
    assert hub.open("nope") is None


def test_an_h265_camera_is_watched_as_h264(tmp_path: Path) -> None:
    """Browsers' MSE does not play H.265 everywhere (most cameras sold in China send it): its
    viewers get the pictures encoded once more as H.264, shown upright."""
    scene = Scene(width=320, height=240, fps=10, duration_s=6, gop=10,
                  actors=(Actor(box=(10, 10, 60, 60), t0=0, t1=6, velocity=(20, 0)),))  # fmt: skip
    h265 = stored_as_shown_differently(
        write_h265(tmp_path / "cam.mp4", scene), tmp_path / "turned.mp4", turns=1,
        codec="libx265",
    )  # fmt: skip
    ring = PacketRing("cam1", 30.0)
    hub = LiveHub(lambda cid: ring if cid == "cam1" else None)
    started = threading.Event()
    feeder = threading.Thread(target=feed, args=(ring, h265),
                              kwargs={"after": 15, "pace_s": 0.02, "started": started})  # fmt: skip
    feeder.start()
    assert started.wait(10)
    opened = hub.open("cam1")
    assert opened is not None
    codec, stream = opened
    assert codec.startswith("avc1.42")  # x264's baseline, what every browser decodes
    body = b"".join(stream)
    feeder.join(10)
    with av.open(io.BytesIO(body), "r") as c:
        assert c.streams.video[0].codec_context.name == "h264"
        frames = list(c.decode(video=0))
    assert len(frames) >= 30 and frames[0].key_frame
    assert {(f.width, f.height, f.rotation) for f in frames} == {(320, 240, 0)}  # upright
