"""Live view: a camera's own H.264 packets, remuxed to fragmented MP4 for the browser's Media
Source Extensions (``video/mp4; codecs="avc1.…"``).

One remux per camera however many people watch (``LiveHub``): a thread takes the packets from
the camera's ring as they arrive (``PacketRing.tap``), muxes them with PyAV into fragments of at
most ``FRAGMENT_S`` (the first at a keyframe), and hands every viewer the initialisation segment
then each fragment. A viewer that falls behind loses fragments (its queue is bounded) and is
dropped rather than slowing anyone down; the remux stops when the last viewer leaves. Nothing
is decoded or encoded: a viewer costs a copy of the camera's bitrate.

A camera in a codec browsers do not play through MSE everywhere (H.265, which most cameras
sold in China now send) is decoded and encoded once more as H.264 for its viewers instead
(``_H264Copy``: upright, at most ``LIVE_COPY_MAX_WIDTH`` wide, one keyframe a second): a
decode and a small encode per watched camera, not per viewer, and only while watched.
"""

from __future__ import annotations

import io
import logging
import queue
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import av
import av.container
import av.error
from av.video.codeccontext import VideoCodecContext

from pipeline import threads
from pipeline.ingest.packet_ring import (
    LiveTap,
    PacketRecord,
    PacketRing,
    StreamTemplate,
    start_of,
)

logger = logging.getLogger(__name__)

FRAGMENT_S = 0.5  # fragment length: the latency a viewer adds to the camera's own
_VIEWER_QUEUE = 64  # fragments a viewer may fall behind before it is dropped
# What browsers' <video> and MSE play everywhere; other codecs get an H.264 copy.
BROWSER_CODECS = frozenset({"h264"})
LIVE_COPY_MAX_WIDTH = 960


def split_boxes(buf: bytearray) -> list[bytes]:
    """Complete top-level MP4 boxes at the start of ``buf`` (removed from it)."""
    out = []
    while len(buf) >= 8:
        (size,) = struct.unpack(">I", bytes(buf[:4]))
        if size == 1:
            if len(buf) < 16:
                break
            size = struct.unpack(">Q", bytes(buf[8:16]))[0]
        if size < 8 or len(buf) < size:
            break
        out.append(bytes(buf[:size]))
        del buf[:size]
    return out


def codec_string(extra: bytes) -> str:
    """The MSE codec string (``avc1.PPCCLL``) from an H.264 stream's SPS (its extradata)."""
    if extra[:1] == b"\x01" and len(extra) >= 4:  # avcC: profile, compatibility, level
        return f"avc1.{extra[1]:02x}{extra[2]:02x}{extra[3]:02x}"
    for start in (b"\x00\x00\x00\x01", b"\x00\x00\x01"):  # Annex B: the SPS NAL (type 7)
        i = extra.find(start)
        while i >= 0:
            j = i + len(start)
            if j + 3 < len(extra) and extra[j] & 0x1F == 7:
                return f"avc1.{extra[j + 1]:02x}{extra[j + 2]:02x}{extra[j + 3]:02x}"
            i = extra.find(start, j)
    return "avc1.640028"  # High profile, level 4: what 1080p cameras send


class _Sink(io.RawIOBase):
    """What the muxer writes, cut into boxes: ftyp+moov (init), then moof+mdat pairs."""

    def __init__(self, on_init: Callable[[bytes], None], on_fragment: Callable[[bytes], None]):
        self._buf = bytearray()
        self._init = bytearray()
        self._moof: bytes | None = None
        self._on_init = on_init
        self._on_fragment = on_fragment
        self._pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(b)
        self._pos += len(data)
        self._buf += data
        for box in split_boxes(self._buf):
            kind = box[4:8]
            if kind in (b"ftyp", b"moov"):
                self._init += box
                if kind == b"moov":
                    self._on_init(bytes(self._init))
            elif kind == b"moof":
                self._moof = box
            elif kind == b"mdat" and self._moof is not None:
                self._on_fragment(self._moof + box)
                self._moof = None
        return len(data)


class _H264Copy:
    """A camera's pictures encoded as H.264 for browsers (see the module docstring)."""

    def __init__(self, template: StreamTemplate, out: av.container.OutputContainer) -> None:
        self.out = out
        self.template = template
        self.time_base = template.time_base
        ctx = template.stream.codec_context
        self.decoder = cast(VideoCodecContext, av.CodecContext.create(template.codec_name, "r"))
        self.decoder.extradata = ctx.extradata
        self.decoder.thread_count = 1  # the cameras are the parallelism
        self.stream: av.VideoStream | None = None

    def mux(self, rec: PacketRecord, base: int) -> None:
        pkt = av.Packet(rec.data)
        pkt.pts = None if rec.pts is None else rec.pts - base
        pkt.dts = None if rec.dts is None else rec.dts - base
        pkt.time_base = self.time_base
        try:
            frames = self.decoder.decode(pkt)
        except av.error.InvalidDataError:
            return  # a damaged packet: the next keyframe recovers
        for frame in frames:
            if frame.pts is None:
                continue
            display = self.template.display  # this decoder is not told the display matrix
            size = display.fit(frame.width, frame.height, LIVE_COPY_MAX_WIDTH)
            if self.stream is None:
                self.stream = self.out.add_stream("libx264", rate=25)
                self.stream.width, self.stream.height = size
                self.stream.pix_fmt = "yuv420p"
                self.stream.time_base = self.time_base
                self.stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "28",
                                       "g": "25", "keyint_min": "25", "threads": "1"}  # fmt: skip
            pic = display.picture(frame, size)
            pic.pts, pic.time_base = frame.pts, self.time_base
            self.out.mux(self.stream.encode(pic))

    @property
    def codec(self) -> str:
        extra = b"" if self.stream is None else self.stream.codec_context.extradata or b""
        return codec_string(extra)


