"""Compressed-packet ring per camera: the pre-roll store for evidence clips.

Every demuxed packet is kept as immutable bytes for a few tens of seconds (a 4 Mbit/s camera
costs ~0.5 MB per second, against ~6 MB for one decoded 1080p frame). A clip is collected by
registering a ``ClipCollector``: it takes the packets already in the ring from the last keyframe
at or before its start, then receives new packets as they are appended until its end time has
passed. Collection is event-driven, so it works at any speed: live at real time, or a replay that
demuxes many times faster than real time.

Packets of one epoch share one ``StreamTemplate`` (the codec parameters needed to remux them).
A clip never spans two epochs: a reconnect ends the collection early and marks it truncated.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import av.container
import av.stream

from pipeline.ingest.display import IDENTITY, Display


@dataclass(frozen=True, slots=True)
class PacketRecord:
    """One compressed packet; ``pts``/``dts`` are in the epoch template's time base."""

    data: bytes
    pts: int | None
    dts: int | None
    is_keyframe: bool
    time_s: float  # frame time (UTC epoch seconds), same clock as Frame.time_s
    epoch: int


def start_of(rec: PacketRecord) -> int:
    """The time stamp a remux starting at ``rec`` counts from (its 0)."""
    return rec.dts if rec.dts is not None else (rec.pts or 0)


class StreamTemplate:
    """Codec parameters of one epoch's video stream, detached from the live container.

    The input container is closed on reconnect, so its stream object cannot serve as a remux
    template later. We copy the parameters into a never-written in-memory container instead.
    """

    def __init__(self, stream: av.VideoStream) -> None:
        self._holder: av.container.OutputContainer = av.open(io.BytesIO(), "w", format="matroska")
        self.stream: av.VideoStream = self._holder.add_stream_from_template(stream, opaque=True)
        tb = stream.time_base
        self.time_base: Fraction = tb if tb is not None else Fraction(1, 90000)
        self.codec_name: str = stream.codec_context.name
        self.width: int = stream.codec_context.width
        self.height: int = stream.codec_context.height
        # How its pictures are shown, as the camera's decoder reports it with each picture
        # (PyAV reads a stream's display matrix only from decoded frames).
        self.display: Display = IDENTITY

    def packet(self, rec: PacketRecord, base: int, stream: av.stream.Stream) -> av.Packet[Any]:
        """``rec`` as a packet of the output ``stream`` (a copy of this template), its time
        stamps counted from ``base`` (see ``start_of``)."""
        pkt = av.Packet(rec.data)
        pkt.pts = None if rec.pts is None else rec.pts - base
        pkt.dts = None if rec.dts is None else rec.dts - base
        pkt.time_base = self.time_base
        pkt.is_keyframe = rec.is_keyframe
        pkt.stream = stream
        return pkt


@dataclass
class ClipCollector:
    """Packets for one clip; filled by the ring, read by the evidence writer once ``done``."""

    start_s: float
    end_s: float
    epoch: int = -1
    template: StreamTemplate | None = None
    packets: list[PacketRecord] = field(default_factory=list)
    truncated: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def _offer(self, rec: PacketRecord) -> None:
        if rec.epoch != self.epoch:
            self._finish(truncated=True)
        elif rec.time_s > self.end_s:
            self._finish(truncated=False)
        else:
            self.packets.append(rec)

    def _finish(self, *, truncated: bool) -> None:
        if not self.done.is_set():
            self.truncated = self.truncated or truncated
            self.done.set()


class LiveTap:
    """New packets of one camera as they arrive (live view), from its latest keyframe on.

    Bounded: a reader that falls ``max_packets`` behind loses the oldest and must start again
    at a keyframe (``lost`` says so); the source never waits for a viewer."""

    def __init__(self, max_packets: int = 500) -> None:
        self._packets: deque[PacketRecord] = deque()
        self._max = max_packets
        self._cond = threading.Condition()
        self.template: StreamTemplate | None = None
        self.lost = False
        self.closed = False

    def _offer(self, rec: PacketRecord) -> None:
        with self._cond:
            if len(self._packets) >= self._max:
                self._packets.clear()
                self.lost = True
            self._packets.append(rec)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def take(self, timeout_s: float) -> list[PacketRecord]:
        """What arrived since the last call (waits up to ``timeout_s`` for something)."""
        with self._cond:
            if not self._packets and not self.closed:
                self._cond.wait(timeout_s)
            out = list(self._packets)
            self._packets.clear()
            return out


