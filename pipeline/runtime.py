"""The running video pipeline: builds the camera-side stages from ``AppConfig`` and runs them
in threads. The store and the evidence storage are given (``pipeline.ops.compose``, the
composition root, builds them once); every event row the writer stores goes to the
subscribers (casework subscribes there), so this module knows nothing of cases.

Threads: one source per camera (demux/decode), one inference worker, one analysis loop (owns
all per-camera state, so analyzers need no locks), evidence writers (all file and DB I/O,
sharded by camera), a plate reader (parking),
and, for live runs, a 1 s watchdog that turns camera outages into ``camera_offline`` events.

Everything that can be wrong with a configuration (credentials, files, model, zones, rules) is
checked in ``__init__``, before any thread starts: a bad config never runs half a pipeline.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline import threads
from pipeline.casework.retention import sweep_unindexed
from pipeline.config import (
    AppConfig,
    CameraConfig,
    GateConfig,
    aspect_fraction,
    check_runtime_requirements,
    resolve_url,
)
from pipeline.detect.detector import OnnxDetector
from pipeline.detect.inference import (
    END,
    AnalysisItem,
    Detector,
    InferenceStats,
    InferenceWorker,
    OnnxFrameDetector,
)
from pipeline.detect.plate_lookups import PlateWorker
from pipeline.errors import ConfigError, ConfigIssue, PipelineError
from pipeline.evidence.report import ModelIdentity
from pipeline.evidence.storage import EvidenceStorage, LocalStorage
from pipeline.evidence.writer import EvidenceWriter, WriterPool, WriterStats
from pipeline.ingest.health import HealthTracker
from pipeline.ingest.live import LiveHub
from pipeline.ingest.packet_ring import PacketRing
from pipeline.ingest.queues import FrameHub, Watermark
from pipeline.ingest.source import LumaHook, SourceSettings, StreamSource
from pipeline.ingest.still import StillSettings, zones_roi
from pipeline.rules.base import new_event_id
from pipeline.rules.camera import CameraPipeline, build_analyzers, load_shared_models
from pipeline.rules.integrity import ViewGuard
from pipeline.rules.motion import MotionExtractor
from pipeline.store.repository import EventRow, EventStore
from pipeline.types import (
    CameraChanges,
    CameraHealth,
    CameraStatusDetails,
    DecodeMode,
    Event,
    EventNotice,
    EventState,
    EventType,
    Frame,
    HealthChange,
    HealthState,
    MotionSample,
)

logger = logging.getLogger(__name__)
# How often (stream seconds) each 高空抛物 camera's activity map is saved for restarts.
_ACTIVITY_SAVE_S = 300.0


def tune_process() -> None:
    """Process-wide settings for a long-running pipeline (call from entry points only).

    OpenCV runs single-threaded: the parallelism is one thread per camera, and OpenCV's own
    pool only adds hand-offs for the small images each call gets (measured with 2 façade
    cameras: 0.254 → 0.212 core per camera).

    Every camera allocates tens of objects per packet; with CPython's default thresholds the
    full collections that follow walk every object of numpy, onnxruntime and friends again and
    again (measured: ~24 % of all CPU with 32 cameras). Freezing what exists after start-up and
    collecting young objects less eagerly removes that cost; reference counting still frees
    almost everything at once.
    """
    cv2.setNumThreads(1)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


StoredCallback = Callable[[EventRow], None]


@dataclass
class _Camera:
    cfg: CameraConfig
    pipeline: CameraPipeline
    ring: PacketRing
    health: HealthTracker
    source: StreamSource
    watermark: Watermark | None
    stop: threading.Event = field(default_factory=threading.Event)
    # Items of epochs up to this one came from a camera this one replaced (live reconfigure).
    stale_epoch: int = 0
    thread: threading.Thread | None = None
    down_since: float | None = None
    outage: Event | None = None
    motion: MotionExtractor | None = None


@dataclass(frozen=True, slots=True)
class _Swap:
    """Analysis-thread instruction: end the camera's open events, then install ``new``."""

    camera_id: str
    new: _Camera | None
    done: threading.Event


