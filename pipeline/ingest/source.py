"""Stage 1: demux and decode one camera with PyAV, in its own thread.

* RTSP (TCP by default, UDP selectable) and files (optionally looping, optionally paced at real
  time so that a file behaves like a camera).
* Open and read timeouts; on any failure the container is closed, the packet ring's epoch ends,
  and the source reconnects with exponential backoff and jitter. A failed camera produces no
  frames at all, never a substitute image; its health says why.
* Every demuxed packet goes into the camera's ``PacketRing`` (evidence pre-roll). Decoding then
  follows the analyzers' needs: in KEYFRAMES mode only I-frames reach the decoder; in SAMPLED
  mode every frame is decoded but only frames at ``sample_fps`` are converted to arrays, which
  swscale does in one pass straight to the analysis width.
* Frame time: stream timestamps anchored once per epoch to the wall clock (live) or to a given
  start time (replay), so analyzers see a clock that advances exactly with the video.

PyAV releases the GIL while demuxing and decoding, so one thread per camera decodes in parallel.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import av.container
import av.error
import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.errors import SourceError, StreamOpenError, StreamStalledError
from pipeline.imaging import area_shrink
from pipeline.ingest.display import IDENTITY, Display, StreamDisplay
from pipeline.ingest.health import HealthTracker
from pipeline.ingest.hwdecode import HwDecode, choose
from pipeline.ingest.packet_ring import PacketRecord, PacketRing, StreamTemplate
from pipeline.ingest.queues import Watermark
from pipeline.ingest.still import StillDecoder, StillSettings
from pipeline.types import DecodeMode, Frame, HealthState

logger = logging.getLogger(__name__)

FrameSink = Callable[[Frame], bool]
# Called in the source thread for every decoded frame with its luma plane (a view that is only
# valid during the call), frame counter, epoch, stream time and frame time.
LumaHook = Callable[[NDArray[np.uint8], int, int, float, float], None]
_RANGE_JPEG = 2  # AVColorRange: full-range ("J") samples
_PLANAR_8BIT = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12", "gray"})
# Live streams whose timestamps drift this far from the wall clock are re-anchored.
_REANCHOR_S = 5.0
_BACKWARD_TOLERANCE_S = 0.2  # B-frames and packet jitter move a little back, not whole seconds


@dataclass(frozen=True, slots=True)
class SourceSettings:
    camera_id: str
    url: str  # resolved, may contain credentials: never log it
    redacted_url: str
    decode_mode: DecodeMode
    transport: str = "tcp"
    sample_fps: float = 2.0
    analysis_width: int = 1280
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    backoff_reset_after_s: float = 60.0
    loop: bool = False
    realtime: bool = True  # files: pace reading like a live camera
    start_time_s: float | None = None  # files not paced: frame time of the first packet
    decode_threads: int = 1
    # Skip the in-loop deblocking filter: the pictures drift slightly from the encoder's
    # until the next keyframe, which motion differencing does not notice (measured on the
    # 高空抛物 scenes: same recall, origin floors and false alarms) while decoding costs ~20 %
    # less.
    skip_deblocking: bool = False
    # The shown picture's width / height where the camera stores non-square samples without
    # signalling them (``CameraConfig.display_aspect``); None: as the stream signals.
    display_shape: Fraction | None = None
    # a hardware decoder's FFmpeg device type (``IngestConfig.hwaccel``) and device
    hwaccel: str | None = None
    hwaccel_device: str | None = None
    # KEYFRAMES mode: decode a still scene's keyframes sparsely (``pipeline.ingest.still``)
    still: StillSettings | None = None

    @property
    def is_network(self) -> bool:
        return self.url.lower().startswith(("rtsp://", "rtsps://"))


def backoff_delay(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniformly in [d/2, d], d = min(max, initial·2^attempt)."""
    d = min(max_s, initial_s * (2.0 ** min(attempt, 30)))
    return rng.uniform(d / 2, d)


def _describe(exc: BaseException) -> str:
    """An FFmpeg/OS error without its filename (which may hold credentials)."""
    if isinstance(exc, av.error.ExitError):
        return "timed out (no data within the open/read timeout)"
    if isinstance(exc, av.error.FFmpegError | OSError):
        return f"{type(exc).__name__}: {exc.strerror or 'error'} (errno {exc.errno})"
    return type(exc).__name__