class PacketRing:
    """Time-bounded packet history of one camera; thread-safe (source appends, writer reads)."""

    def __init__(self, camera_id: str, max_age_s: float) -> None:
        self.camera_id = camera_id
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._packets: deque[PacketRecord] = deque()
        self._templates: dict[int, StreamTemplate] = {}
        self._epoch = -1
        self._collectors: list[ClipCollector] = []
        self._taps: list[LiveTap] = []
        self._bytes = 0

    def start_epoch(self, epoch: int, template: StreamTemplate) -> None:
        with self._lock:
            self._epoch = epoch
            self._templates[epoch] = template
            for c in self._collectors:
                c._finish(truncated=True)
            self._collectors = []
            for t in self._taps:
                t.close()
            self._taps = []

    def end_epoch(self) -> None:
        """The stream stopped (error or end of file): open collections finish, truncated."""
        with self._lock:
            for c in self._collectors:
                c._finish(truncated=True)
            self._collectors = []
            for t in self._taps:
                t.close()
            self._taps = []

    def append(self, rec: PacketRecord) -> None:
        with self._lock:
            self._packets.append(rec)
            self._bytes += len(rec.data)
            horizon = rec.time_s - self.max_age_s
            while self._packets and self._packets[0].time_s < horizon:
                old = self._packets.popleft()
                self._bytes -= len(old.data)
            if self._packets[0].epoch != rec.epoch:
                self._templates = {
                    e: t for e, t in self._templates.items() if e >= self._packets[0].epoch
                }
            if self._collectors:
                for c in self._collectors:
                    c._offer(rec)
                self._collectors = [c for c in self._collectors if not c.done.is_set()]
            for tap in self._taps:
                if rec.epoch == self._epoch:
                    tap._offer(rec)

    def tap(self, max_packets: int = 500) -> LiveTap | None:
        """Follow this camera live, from the latest keyframe held (None: no stream yet). A
        reconnect closes the tap: the new epoch may have other codec parameters."""
        with self._lock:
            template = self._templates.get(self._epoch)
            if template is None:
                return None
            t = LiveTap(max_packets)
            t.template = template
            current = [p for p in self._packets if p.epoch == self._epoch]
            keys = [i for i, p in enumerate(current) if p.is_keyframe]
            for rec in current[keys[-1] :] if keys else []:
                t._offer(rec)
            self._taps.append(t)
            return t

    def untap(self, tap: LiveTap) -> None:
        with self._lock:
            self._taps = [t for t in self._taps if t is not tap]
        tap.close()

    def collect(self, start_s: float, end_s: float) -> ClipCollector:
        """Register a clip of ``[start_s, end_s]`` (widened back to a keyframe) and return it."""
        with self._lock:
            col = ClipCollector(start_s=start_s, end_s=end_s, epoch=self._epoch)
            col.template = self._templates.get(self._epoch)
            current = [p for p in self._packets if p.epoch == self._epoch]
            keys = [i for i, p in enumerate(current) if p.is_keyframe and p.time_s <= start_s]
            if keys:
                first = keys[-1]
            else:  # pre-roll reaches before what we hold: start at the oldest keyframe we have
                later = [i for i, p in enumerate(current) if p.is_keyframe]
                first = later[0] if later else len(current)
                col.truncated = bool(current) and current[0].time_s > start_s
            for rec in current[first:]:
                col._offer(rec)
            if col.template is None:
                col._finish(truncated=True)
            if not col.done.is_set():
                self._collectors.append(col)
            return col

    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def span_s(self) -> float:
        with self._lock:
            if not self._packets:
                return 0.0
            return self._packets[-1].time_s - self._packets[0].time_s
