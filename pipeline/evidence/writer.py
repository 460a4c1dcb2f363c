"""Stage 6: evidence files, event reports and the event index, in writer threads.

For each event: annotated snapshots (zone and vehicle box drawn), the clip remuxed from the
camera's packet ring without re-encoding (starting on a keyframe, covering pre- and post-roll),
a JSON report listing every file with its SHA-256, and a row in the SQLite index. Every file is
written to a temporary name, fsynced and renamed, and indexed only afterwards.

The queue into the writer blocks and never drops: an event is never lost because the disk was
slow. If it is full, the producer waits and the wait is logged.

``WriterPool``: several writers, each camera's notices always to the same one (its events, and
the cases they open, stay in order). An event costs ~100 ms of JPEG encoding, fsyncs and
SQLite commits, most of it outside the GIL; one writer alone let a burst of events (many cars
reaching their dwell in the same minute) queue for seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.codes import classify
from pipeline.config import CameraConfig, EvidenceConfig, SiteConfig
from pipeline.evidence.report import EvidenceItem, ModelIdentity, build_report
from pipeline.evidence.schema import report_errors
from pipeline.evidence.storage import EvidenceStorage, settle_file, temp_beside
from pipeline.ingest.display import StreamDisplay
from pipeline.ingest.live import BROWSER_CODECS
from pipeline.ingest.packet_ring import ClipCollector, PacketRing, StreamTemplate, start_of
from pipeline.rules.base import Composite, Snapshot, annotate_snapshot
from pipeline.rules.registry import kind_of_details
from pipeline.store.repository import EventRow, EventStore
from pipeline.types import (
    CameraStatusDetails,
    Event,
    EventNotice,
    EventState,
)

logger = logging.getLogger(__name__)

_STOP = object()
# How long a finished clip may wait behind newer events' notices (see ``EvidenceWriter.run``).
_CLIP_MAX_WAIT_S = 20.0


# Clips in other codecs than the web UI's <video> plays everywhere (BROWSER_CODECS) also get
# an H.264 preview.
PREVIEW = "clip_preview"
_PREVIEW_MAX_WIDTH = 1280


def h264_preview(src: Path, dst: Path) -> tuple[int, int] | None:
    """``src`` re-encoded as H.264 (at most 1280 wide, each picture at its own time, shown
    upright in square pixels), written to ``dst``; its size, or None when ``src`` has no
    picture to decode."""
    tmp = temp_beside(dst)
    size: tuple[int, int] | None = None
    try:
        with (
            av.open(str(src)) as inp,
            av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out,
        ):
            vs = inp.streams.video[0]
            vs.codec_context.thread_count = 1  # the cameras are the parallelism
            ov = out.add_stream("libx264", rate=vs.average_rate or 25)
            ov.time_base = vs.time_base
            ov.options = {"preset": "veryfast", "crf": "26", "threads": "1"}
            # set again from the first picture; these only let an empty input close cleanly
            ov.width, ov.height, ov.pix_fmt = 16, 16, "yuv420p"
            shown = StreamDisplay(vs)
            for frame in inp.decode(vs):
                if frame.pts is None:
                    continue
                display = shown(frame)
                if size is None:
                    size = display.fit(frame.width, frame.height, _PREVIEW_MAX_WIDTH)
                    ov.width, ov.height, ov.pix_fmt = *size, "yuv420p"
                pic = display.picture(frame, size)
                pic.pts, pic.time_base = frame.pts, vs.time_base
                out.mux(ov.encode(pic))
            if size is not None:
                out.mux(ov.encode(None))
        if size is None:
            return None
        settle_file(tmp, dst)
        return size
    finally:
        tmp.unlink(missing_ok=True)


def remux_clip(collector: ClipCollector, path: Path) -> EvidenceItem | None:
    """Write the collected packets as MP4 (stream copy, moov first for browser seeking). Size
    and hash are left empty: the storage backend measures them when it takes the file."""
    template: StreamTemplate | None = collector.template
    packets = collector.packets
    if template is None or not packets:
        return None
    tmp = temp_beside(path)
    base = start_of(packets[0])
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream_from_template(template.stream, opaque=True)
        stream.time_base = template.time_base
        if template.display.pixel_aspect != 1:
            # said in the container too, so that players (and our own preview, composite and
            # packages) show a camera's non-square samples as the analyzers saw them, also
            # where the camera itself never signalled them (``display_aspect``)
            stream.sample_aspect_ratio = template.display.pixel_aspect
        for rec in packets:
            out.mux(template.packet(rec, base, stream))
    settle_file(tmp, path)
    return EvidenceItem(
        evidence_id="",
        name="clip",
        kind="video_clip",
        role="original",
        relpath="",
        media_type="video/mp4",
        size_bytes=0,
        sha256="",
        start_time_s=packets[0].time_s,
        end_time_s=packets[-1].time_s,
        truncated=collector.truncated,
        codec=template.codec_name,
        width=template.width,
        height=template.height,
    )


def _wants_clip(event: Event) -> bool:
    return not isinstance(event.details, CameraStatusDetails)


@dataclass
class _Open:
    """The writer's view of one event while it may still change."""

    event: Event
    camera: CameraConfig
    dirrel: str
    evidence: dict[str, EvidenceItem] = field(default_factory=dict)
    clip: ClipCollector | None = None
    clip_ready: float | None = None  # monotonic time its packets were first seen complete