def luma_plane(vf: av.VideoFrame, display: Display = IDENTITY) -> NDArray[np.uint8]:
    """The Y plane of a decoded frame as shown; for most streams without conversion (a view
    into the frame's buffer)."""
    if vf.format.name in _PLANAR_8BIT:
        return display.show(_plane(vf, 0))
    return display.show(np.asarray(vf.to_ndarray(format="gray"), np.uint8))


def _plane(vf: av.VideoFrame, i: int) -> NDArray[np.uint8]:
    plane = vf.planes[i]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return np.asarray(rows[:, : plane.width], np.uint8)


def to_bgr(
    vf: av.VideoFrame, width: int, height: int, display: Display = IDENTITY
) -> NDArray[np.uint8]:
    """The frame as BGR at ``width`` × ``height`` (``analysis_size``: a whole-number fraction),
    as shown (``display``: turned, in square pixels).

    A camera's 4:2:0 video-range frame is converted by OpenCV from its planes, each
    area-averaged to the target size first: 0.78 ms for 1080p → 960×540 where swscale takes
    1.74 ms on the benchmark street clip (2-core reference VM), and no further from the
    source picture than swscale's result (tests/unit/test_source_convert.py). A parking
    camera converts one keyframe per GOP, so this saves ~2 % of its cost. Other pixel
    formats, full range and odd sizes go through swscale.
    """
    if not display.identity:
        return display.upright(to_bgr(vf, *display.unturned(width, height)))
    full_range = getattr(vf, "color_range", 0) == _RANGE_JPEG
    even = width % 2 == height % 2 == vf.width % 2 == vf.height % 2 == 0
    if vf.format.name != "yuv420p" or full_range or not even:
        if (width, height) == (vf.width, vf.height):
            return np.asarray(vf.to_ndarray(format="bgr24"), np.uint8)
        return np.asarray(vf.to_ndarray(width=width, height=height, format="bgr24"), np.uint8)
    y, u, v = _plane(vf, 0), _plane(vf, 1), _plane(vf, 2)
    if (width, height) != (vf.width, vf.height):
        y = area_shrink(y, (width, height))
        u = area_shrink(u, (width // 2, height // 2))
        v = area_shrink(v, (width // 2, height // 2))
    i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(height * 3 // 2, width)
    return _u8(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420))


def _u8(a: object) -> NDArray[np.uint8]:
    return np.asarray(a, np.uint8)


def analysis_size(
    width: int, height: int, max_width: int, display: Display = IDENTITY
) -> tuple[int, int]:
    """Largest size ≤ ``max_width`` wide that is the native size divided by a whole number;
    the picture as shown (``display``).

    swscale is several times faster for whole-number ratios: 1920→960 costs ~6 ms per frame,
    1920→1280 ~11-20 ms, more than converting at full size (measured on this project's 2-core
    benchmark machine). So 1080p is analysed at 960×540, 1440p at 1280×720, D1 at native size.
    A picture that is resampled anyway (non-square pixels) takes exactly ``max_width``.
    """
    width, height = display.size(width, height)
    if max_width <= 0 or width <= max_width:
        return width, height
    if display.pixel_aspect != 1:
        return max_width // 2 * 2, max(2, round(height * max_width / width / 2) * 2)
    factor = math.ceil(width / max_width)
    return max(2, width // factor // 2 * 2), max(2, height // factor // 2 * 2)


class StreamSource:
    """Runs one camera until ``stop`` is set (or a non-looping file ends)."""

    def __init__(
        self,
        settings: SourceSettings,
        ring: PacketRing,
        sink: FrameSink,
        health: HealthTracker,
        stop: threading.Event,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        watermark: Watermark | None = None,
        on_luma: LumaHook | None = None,
        first_epoch: int = 0,
        timer_due: Callable[[], float] = lambda: math.inf,
    ) -> None:
        self.s = settings
        self._ring = ring
        self._sink = sink
        self._health = health
        self._stop = stop
        self._clock = clock
        self._rng = rng or random.Random()
        self._watermark = watermark
        self._on_luma = on_luma
        # still-scene decoding: the earliest frame time at which an analyzer's timer may decide
        # (an alert, an end) in a still scene (read from the analysis thread's last frame)
        self._timer_due = timer_due
        self._decoded = 0
        # epochs continue from the camera this source replaces: its clips and tracks stay apart
        self._epoch = first_epoch
        self._seq = 0
        self._hw = HwDecode()  # chosen when the thread starts: probing a device takes time
        self.still: StillDecoder[tuple[av.Packet[av.VideoStream], int]] | None = (
            StillDecoder(settings.still)
            if settings.still is not None and settings.decode_mode == DecodeMode.KEYFRAMES
            else None
        )
        self.finished = threading.Event()
        self.log = logging.LoggerAdapter(logger, {"camera_id": settings.camera_id})

    @property
    def epoch(self) -> int:
        return self._epoch

    def run(self) -> None:
        """Thread target: connect, read, reconnect with backoff; never raises (an error while
        reading ends the session, never the thread)."""
        attempt = 0
        try:
            self._choose_decoder()
            while not self._stop.is_set():
                self._health.set_state(HealthState.CONNECTING)
                opened_at = self._clock()
                try:
                    self._session()
                    if not self.s.is_network and not self.s.loop:
                        self._health.set_state(HealthState.OFFLINE, "end of file")
                        return
                    if self._stop.is_set():
                        return
                    raise StreamStalledError(self.s.camera_id, "stream ended")
                except SourceError as exc:
                    self._health.set_state(HealthState.OFFLINE, str(exc))
                    self.log.warning("%s (%s)", exc, self.s.redacted_url)
                except Exception as exc:
                    # A fault of our own (the motion stage, a frame conversion) on one picture:
                    # the camera starts a new session as after a lost stream, and says why,
                    # rather than the thread ending and the camera going silent for good.
                    self._health.set_state(HealthState.OFFLINE, f"{type(exc).__name__}: {exc}")
                    self.log.exception("fault while reading %s", self.s.redacted_url)
                finally:
                    self._ring.end_epoch()
                if self._clock() - opened_at >= self.s.backoff_reset_after_s:
                    attempt = 0
                delay = backoff_delay(
                    attempt, self.s.backoff_initial_s, self.s.backoff_max_s, self._rng
                )
                attempt += 1
                self.log.info("reconnecting in %.1f s", delay)
                self._stop.wait(delay)
        finally:
            if self._stop.is_set():
                self._health.set_state(HealthState.DISABLED)
            self.finished.set()

    def _choose_decoder(self) -> None:
        self._hw = choose(self.s.hwaccel, self.s.hwaccel_device)
        self._health.set_decoder(self._hw.describe())
        if self._hw.refused is not None:
            self.log.warning("decoding on the CPU: %s", self._hw.refused)

    def _open(self) -> av.container.InputContainer:
        options = {}
        if self.s.is_network:
            options = {"rtsp_transport": self.s.transport, "allowed_media_types": "video"}

        def attempt() -> av.container.InputContainer:
            return av.open(
                self.s.url,
                options=options,
                timeout=(self.s.open_timeout_s, self.s.read_timeout_s),
                hwaccel=self._hw.accel(),
            )

        try:
            return attempt()
        except (av.error.FFmpegError, OSError) as exc:
            failed = exc
        if self._hw.device_type is not None:
            # The device passed its probe but this stream would not open on it (the GPU's
            # decoder sessions or memory used up): the camera decodes on the CPU from now on
            # rather than failing for its accelerator. Opened plainly, a camera that cannot be
            # reached fails as usual.
            hw = self._hw
            self._hw = HwDecode(None, hw.device, f"{hw.device_type}: {_describe(failed)}")
            try:
                container = attempt()
            except (av.error.FFmpegError, OSError) as exc:
                self._hw = hw  # not the device's fault: try it again at the next connection
                failed = exc
            else:
                self.log.warning("decoding on the CPU: %s", self._hw.refused)
                return container
        raise StreamOpenError(
            self.s.camera_id, f"cannot open {self.s.redacted_url}: {_describe(failed)}"
        ) from None

    def _session(self) -> None:
        container = self._open()
        try:
            if not container.streams.video:
                raise StreamOpenError(self.s.camera_id, f"{self.s.redacted_url} has no video")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            decoder = self._hw.describe(bool(ctx.is_hwaccel))
            self._health.set_decoder(decoder)
            ctx.thread_count = self.s.decode_threads
            if self.s.decode_mode == DecodeMode.KEYFRAMES:
                ctx.skip_frame = "NONKEY"
            if self.s.skip_deblocking:
                ctx.options = {**ctx.options, "skip_loop_filter": "all"}
            self._epoch += 1
            if self.still is not None:
                self.still.reset()
            template = StreamTemplate(stream)
            self._ring.start_epoch(self._epoch, template)
            self._health.connected(self._epoch)
            self.log.info(
                "connected (epoch %d, %s %dx%d, decode %s on %s)",
                self._epoch, ctx.name, ctx.width, ctx.height, self.s.decode_mode.value, decoder,
            )  # fmt: skip
            self._read(container, stream, template)
        except (av.error.FFmpegError, OSError) as exc:
            raise StreamStalledError(self.s.camera_id, f"read failed: {_describe(exc)}") from None
        finally:
            container.close()

    def _read(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        template: StreamTemplate,
    ) -> None:
        tb: Fraction = stream.time_base or Fraction(1, 90000)
        clock = _EpochClock(self, tb)
        period = 1.0 / self.s.sample_fps
        next_sample = float("-inf")
        ts = 0

        shown = StreamDisplay(stream, self.s.display_shape)

        def deliver(
            frames: list[av.VideoFrame], at_ts: int | None = None, recovered: bool = False
        ) -> None:
            nonlocal next_sample
            for vf in frames:
                display = template.display = shown(vf)
                self._health.decoded()
                f_pts, f_time = clock.times(
                    clock.frame_ts(vf.pts, ts if at_ts is None else at_ts), frame=True
                )
                if self._on_luma is not None:
                    self._decoded += 1
                    self._on_luma(
                        luma_plane(vf, display), self._decoded, self._epoch, f_pts, f_time
                    )
                if self.s.decode_mode == DecodeMode.SAMPLED:
                    if f_pts < next_sample:
                        continue
                    next_sample = f_pts + period * 0.98
                self._emit(vf, f_pts, f_time, display, recovered)

        while True:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                if packet.size == 0:
                    continue  # flush packet at end of stream; carries no data
                ts = clock.packet_ts(packet.pts, packet.dts, packet.duration)
                _, time_s = clock.times(ts)
                if clock.pace:
                    self._stop.wait(max(0.0, time_s - self._clock()))
                if self._watermark is not None:
                    self._watermark.wait(time_s, self._stop)
                self._ring.append(
                    PacketRecord(
                        data=bytes(packet),
                        pts=None if packet.pts is None else packet.pts + clock.offset,
                        dts=None if packet.dts is None else packet.dts + clock.offset,
                        is_keyframe=packet.is_keyframe,
                        time_s=time_s,
                        epoch=self._epoch,
                    )
                )
                self._health.packet(packet.is_keyframe, time_s)
                if self.s.decode_mode == DecodeMode.KEYFRAMES and not packet.is_keyframe:
                    continue
                if self.still is not None and not self.still.wants(time_s, self._timer_due()):
                    self.still.hold((packet, ts))
                    continue
                try:
                    frames = self._decode_key(stream, packet)
                    if self.still is not None:
                        frames = self._with_skipped(stream, frames, shown, deliver)
                except av.error.InvalidDataError:
                    continue  # a corrupt packet; the next keyframe recovers
                deliver(frames)
            if self._stop.is_set():
                return
            # The stream ended: a decoder that reorders (B-frames) still holds its last
            # pictures, which a file's end (or its loop) would otherwise drop.
            with contextlib.suppress(av.error.InvalidDataError):
                deliver(self._drain(stream))
            if self.s.is_network or not self.s.loop:
                return
            clock.wrap()
            if self.still is not None:
                self.still.reset()  # skipped packets of the loop before carry its timestamps
            container.seek(0)
            stream.codec_context.flush_buffers()

    def _decode_key(
        self, stream: av.VideoStream, packet: av.Packet[av.VideoStream]
    ) -> list[av.VideoFrame]:
        frames = stream.decode(packet)
        if self.s.decode_mode == DecodeMode.KEYFRAMES:
            frames += self._drain(stream)
        return frames

    def _with_skipped(
        self,
        stream: av.VideoStream,
        frames: list[av.VideoFrame],
        shown: StreamDisplay,
        deliver: Callable[[list[av.VideoFrame], int | None, bool], None],
    ) -> list[av.VideoFrame]:
        """A still scene's decoded keyframe: when it changed, the first keyframe skipped before
        it that shows the change is delivered first (the analyzers see when it began)."""
        assert self.still is not None
        changed = [self.still.changed(luma_plane(vf, shown(vf))) for vf in frames]  # each one
        if not any(changed):
            return frames
        for packet, at_ts in self.still.take_held():
            with contextlib.suppress(av.error.InvalidDataError):
                began = [
                    vf
                    for vf in self._decode_key(stream, packet)
                    if self.still.began_here(luma_plane(vf, shown(vf)))
                ]
                if began:
                    deliver(began, at_ts, True)
                    break
        return frames

    @staticmethod
    def _drain(stream: av.VideoStream) -> list[av.VideoFrame]:
        """The keyframe just fed, now: a decoder that reorders (B-frames, as many H.265
        cameras and recorders send) holds each picture back until later ones arrive, and fed
        keyframes alone it handed each one out two GOPs late (H.264 with 3 B-frames) or out
        of order (x265's default GOP). A keyframe needs no other picture: drain, reset."""
        frames = stream.decode(None)
        stream.codec_context.flush_buffers()
        return frames

    def _emit(
        self,
        vf: av.VideoFrame,
        pts_s: float,
        time_s: float,
        display: Display,
        recovered: bool = False,
    ) -> None:
        size = analysis_size(vf.width, vf.height, self.s.analysis_width, display)
        image = to_bgr(vf, *size, display)
        image.flags.writeable = False
        self._seq += 1
        frame = Frame(
            camera_id=self.s.camera_id,
            seq=self._seq,
            epoch=self._epoch,
            pts_s=pts_s,
            time_s=time_s,
            image=image,
            native_size=display.size(vf.width, vf.height),
            is_keyframe=bool(vf.key_frame),
            recovered=recovered,
        )
        self._health.frame_out(time_s)
        if self._watermark is not None:
            self._watermark.emitted()
        if not self._sink(frame) and self._watermark is not None:
            self._watermark.processed(time_s)  # not accepted: it will never be analysed


class _EpochClock:
    """Maps one epoch's packet timestamps to stream seconds and frame time."""

    def __init__(self, source: StreamSource, tb: Fraction) -> None:
        self._src = source
        self._tb = tb
        self.offset = 0  # added to raw timestamps after a file loops (keeps them monotonic)
        self._ts0: int | None = None
        self._last_ts = 0
        self._last_dur = 0
        self._anchor: float | None = None
        self._last_time = float("-inf")
        s = source.s
        self.pace = not s.is_network and s.realtime
        self._live = s.is_network or s.realtime

    def packet_ts(self, pts: int | None, dts: int | None, duration: int | None) -> int:
        raw = pts if pts is not None else dts
        ts = self._last_ts + self._last_dur if raw is None else raw + self.offset
        if self._ts0 is None:
            self._ts0 = ts
        self._last_ts = max(self._last_ts, ts)
        self._last_dur = duration or self._last_dur
        return ts

    def frame_ts(self, pts: int | None, fallback: int) -> int:
        return fallback if pts is None else pts + self.offset

    def times(self, ts: int, frame: bool = False) -> tuple[float, float]:
        """(stream seconds, frame time) of a timestamp; ``frame``: a decoded frame's (packets
        arrive in decode order, so only frames are held to non-decreasing time)."""
        pts_s = float((ts - (self._ts0 or 0)) * self._tb)
        now = self._src._clock()
        if self._anchor is None:
            start = self._src.s.start_time_s
            self._anchor = (now if self._live or start is None else start) - pts_s
        time_s = self._anchor + pts_s
        # A live stream's timeline may jump: far from the wall clock (camera clock reset), or
        # back in time (a shared RTSP media re-timestamps its stream when another client joins;
        # seen with gst-rtsp-server). Frame time must never go backwards within an epoch: the
        # trackers and dwell timers downstream rely on it.
        live = self._src.s.is_network
        if live and abs(time_s - now) > _REANCHOR_S:
            self._anchor = now - pts_s
            time_s = now
        elif live and frame and time_s < self._last_time - _BACKWARD_TOLERANCE_S:
            # continue one frame after the last frame time, spacing as the stream says
            step = float(self._last_dur * self._tb) or 0.04
            self._anchor = self._last_time + step - pts_s
            time_s = self._last_time + step
        if live and frame:
            time_s = max(time_s, self._last_time)
            self._last_time = time_s
        return pts_s, time_s

    def wrap(self) -> None:
        """The file starts again: its first timestamp maps to just after the last one seen."""
        self.offset = self._last_ts + max(self._last_dur, 1) - (self._ts0 or 0)