@dataclass(frozen=True, slots=True)
class _ConfirmView:
    """Analysis-thread instruction: the camera's view now is its integrity reference."""

    camera_id: str
    done: threading.Event


def still_settings(
    gate: GateConfig, cam: CameraConfig, pipe: CameraPipeline
) -> StillSettings | None:
    """Still-scene decoding of a keyframe camera (``pipeline.ingest.still``), no sparser than
    its rules can use; None where it decodes otherwise or the gate is off."""
    if pipe.decode_mode != DecodeMode.KEYFRAMES or not gate.enabled:
        return None
    interval = min(gate.still_decode_interval_s, pipe.max_frame_gap_s)
    if interval <= 0:
        return None
    return StillSettings(
        interval_s=interval,
        roi=zones_roi(cam.zones),
        pixel_delta=gate.pixel_delta,
        min_changed_fraction=gate.min_changed_fraction,
    )


class Runtime:
    """The running pipeline. ``start()`` once, ``stop()`` or ``wait_finished()`` once."""

    def __init__(
        self,
        cfg: AppConfig,
        *,
        store: EventStore,
        storage: EvidenceStorage,
        env: Mapping[str, str] | None = None,
        detector: Detector | None = None,
        model_identity: ModelIdentity | None = None,
        clock: Callable[[], float] = time.time,
        replay: bool = False,
        start_time_s: float | None = None,
        extra_classes: frozenset[int] = frozenset(),
    ) -> None:
        """``extra_classes``: detector classes to load beyond what these cameras need, so that
        cameras added later by ``reconfigure`` (a cluster moving cameras here) can run."""
        self.cfg = cfg
        self.replay = replay
        self._clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._subscribers: list[StoredCallback] = []
        self._close_reason = "end_of_stream" if replay else "shutdown"
        self._started = False
        # The first essential thread (analysis, inference, an evidence writer) to die, by name
        # and error: the process no longer analyses its cameras and must stop to be restarted.
        self.fault: str | None = None
        self.faulted = threading.Event()
        # Outage state is touched by the watchdog and, at shutdown, by the analysis thread.
        self._outage_lock = threading.Lock()
        self._connect_grace_s = cfg.ingest.open_timeout_s + cfg.ingest.stall_after_s

        enabled = [c for c in cfg.cameras if c.enabled]
        check_runtime_requirements(cfg, env)
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._start_time_s = start_time_s
        self._models = load_shared_models(cfg.model, enabled, plate_worker=not replay)
        pipelines = {c.id: self._pipeline(c) for c in enabled}
        classes = frozenset(extra_classes).union(*(p.classes for p in pipelines.values()))
        # per camera: the identity of the model its reports name (cameras with their own)
        self.camera_models: dict[str, ModelIdentity] = {}
        self._loaded_models: dict[Path, OnnxDetector] = {}
        if detector is None and classes:
            onnx = self._load_model(cfg.model.path, cfg.model.layout, cfg.model.sha256, classes)
            by_camera = {
                c.id: self._load_model(c.model.path, c.model.layout, c.model.sha256, classes)
                for c in enabled
                if c.model is not None
            }
            detector = OnnxFrameDetector(onnx, by_camera)
            model_identity = ModelIdentity(onnx.info.name, onnx.info.sha256)
            self.camera_models = {
                cid: ModelIdentity(m.info.name, m.info.sha256) for cid, m in by_camera.items()
            }
        self.model = model_identity
        self.detector = detector
        self._classes = classes

        self.evidence_root = cfg.evidence.root
        self.store = store
        self.hub = FrameHub(cfg.ingest.queue_size, block=replay)
        # Blocks rather than drops: frames were already thinned by the hub, and per-frame motion
        # samples (高空抛物) must all arrive for trajectories to be whole.
        self._analysis_q: queue.Queue[AnalysisItem | _Swap | _ConfirmView] = queue.Queue(
            maxsize=1024
        )
        self.cameras: dict[str, _Camera] = {}
        for cam in enabled:
            self.cameras[cam.id] = self._camera(cam, pipelines[cam.id])
            self.hub.register(cam.id)
        # shared with the writer, which names cameras in reports; replaced entries only
        self._camera_cfgs = {cid: c.cfg for cid, c in self.cameras.items()}
        self.live = LiveHub(self._ring_of)
        self._reconfigure_lock = threading.Lock()

        self.storage = storage
        self.writer = WriterPool(
            cfg.evidence.writers,
            lambda: EvidenceWriter(
                self.storage,
                self.store,
                cfg.site,
                self._camera_cfgs,
                self._ring_of,
                self.model,
                cfg.evidence,
                clock=clock,
                on_stored=self._notify,
                camera_models=self.camera_models,
            ),
        )
        self.inference = [
            InferenceWorker(
                self.hub,
                detector,
                self._analysis_q,
                self._wants_detection,
                max_batch=cfg.model.max_batch,
                batch_wait_s=cfg.model.batch_timeout_ms / 1000.0,
            )
            for _ in range(cfg.model.workers)
        ]

    def _ring_of(self, camera_id: str) -> PacketRing | None:
        """The packet ring of a running camera (clips, live view)."""
        cam = self.cameras.get(camera_id)
        return None if cam is None else cam.ring

    def _model_changes(self, cam: CameraConfig) -> bool:
        """Whether ``cam`` names a detector other than the one its frames go to now."""
        if not isinstance(self.detector, OnnxFrameDetector):
            return False  # an injected detector serves every camera
        running = self.detector.by_camera.get(cam.id, self.detector.model)
        wanted = self.cfg.model.path if cam.model is None else cam.model.path
        return running.info.path.resolve() != wanted.resolve()

    def _load_model(
        self,
        path: Path,
        layout: Literal["auto", "yolox", "ultralytics"],
        sha256: str | None,
        classes: frozenset[int],
    ) -> OnnxDetector:
        """One loaded copy per model file, shared by the cameras that name it."""
        key = path.resolve()
        if key not in self._loaded_models:
            m = self.cfg.model
            self._loaded_models[key] = OnnxDetector(
                path, layout=layout, score_threshold=m.score_threshold, nms_iou=m.nms_iou,
                intra_op_threads=m.intra_op_threads, classes=classes, expected_sha256=sha256,
                providers=m.providers,
            )  # fmt: skip
        return self._loaded_models[key]

    def _pipeline(self, cam: CameraConfig) -> CameraPipeline:
        cfg = self.cfg
        build = partial(build_analyzers, cam, cfg.site, cfg.evidence, self._models)
        analyzers = build()
        guard = None
        if cfg.integrity.enabled and cam.integrity and analyzers:  # a view only rules need
            guard = ViewGuard(cam.id, cfg.integrity)
        return CameraPipeline(cam, analyzers, cfg.gate, guard=guard, rebuild=build)

    def _camera(
        self,
        cam: CameraConfig,
        pipe: CameraPipeline,
        *,
        ring: PacketRing | None = None,
        health: HealthTracker | None = None,
        first_epoch: int = 0,
    ) -> _Camera:
        """Every per-camera stage, not started. A replacement keeps the packet ring (clips of
        events it ends still need the old packets) and the health history of the one before."""
        ing = self.cfg.ingest
        ev = self.cfg.evidence
        ring = ring or PacketRing(cam.id, ev.pre_roll_s + ev.post_roll_s + ing.ring_slack_s)
        still = still_settings(self.cfg.gate, cam, pipe)
        if health is None:
            health = HealthTracker(
                cam.id,
                pipe.decode_mode,
                self._clock,
                ing.stall_after_s,
                drops=partial(self.hub.drops, cam.id),
                still_interval_s=still.interval_s if still is not None else 0.0,
            )
        settings = SourceSettings(
            camera_id=cam.id,
            url=resolve_url(cam, self._env),
            redacted_url=cam.redacted_url,
            decode_mode=pipe.decode_mode,
            transport=cam.transport,
            sample_fps=cam.sample_fps,
            skip_deblocking=pipe.skip_deblocking,
            display_shape=aspect_fraction(cam.display_aspect) if cam.display_aspect else None,
            analysis_width=ing.analysis_width,
            open_timeout_s=ing.open_timeout_s,
            read_timeout_s=ing.read_timeout_s,
            backoff_initial_s=ing.backoff_initial_s,
            backoff_max_s=ing.backoff_max_s,
            backoff_reset_after_s=ing.backoff_reset_after_s,
            loop=cam.loop and not self.replay,
            realtime=cam.realtime and not self.replay,
            start_time_s=self._start_time_s,
            hwaccel=ing.hwaccel,
            hwaccel_device=ing.hwaccel_device,
            still=still,
        )
        watermark = Watermark(ing.ring_slack_s / 2) if self.replay else None
        extractor = pipe.motion_extractor()
        if extractor is not None:  # a replay's own directory has one only if put there
            extractor.load_activity(self._activity_path(cam.id))
        stop = threading.Event()
        source = StreamSource(
            settings,
            ring,
            self.hub.put,
            health,
            stop,
            clock=self._clock,
            watermark=watermark,
            on_luma=None if extractor is None else self._motion_hook(cam.id, extractor, watermark),
            first_epoch=first_epoch,
            timer_due=lambda: pipe.timer_due_s,
        )
        return _Camera(
            cam, pipe, ring, health, source, watermark, stop, stale_epoch=first_epoch,
            motion=extractor,
        )  # fmt: skip

    def _wants_detection(self, frame: Frame) -> bool:
        cam = self.cameras.get(frame.camera_id)
        return cam is not None and cam.pipeline.wants_detection(frame)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("runtime already started")
        self._started = True
        # A previous process that died (power cut, kill -9, a lost cluster worker; a replay
        # resumed into the same directory) could not end its events, which would stay open for
        # ever, nor index the files it was writing, which nothing would ever find or expire.
        left = self.store.end_open_events(sorted(self.cameras), self._clock(), "restarted")
        if left:
            logger.warning("ended %d event(s) left open by a previous run", len(left))
        if isinstance(self.storage, LocalStorage):  # object stores: see docs/security.md
            swept = sweep_unindexed(self.store, self.storage.root, sorted(self.cameras),
                                    self._clock())  # fmt: skip
            if swept:
                logger.warning("deleted %d unindexed evidence file(s) of a previous run", swept)
        for i, writer in enumerate(self.writer.writers):
            self._spawn(f"gridsight-writer-{i}", self._essential(f"writer-{i}", writer.run))
        if isinstance(self._models.plates, PlateWorker):
            self._models.plates.start()
        self._spawn("gridsight-analysis", self._essential("analysis", self._analysis_loop))
        for i, worker in enumerate(self.inference):
            self._spawn(f"gridsight-inference-{i}", self._essential(f"inference-{i}", worker.run))
        for cam in list(self.cameras.values()):
            cam.thread = self._spawn(f"gridsight-src-{cam.cfg.id}", cam.source.run)
        if not self.replay:
            self._spawn("gridsight-watchdog", self._watchdog)
        logger.info("started %d camera(s)", len(self.cameras))

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        t = threads.start(name, target)
        self._threads.append(t)
        return t

    def _essential(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception as exc:
                self._fail(name, exc)

        return run

    def _fail(self, name: str, exc: Exception) -> None:
        """An essential thread died. Without it the sources would block on queues nobody
        empties, every camera of the process silently unanalysed and a stop hanging on them:
        from here on nothing waits to hand over work, and whoever runs the process stops it (a
        worker says so in its health answer and the coordinator replaces it; ``gridsight run
        --workers 1`` exits non-zero; a replay raises)."""
        logger.critical("thread %s died: %s: %s; the process stops", name, type(exc).__name__,
                        exc, exc_info=exc)  # fmt: skip
        if self.fault is None:
            self.fault = f"{name}: {type(exc).__name__}: {exc}"
        self.faulted.set()
        self._stop.set()
        self.hub.close()

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Replay: wait until every source reached its end, then drain and stop.

        Raises:
            PipelineError: an essential thread died (``fault``); what was stored stays.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for cam in list(self.cameras.values()):
            while not self.faulted.is_set() and not cam.source.finished.wait(0.2):
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        self._drain()  # after a fault, briefly (see _drain)
        if self.fault is not None:
            raise PipelineError(f"analysis stopped: {self.fault}")
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop sources, analyse what is queued, end open events, finish clips."""
        self._stop.set()
        for cam in list(self.cameras.values()):
            cam.stop.set()
        for cam in list(self.cameras.values()):
            if cam.thread is not None:
                cam.thread.join(timeout)
        self._drain(timeout)

    def _drain(self, timeout: float = 120.0) -> None:
        if self.fault is not None:  # threads waiting on a dead one never end
            timeout = min(timeout, 10.0)
        deadline = time.monotonic() + timeout
        self.hub.close()
        self._stop.set()
        for cam in list(self.cameras.values()):
            cam.stop.set()
            if cam.watermark is not None:
                cam.watermark.release()
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._save_activity()
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            logger.error("threads still running after %.0f s: %s", timeout, ", ".join(alive))

    def _save_activity(self) -> None:
        """Keep every camera's learned activity map when it stops (a replay's in its own
        directory), so that a restart does not lose the minutes since the last save."""
        for cam in list(self.cameras.values()):
            if cam.motion is not None and (cam.thread is None or not cam.thread.is_alive()):
                self._save_activity_of(cam.cfg.id, cam.motion)

    def _save_activity_of(self, camera_id: str, extractor: MotionExtractor) -> None:
        try:
            extractor.save_activity(self._activity_path(camera_id))
        except OSError as exc:
            logger.warning("camera %s: activity map not saved: %s", camera_id, exc)

    def _activity_path(self, camera_id: str) -> Path:
        return Path(self.evidence_root) / ".activity" / f"{camera_id}.npz"

    def _motion_hook(
        self, camera_id: str, extractor: MotionExtractor, watermark: Watermark | None
    ) -> LumaHook:
        """Runs in the camera's source thread: motion of every decoded frame → analysis; the
        learned activity map is saved every few minutes of stream time (not in replays)."""
        saved_at = [0.0]

        def hook(
            luma: NDArray[np.uint8], seq: int, epoch: int, pts_s: float, time_s: float
        ) -> None:
            if not self.replay and time_s - saved_at[0] >= _ACTIVITY_SAVE_S:
                if saved_at[0]:
                    self._save_activity_of(camera_id, extractor)
                saved_at[0] = time_s
            sample = extractor.process(luma, seq=seq, epoch=epoch, pts_s=pts_s, time_s=time_s)
            if sample is not None:
                if watermark is not None:
                    watermark.emitted()
                while not self.faulted.is_set():
                    try:
                        self._analysis_q.put(sample, timeout=0.5)
                        break
                    except queue.Full:
                        continue

        return hook

    # -- threads ---------------------------------------------------------------------------

    def _analysis_loop(self) -> None:
        last_time = 0.0
        running = len(self.inference)
        try:
            while running:
                item = self._analysis_q.get()
                if item is END:
                    running -= 1
                    continue
                if isinstance(item, _Swap):
                    self._swap(item, last_time)
                    continue
                if isinstance(item, _ConfirmView):
                    cam = self.cameras.get(item.camera_id)
                    for notice in cam.pipeline.confirm_view() if cam else []:
                        self.writer.submit(notice)
                    item.done.set()
                    continue
                if isinstance(item, MotionSample):
                    self._analyse_motion(item)
                    continue
                frame, dets = item
                last_time = max(last_time, frame.time_s)
                cam = self.cameras.get(frame.camera_id)
                if cam is None or frame.epoch <= cam.stale_epoch:
                    continue
                for notice in cam.pipeline.process(frame, dets):
                    self.writer.submit(notice)
                if cam.watermark is not None:
                    cam.watermark.processed(frame.time_s)
            reason = self._close_reason if self.fault is None else "fault"
            for cam in list(self.cameras.values()):
                for notice in cam.pipeline.close(last_time, reason):
                    self.writer.submit(notice)
            with self._outage_lock:
                for cam in list(self.cameras.values()):
                    if cam.outage is not None:
                        self._end_outage(cam, self._clock())
        finally:
            if isinstance(self._models.plates, PlateWorker):
                self._models.plates.stop()
            self.writer.stop()

    def _analyse_motion(self, sample: MotionSample) -> None:
        cam = self.cameras.get(sample.camera_id)
        if cam is None or sample.epoch <= cam.stale_epoch:
            return
        for notice in cam.pipeline.process_motion(sample):
            self.writer.submit(notice)
        if cam.watermark is not None:
            cam.watermark.processed(sample.time_s)

    def _swap(self, swap: _Swap, last_time: float) -> None:
        """On the analysis thread, which owns every pipeline: everything the old camera
        queued before its source stopped has been analysed; its open events end here."""
        old = self.cameras.get(swap.camera_id)
        if old is not None:  # live only: reconfigure refuses replays
            now = max(last_time, self._clock())
            for notice in old.pipeline.close(now, "reconfigured"):
                self.writer.submit(notice)
            with self._outage_lock:
                if old.outage is not None:
                    self._end_outage(old, self._clock())
        if swap.new is None:
            self.cameras.pop(swap.camera_id, None)
            self._camera_cfgs.pop(swap.camera_id, None)
        else:
            self._camera_cfgs[swap.camera_id] = swap.new.cfg
            self.cameras[swap.camera_id] = swap.new
        swap.done.set()

    # -- live reconfiguration -------------------------------------------------------------

    def reconfigure(self, cameras: list[CameraConfig], timeout: float = 30.0) -> CameraChanges:
        """Apply a new camera list while running: only cameras whose configuration changed
        are stopped and restarted (their open events end with reason "reconfigured"); the
        others keep streaming untouched.

        Raises:
            ConfigError: naming the camera when it cannot run in this process (credentials,
                file, or a detector class the loaded model was not started with); nothing
                is changed then.
        """
        if not self._started or self.replay:
            raise RuntimeError("reconfigure needs a started live runtime")
        with self._reconfigure_lock:
            wanted = {c.id: c for c in cameras if c.enabled}
            changes = CameraChanges.between(
                {cid: c.cfg for cid, c in list(self.cameras.items())}, wanted
            )
            added, removed, updated = (
                list(changes.added),
                list(changes.removed),
                list(changes.updated),
            )
            check_runtime_requirements(
                self.cfg.model_copy(update={"cameras": [wanted[c] for c in added + updated]}),
                self._env,
            )
            pipes = {cid: self._pipeline(wanted[cid]) for cid in added + updated}
            issues = [
                ConfigIssue(
                    f"camera {cid!r} → rules",
                    f"needs detector classes {sorted(p.classes - self._classes)} that the "
                    "running model was not loaded for; restart gridsight to apply",
                )
                for cid, p in pipes.items()
                if not p.classes <= self._classes  # no detector: self._classes is empty
            ]
            moved = "a model other than the camera's running one; restart gridsight to apply"
            issues += [
                ConfigIssue(f"camera {cid!r} → model", moved)
                for cid in added + updated
                if self._model_changes(wanted[cid])
            ]
            if issues:
                raise ConfigError(issues)
            for cid in removed + updated:
                old = self.cameras[cid]
                old.stop.set()
                if old.thread is not None:
                    old.thread.join(timeout)
                self.hub.unregister(cid)
                new = None
                if cid in pipes:
                    new = self._camera(
                        wanted[cid], pipes[cid], ring=old.ring, health=old.health,
                        first_epoch=old.source.epoch,
                    )  # fmt: skip
                self._install(cid, new, timeout)
            for cid in added:
                self._install(cid, self._camera(wanted[cid], pipes[cid]), timeout)
        logger.info(
            "reconfigured: added %s, removed %s, updated %s; %d camera(s) untouched",
            added or "-", removed or "-", updated or "-", len(changes.unchanged),
        )  # fmt: skip
        return changes

    def _install(self, camera_id: str, new: _Camera | None, timeout: float) -> None:
        refused = f"camera {camera_id!r}: analysis did not take the change"
        if self.fault is not None:  # a dead analysis thread takes nothing: no use waiting
            raise RuntimeError(refused)
        done = threading.Event()
        self._analysis_q.put(_Swap(camera_id, new, done))
        if not done.wait(timeout):
            raise RuntimeError(refused)
        if new is not None:
            self.hub.register(camera_id)
            new.thread = self._spawn(f"gridsight-src-{camera_id}", new.source.run)

    def confirm_view(self, camera_id: str, timeout: float = 10.0) -> str:
        """An integrator accepts the camera's view now as its integrity reference (ending a
        camera_tamper event and resuming its rules). Returns the view state after."""
        if camera_id not in self.cameras:
            raise KeyError(camera_id)
        refused = f"camera {camera_id!r}: analysis did not take the confirmation"
        if self.fault is not None:  # a dead analysis thread takes nothing: no use waiting
            raise RuntimeError(refused)
        done = threading.Event()
        self._analysis_q.put(_ConfirmView(camera_id, done))
        if not done.wait(timeout):
            raise RuntimeError(refused)
        return self.view_state(camera_id) or "unchecked"

    def live_view(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None:
        """(MSE codec string, fragmented MP4 bytes) of the camera now, for one viewer."""
        return self.live.open(camera_id) if camera_id in self.cameras else None

    def view_state(self, camera_id: str) -> str | None:
        """ "learning", "ok", "moved", "occluded", "defocused"; None: not checked."""
        cam = self.cameras.get(camera_id)
        guard = None if cam is None else cam.pipeline.guard
        return None if guard is None else guard.state

    def sway_px(self, camera_id: str) -> float | None:
        """How far the camera sways in wind (its pixels) while the motion stage registers it;
        None: still, or no motion stage."""
        cam = self.cameras.get(camera_id)
        return None if cam is None or cam.motion is None else cam.motion.sway_px

    def _watchdog(self) -> None:
        after = self.cfg.ingest.offline_event_after_s
        while not self._stop.wait(1.0):
            with self._outage_lock:
                self._check_outages(after)

    def _check_outages(self, after: float) -> None:
        now = self._clock()
        for cam in list(self.cameras.values()):
            snap = cam.health.snapshot()
            if snap.state == HealthState.ONLINE:
                cam.down_since = None
                if cam.outage is not None:
                    self._end_outage(cam, now)
                continue
            if snap.state == HealthState.DISABLED:
                continue
            if cam.down_since is None:
                if snap.state == HealthState.CONNECTING:
                    # An attempt in progress is not an outage until it has taken longer than a
                    # healthy connect can (open, then the first keyframe); one that fails goes
                    # OFFLINE sooner. Counting it at once turned every slow first connect into
                    # a camera_offline event.
                    if now - snap.state_since_s < self._connect_grace_s:
                        continue
                    cam.down_since = snap.state_since_s
                else:
                    cam.down_since = now
            if cam.outage is None and now - cam.down_since >= after:
                self._start_outage(cam, snap, now)

    def _start_outage(self, cam: _Camera, snap: CameraHealth, now: float) -> None:
        assert cam.down_since is not None
        cam.outage = Event(
            event_id=new_event_id(now),
            event_type=EventType.CAMERA_OFFLINE,
            state=EventState.STARTED,
            camera_id=cam.cfg.id,
            zone_id=None,
            rule_id=None,
            started_at=cam.down_since,
            alerted_at=now,
            updated_at=now,
            ended_at=None,
            score=1.0,
            details=CameraStatusDetails(
                reason=snap.last_error or snap.state.value,
                reconnects=snap.reconnects,
                epoch=snap.epoch,
            ),
        )
        self.writer.submit(EventNotice(event=cam.outage))

    def _end_outage(self, cam: _Camera, now: float) -> None:
        assert cam.outage is not None
        snap = cam.health.snapshot()
        details = cam.outage.details
        assert isinstance(details, CameraStatusDetails)
        ended = replace(
            cam.outage,
            state=EventState.ENDED,
            updated_at=now,
            ended_at=now,
            details=replace(details, reconnects=snap.reconnects, epoch=snap.epoch),
        )
        cam.outage = None
        self.writer.submit(EventNotice(event=ended))

    def _notify(self, row: EventRow) -> None:
        """Called by the writer thread with each row it stored (casework subscribes here)."""
        for cb in list(self._subscribers):
            try:
                cb(row)
            except Exception:  # a broken subscriber must not stop evidence writing
                logger.exception("event subscriber failed for event %s", row.event_id)

    def online(self, camera_id: str) -> bool:
        health = self.health(camera_id)
        return health is not None and health.state == HealthState.ONLINE

    # -- read side (API) -------------------------------------------------------------------

    def subscribe(self, callback: StoredCallback) -> None:
        """``callback(row)`` on the writer thread after each stored event (before ``start``)."""
        self._subscribers.append(callback)

    def camera_configs(self) -> list[CameraConfig]:
        return [c.cfg for c in list(self.cameras.values())]

    def health(self, camera_id: str) -> CameraHealth | None:
        cam = self.cameras.get(camera_id)
        return None if cam is None else cam.health.snapshot()

    def health_history(self, camera_id: str) -> tuple[tuple[HealthChange, ...], float | None]:
        """State changes since start and the online share of the last 24 h."""
        cam = self.cameras.get(camera_id)
        if cam is None:
            return (), None
        return cam.health.history(), cam.health.uptime(24 * 3600.0)

    def snapshot_jpeg(self, camera_id: str) -> bytes | None:
        cam = self.cameras.get(camera_id)
        latest = None if cam is None else cam.pipeline.latest
        if latest is None:
            return None
        ok, buf = cv2.imencode(".jpg", latest[0].image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return buf.tobytes() if ok else None

    def frame_size(self, camera_id: str) -> tuple[int, int] | None:
        """The camera's full frame size, once its motion stage has seen a frame."""
        cam = self.cameras.get(camera_id)
        return None if cam is None or cam.motion is None else cam.motion.frame_size

    def activity_jpeg(self, camera_id: str) -> bytes | None:
        """The latest frame with the motion stage's activity map over it: where motion is
        normal (trees, flags), for integrators to leave out of façade zones."""
        cam = self.cameras.get(camera_id)
        latest = None if cam is None else cam.pipeline.latest
        if cam is None or cam.motion is None or latest is None:
            return None
        activity = cam.motion.activity_map()
        if activity is None:
            return None
        img = latest[0].image
        h, w = img.shape[:2]
        fw, fh = cam.motion.frame_size or (w, h)
        x1, y1, x2, y2 = cam.motion.activity_region
        sx, sy = w / fw, h / fh  # the frame kept for snapshots may be scaled down
        box = (round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy))
        heat = np.asarray(
            cv2.resize(
                activity, (box[2] - box[0], box[3] - box[1]), interpolation=cv2.INTER_NEAREST
            ),
            np.uint8,
        )
        # 5 % of frames moving already reads as warm: the analyzer's "in foliage" level
        warm = np.clip(heat.astype(np.int32) * 4, 0, 255).astype(np.uint8)
        colour = cv2.applyColorMap(warm, cv2.COLORMAP_JET)
        out = (img * 0.5).astype(np.uint8)
        roi = out[box[1] : box[3], box[0] : box[2]]
        alpha = (warm.astype(np.float32) / 255.0 * 0.8)[..., None]
        roi[:] = (roi * (1 - alpha) + colour * alpha).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return buf.tobytes() if ok else None

    def writer_stats(self) -> WriterStats:
        return self.writer.stats()

    def inference_stats(self) -> InferenceStats:
        return InferenceStats.total([w.stats() for w in self.inference])