@dataclass(frozen=True, slots=True)
class WriterStats:
    events_stored: int
    write_errors: int
    pending_clips: int
    queue_depth: int
    latencies_s: tuple[float, ...]

    @classmethod
    def total(cls, parts: Sequence[WriterStats]) -> WriterStats:
        """Several writers' figures as one (a pool; the worker processes of a site)."""
        return cls(
            events_stored=sum(p.events_stored for p in parts),
            write_errors=sum(p.write_errors for p in parts),
            pending_clips=sum(p.pending_clips for p in parts),
            queue_depth=sum(p.queue_depth for p in parts),
            latencies_s=tuple(x for p in parts for x in p.latencies_s),
        )


class EvidenceWriter:
    def __init__(
        self,
        storage: EvidenceStorage,
        store: EventStore,
        site: SiteConfig,
        cameras: dict[str, CameraConfig],
        rings: Callable[[str], PacketRing | None],
        model: ModelIdentity | None,
        cfg: EvidenceConfig,
        *,
        clock: Callable[[], float],
        on_stored: Callable[[EventRow], None] | None = None,
        queue_size: int = 256,
        camera_models: Mapping[str, ModelIdentity] | None = None,
    ) -> None:
        """``model``: the detector reports name; ``camera_models``: cameras with their own."""
        self.storage = storage
        self._store = store
        self._site = site
        self._tz = ZoneInfo(site.timezone)
        self._cameras = cameras
        self._rings = rings
        self._model = model
        self._camera_models = camera_models or {}
        self._cfg = cfg
        self._clock = clock
        self._on_stored = on_stored
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._open: dict[str, _Open] = {}
        self._stored = 0
        self._errors = 0
        self._latencies: list[float] = []
        self._early_clips: dict[str, ClipCollector] = {}
        self._lock = threading.Lock()
        self.idle = threading.Event()

    # -- producer side ---------------------------------------------------------------------

    def submit(self, notice: EventNotice) -> None:
        """Queue a notice; blocks (never drops) while the writer is behind.

        A clip's packet collection is registered here, in the caller's thread, at the moment
        the event is raised: waiting for the writer could let the pre-roll leave the ring.
        """
        ev = notice.event
        ring = self._rings(ev.camera_id)
        if ev.state == EventState.STARTED and ring is not None and _wants_clip(ev):
            collector = ring.collect(
                ev.alerted_at - self._cfg.pre_roll_s, ev.alerted_at + self._cfg.post_roll_s
            )
            with self._lock:
                self._early_clips[ev.event_id] = collector
        try:
            self._queue.put(notice, timeout=5.0)
        except queue.Full:
            logger.error("evidence queue full (%d): waiting for the disk", self._queue.qsize())
            self._queue.put(notice)

    def stop(self) -> None:
        self._queue.put(_STOP)

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                events_stored=self._stored,
                write_errors=self._errors,
                pending_clips=sum(1 for o in self._open.values() if o.clip is not None),
                queue_depth=self._queue.qsize(),
                latencies_s=tuple(self._latencies[-1000:]),
            )

    # -- writer thread ---------------------------------------------------------------------

    def run(self) -> None:
        """Thread target. On stop, waits for no more input and finishes every open clip."""
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            if isinstance(item, EventNotice):
                self._guarded(item.event, partial(self._handle, item))
            # Notices first: a burst of new events is stored (and visible) before the clips
            # of earlier ones, whose packets are already held; a clip waits at most
            # _CLIP_MAX_WAIT_S, so a writer that is never idle still writes them.
            self._finish_clips(force=False, overdue_only=not self._queue.empty())
            if self._queue.empty() and not self._pending():
                self.idle.set()
            else:
                self.idle.clear()
        self._finish_clips(force=True)
        self.idle.set()

    def _pending(self) -> bool:
        return any(o.clip is not None for o in self._open.values())

    def _guarded(self, event: Event, work: Callable[[], None]) -> None:
        try:
            work()
        except (OSError, ValueError, av.error.FFmpegError) as exc:
            with self._lock:
                self._errors += 1
            logger.error(
                "camera %s event %s: writing evidence failed: %s",
                event.camera_id, event.event_id, exc,
            )  # fmt: skip

    def _handle(self, notice: EventNotice) -> None:
        ev = notice.event
        camera = self._cameras[ev.camera_id]
        if ev.state == EventState.STARTED or ev.event_id not in self._open:
            day = datetime.fromtimestamp(ev.alerted_at, tz=self._tz).strftime("%Y%m%d")
            rel = f"{ev.camera_id}/{day}/{ev.event_id}"
            self._open[ev.event_id] = _Open(event=ev, camera=camera, dirrel=rel)
        state = self._open[ev.event_id]
        state.event = ev
        if ev.state == EventState.STARTED:
            if notice.frame is not None:
                self._snapshot(state, "alert", notice.frame.image, notice.frame.time_s, True)
            if notice.first_evidence_jpeg is not None and notice.first_evidence_time_s is not None:
                decoded = cv2.imdecode(np.frombuffer(notice.first_evidence_jpeg, np.uint8), 1)
                if decoded is not None:
                    img = np.asarray(decoded, dtype=np.uint8)
                    self._snapshot(state, "first", img, notice.first_evidence_time_s, False)
            with self._lock:
                state.clip = self._early_clips.pop(ev.event_id, None)
        elif ev.state == EventState.ENDED and notice.frame is not None:
            kind = kind_of_details(ev.details)
            name = kind.end_snapshot if kind else "end"
            # a picture named otherwise (高空抛物: the whole fall) is drawn from the clip's frames
            self._snapshot(state, name, notice.frame.image, notice.frame.time_s, name != "end")
        self._persist(state)
        if ev.state == EventState.STARTED:
            with self._lock:
                self._latencies.append(self._clock() - ev.alerted_at)
        self._retire_if_done(state)

    def _snapshot(
        self, state: _Open, name: str, image: NDArray[np.uint8], time_s: float, current: bool
    ) -> None:
        ev = state.event
        zone = next((z for z in state.camera.zones if z.id == ev.zone_id), None)
        stamp = datetime.fromtimestamp(time_s, tz=self._tz).strftime("%Y-%m-%d %H:%M:%S%z")
        caption = f"{stamp}  {ev.camera_id} {ev.event_type.value} {name}"
        snap = Snapshot(image, name, state.camera, zone, caption)
        kind = kind_of_details(ev.details)
        drawn = kind.draw(snap, ev.details) if kind else annotate_snapshot(snap)
        self._write_image(state, name, drawn, time_s, f"{ev.event_id}-clip" if current else None)

    def _write_image(
        self,
        state: _Open,
        name: str,
        drawn: NDArray[np.uint8],
        time_s: float,
        derived_from: str | None,
    ) -> None:
        ev = state.event
        ok, buf = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, self._cfg.jpeg_quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        rel = f"{state.dirrel}/{name}.jpg"
        size, digest = self.storage.put(rel, buf.tobytes())
        h, w = drawn.shape[:2]
        state.evidence[name] = EvidenceItem(
            evidence_id=f"{ev.event_id}-{name}",
            name=name,
            kind="annotated_image",
            role="derived",
            relpath=rel,
            media_type="image/jpeg",
            size_bytes=size,
            sha256=digest,
            start_time_s=time_s,
            width=w,
            height=h,
            derived_from=derived_from,
        )

    def _persist(self, state: _Open) -> None:
        ev = state.event
        items = sorted(state.evidence.values(), key=lambda e: e.name)
        model = self._camera_models.get(ev.camera_id, self._model)
        report = build_report(ev, state.camera, self._site, model, items)
        problems = report_errors(report)
        if problems:  # a bug, not bad input: keep the evidence, make the failure loud
            with self._lock:
                self._errors += 1
            logger.error("report %s violates schema v1: %s", ev.event_id, "; ".join(problems))
        rel = f"{state.dirrel}/report.json"
        data = json.dumps(report, ensure_ascii=False, indent=2).encode()
        _, digest = self.storage.put(rel, data)
        row = self._store.upsert_event(
            ev,
            classify(ev.event_type).severity,
            report,
            rel,
            digest,
            stored_at=self._clock(),
            evidence=items,
        )
        with self._lock:
            if ev.state == EventState.STARTED:
                self._stored += 1
        if self._on_stored is not None:
            self._on_stored(row)

    def _finish_clips(self, *, force: bool, overdue_only: bool = False) -> None:
        now = time.monotonic()
        for state in list(self._open.values()):
            clip = state.clip
            if clip is None or not (clip.done.is_set() or force):
                continue
            if state.clip_ready is None:
                state.clip_ready = now
            if overdue_only and not force and now - state.clip_ready < _CLIP_MAX_WAIT_S:
                continue
            if not clip.done.is_set():
                clip.truncated = True
            self._guarded(state.event, partial(self._write_clip, state))
            state.clip = None
            self._retire_if_done(state)

    def _write_clip(self, state: _Open) -> None:
        assert state.clip is not None
        ev = state.event
        rel = f"{state.dirrel}/clip.mp4"
        staged = self.storage.staging(rel)
        item = remux_clip(state.clip, staged)
        if item is None:
            logger.warning("camera %s event %s: no packets for a clip", ev.camera_id, ev.event_id)
            return
        kind = kind_of_details(ev.details)
        if kind is not None and kind.composite is not None:  # read back before it leaves
            self._composite(state, staged, item.start_time_s, kind.composite)
        if item.codec not in BROWSER_CODECS:
            try:
                self._preview(state, staged, item)
            except Exception:  # the original must be stored whatever befalls its copy
                logger.exception("camera %s event %s: preview failed", ev.camera_id, ev.event_id)
        size, digest = self.storage.commit(rel)
        state.evidence["clip"] = replace(
            item,
            evidence_id=f"{ev.event_id}-clip",
            relpath=rel,
            size_bytes=size,
            sha256=digest,
            pre_roll_s=round(ev.alerted_at - item.start_time_s, 3),
            post_roll_s=round((item.end_time_s or item.start_time_s) - ev.alerted_at, 3),
        )
        self._persist(state)

    def _preview(self, state: _Open, clip_path: Path, original: EvidenceItem) -> None:
        """An H.264 copy of a clip browsers cannot play (H.265 from most cameras sold in China
        now): the original stays the evidence, this one is derived from it for the viewer."""
        ev = state.event
        rel = f"{state.dirrel}/clip-preview.mp4"
        staged = self.storage.staging(rel)
        made = h264_preview(clip_path, staged)
        if made is None:
            logger.warning("camera %s event %s: the %s clip has no picture to preview",
                           ev.camera_id, ev.event_id, original.codec)  # fmt: skip
            return
        width, height = made
        size, digest = self.storage.commit(rel)
        state.evidence[PREVIEW] = replace(
            original,
            evidence_id=f"{ev.event_id}-{PREVIEW}",
            name=PREVIEW,
            role="derived",
            relpath=rel,
            size_bytes=size,
            sha256=digest,
            codec="h264",
            width=width,
            height=height,
            derived_from=f"{ev.event_id}-clip",
        )

    def _composite(
        self, state: _Open, clip_path: Path, clip_start_s: float, make: Composite[Any]
    ) -> None:
        ev = state.event
        made = make(str(clip_path), ev.details, clip_start_s, ev.camera_id, self._tz)
        if made is not None:
            image, time_s = made
            self._write_image(state, "composite", image, time_s, f"{ev.event_id}-clip")

    def _retire_if_done(self, state: _Open) -> None:
        if state.event.state == EventState.ENDED and state.clip is None:
            with contextlib.suppress(KeyError):
                del self._open[state.event.event_id]


class WriterPool:
    """``count`` evidence writers, sharded by camera (see the module docstring)."""

    def __init__(self, count: int, make: Callable[[], EvidenceWriter]) -> None:
        if count < 1:
            raise ValueError("a writer pool needs at least one writer")
        self.writers = [make() for _ in range(count)]

    def submit(self, notice: EventNotice) -> None:
        shard = zlib.crc32(notice.event.camera_id.encode()) % len(self.writers)
        self.writers[shard].submit(notice)

    def stop(self) -> None:
        for w in self.writers:
            w.stop()

    def stats(self) -> WriterStats:
        return WriterStats.total([w.stats() for w in self.writers])