@dataclass
class Viewer:
    fragments: queue.Queue[bytes | None] = field(
        default_factory=lambda: queue.Queue(maxsize=_VIEWER_QUEUE)
    )
    dropped: bool = False


class _CameraLive:
    """The one remux of one camera (see module docstring)."""

    def __init__(self, camera_id: str, tap: LiveTap, on_idle: Callable[[], None]) -> None:
        assert tap.template is not None
        self.camera_id = camera_id
        self.tap = tap
        self.codec = codec_string(tap.template.stream.codec_context.extradata or b"")
        self.copy: _H264Copy | None = None
        self.init: bytes | None = None
        self.viewers: list[Viewer] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._on_idle = on_idle
        self._thread = threads.start(f"gridsight-live-{camera_id}", self._run)

    def _set_init(self, data: bytes) -> None:
        if self.copy is not None:
            self.codec = self.copy.codec
        self.init = data
        self._ready.set()

    def _fragment(self, data: bytes) -> None:
        with self._lock:
            for v in self.viewers:
                try:
                    v.fragments.put_nowait(data)
                except queue.Full:
                    v.dropped = True  # too slow: it starts again rather than lag for ever
            self.viewers = [v for v in self.viewers if not v.dropped]

    def add(self, timeout_s: float = 10.0) -> Viewer | None:
        if not self._ready.wait(timeout_s):
            return None
        v = Viewer()
        with self._lock:
            self.viewers.append(v)
        return v

    def remove(self, v: Viewer) -> bool:
        """Returns whether no viewer is left."""
        with self._lock:
            self.viewers = [x for x in self.viewers if x is not v]
            return not self.viewers

    def _run(self) -> None:
        template = self.tap.template
        assert template is not None
        sink = _Sink(self._set_init, self._fragment)
        opts = {"movflags": "frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(int(FRAGMENT_S * 1e6))}  # fmt: skip
        base: int | None = None
        try:
            with av.open(sink, "w", format="mp4", options=opts) as out:
                if template.codec_name in BROWSER_CODECS:
                    stream = out.add_stream_from_template(template.stream, opaque=True)
                    stream.time_base = template.time_base
                else:
                    self.copy = _H264Copy(template, out)
                while not self.tap.closed:
                    for rec in self.tap.take(1.0):
                        if base is None:
                            if not rec.is_keyframe:
                                continue  # a fragmented stream must open on a keyframe
                            base = start_of(rec)
                        if self.copy is not None:
                            self.copy.mux(rec, base)
                        else:
                            out.mux(template.packet(rec, base, stream))
                    if self.tap.lost:
                        break  # the remux fell behind the camera: viewers reconnect
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            logger.warning("camera %s: live view stopped: %s", self.camera_id, exc)
        finally:
            with self._lock:
                for v in self.viewers:
                    try:
                        v.fragments.put_nowait(None)
                    except queue.Full:
                        v.dropped = True
                self.viewers = []
            self._on_idle()


class LiveHub:
    """Live views of a process's cameras, one remux per watched camera."""

    def __init__(self, ring_of: Callable[[str], PacketRing | None]) -> None:
        self._ring_of = ring_of
        self._lock = threading.Lock()
        self._live: dict[str, _CameraLive] = {}

    def watching(self) -> dict[str, int]:
        with self._lock:
            return {cid: len(c.viewers) for cid, c in self._live.items()}

    def open(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None:
        """(codec string, the bytes of an fMP4 stream) for one viewer; None: no stream."""
        with self._lock:
            live = self._live.get(camera_id)
            if live is None or live.tap.closed:
                ring = self._ring_of(camera_id)
                tap = ring.tap() if ring is not None else None
                if tap is None or ring is None:
                    return None
                live = _CameraLive(camera_id, tap, lambda: self._gone(camera_id, ring, tap))
                self._live[camera_id] = live
        viewer = live.add()
        if viewer is None or live.init is None:
            return None
        return live.codec, self._stream(live, viewer)

    def _gone(self, camera_id: str, ring: PacketRing, tap: LiveTap) -> None:
        ring.untap(tap)
        with self._lock:
            if (live := self._live.get(camera_id)) is not None and live.tap is tap:
                del self._live[camera_id]

    def _stream(self, live: _CameraLive, viewer: Viewer) -> Iterator[bytes]:
        try:
            assert live.init is not None
            yield live.init
            while (data := viewer.fragments.get(timeout=30.0)) is not None:
                yield data
        except queue.Empty:
            return  # the camera sent nothing for 30 s
        finally:
            if live.remove(viewer):
                live.tap.close()  # the last viewer left: the remux ends
