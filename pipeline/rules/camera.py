"""Per-camera analysis state: tracker + analyzers, reset on reconnect, closed explicitly."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from pipeline.config import (
    CameraConfig,
    EvidenceConfig,
    GateConfig,
    ModelConfig,
    SiteConfig,
)
from pipeline.detect.detector import OnnxScorer
from pipeline.detect.gate import ChangeGate, GateSettings
from pipeline.detect.plate_lookups import InlinePlateService, PlateService, PlateWorker
from pipeline.detect.plates import PlateDetector, PlateReader
from pipeline.detect.track import ByteTracker
from pipeline.errors import ModelError
from pipeline.rules.base import Analyzer, SharedModels
from pipeline.rules.integrity import ViewGuard
from pipeline.rules.motion import MotionExtractor
from pipeline.rules.registry import kind_of_rule
from pipeline.types import DecodeMode, Detections, EventNotice, Frame, MotionSample

logger = logging.getLogger(__name__)

AnalyzerFactory = Callable[[CameraConfig, SiteConfig, EvidenceConfig], list[Analyzer]]


def build_analyzers(
    camera: CameraConfig,
    site: SiteConfig,
    ev: EvidenceConfig,
    models: SharedModels | None = None,
) -> list[Analyzer]:
    """One analyzer per configured rule (``models``: what they share; none: no models)."""
    shared = models or SharedModels()
    return [kind_of_rule(rule).build(camera, rule, site, ev, shared) for rule in camera.rules]


def load_shared_models(
    model: ModelConfig, cameras: Sequence[CameraConfig], *, plate_worker: bool = False
) -> SharedModels:
    """The models these cameras' rules need, each loaded once: the bins classifier where a
    bins rule runs and its file exists (it is optional), the plate reader where a parking rule
    reads plates (its detector must exist). ``plate_worker``: plates are read on a
    ``PlateWorker`` thread (the caller starts and stops it), else inline."""
    wanted = {m for c in cameras for r in c.rules for m in r.shared_models()}
    bins = None
    if "bins_classifier" in wanted and model.bins_classifier.is_file():
        bins = OnnxScorer(model.bins_classifier, model.intra_op_threads)
    plates: PlateService | None = None
    if "plates" in wanted:
        colour = model.plate_colour if model.plate_colour.is_file() else None
        try:
            detector = PlateDetector(model.plate_detector, threads=model.intra_op_threads)
            reader = PlateReader(detector, colour_model=colour, threads=model.intra_op_threads)
            plates = PlateWorker(reader) if plate_worker else InlinePlateService(reader)
        except ModelError as e:
            # Parking works without plates; the reports then say no plate was read.
            logger.warning("plate reading is off: %s", e)
    return SharedModels(bins=bins, plates=plates)


def choose_decode_mode(camera: CameraConfig, analyzers: list[Analyzer]) -> DecodeMode:
    """The cheapest decoding that serves every analyzer of the camera (unless forced)."""
    if camera.decode != "auto":
        return DecodeMode(camera.decode)
    modes = {a.decode_mode for a in analyzers}
    if DecodeMode.FULL in modes:
        return DecodeMode.FULL
    if DecodeMode.SAMPLED in modes:
        return DecodeMode.SAMPLED
    return DecodeMode.KEYFRAMES


class CameraPipeline:
    """Owned by the analysis thread; ``latest`` is read (never mutated) by API threads."""

    def __init__(
        self,
        camera: CameraConfig,
        analyzers: list[Analyzer],
        gate: GateConfig | None = None,
        *,
        guard: ViewGuard | None = None,
        rebuild: Callable[[], list[Analyzer]] | None = None,
    ) -> None:
        """``guard``: the camera's integrity check, which pauses the analyzers while its view
        is wrong; ``rebuild``: fresh analyzers for when the view is right again (what the old
        ones learned of the scene belongs to the view before)."""
        self.camera = camera
        self.analyzers = analyzers
        self.guard = guard
        self._rebuild = rebuild
        self.classes: frozenset[int] = frozenset().union(*(a.classes for a in analyzers))
        self.decode_mode = choose_decode_mode(camera, analyzers)
        self.max_frame_gap_s = min((a.max_frame_gap_s for a in analyzers), default=math.inf)
        # read by the camera's source thread (still-scene decoding): a plain float
        self.timer_due_s = math.inf
        self.skip_deblocking = (
            camera.skip_deblocking
            if camera.skip_deblocking is not None
            else bool(analyzers) and not any(a.clean_pictures for a in analyzers)
        )
        self._tracker = ByteTracker() if self.classes else None
        self._epoch = -1
        self.latest: tuple[Frame, Detections] | None = None
        g = gate or GateConfig()
        self.gate = ChangeGate(
            GateSettings(g.enabled, g.pixel_delta, g.min_changed_fraction, g.max_skip_s),
            camera.zones,
        )
        self._last_raw = Detections.empty()
        self.faults = 0  # analyzer calls that raised (see _each)

    def motion_extractor(self) -> MotionExtractor | None:
        """A motion front end for the source thread, if an analyzer needs per-frame motion."""
        needs = [a.motion for a in self.analyzers if a.motion is not None]
        return MotionExtractor.serving(self.camera.id, needs)

    def process_motion(self, sample: MotionSample) -> list[EventNotice]:
        notices: list[EventNotice] = []
        if self.guard is not None and self.guard.paused:
            return notices
        notices.extend(self._each(lambda a: a.observe_motion(sample), sample.time_s))
        return notices

    def wants_detection(self, frame: Frame) -> bool:
        """Called by an inference worker before detection (one frame per camera at a time)."""
        if self.guard is not None and self.guard.paused:
            return False
        return bool(self.classes) and self.gate.should_detect(frame)

    def process(self, frame: Frame, detections: Detections | None) -> list[EventNotice]:
        """Analyse one frame; ``detections`` None means "unchanged, reuse the last ones"."""
        notices: list[EventNotice] = []
        if self.guard is not None:
            was_paused = self.guard.paused
            notices.extend(self.guard.observe(frame))
            if self.guard.paused and not was_paused:
                for analyzer in self.analyzers:  # what they would see next is meaningless
                    notices.extend(analyzer.close(frame.time_s, "camera_tamper"))
            elif was_paused and not self.guard.paused:
                self._fresh_analyzers()
            if self.guard.paused:
                self.latest = (frame, Detections.empty())
                return notices
        if detections is None:
            detections = self._last_raw
        else:
            self._last_raw = detections
        if frame.epoch != self._epoch:
            self._epoch = frame.epoch
            if self._tracker is not None:
                self._tracker.reset()  # ids must not link objects across a stream gap
        if self._tracker is not None:
            detections = self._tracker.update(detections, frame.time_s)
        self.latest = (frame, detections)
        seen = detections
        notices.extend(self._each(lambda a: a.observe(frame, seen), frame.time_s))
        self.timer_due_s = min((a.timer_due_s for a in self.analyzers), default=math.inf)
        return notices

    def confirm_view(self) -> list[EventNotice]:
        """An integrator accepts the camera's view now as its reference (after redrawing its
        zones, if it moved for good): a tamper event ends and the rules start afresh."""
        if self.guard is None or self.latest is None:
            return []
        was_paused = self.guard.paused
        notices = self.guard.confirm(self.latest[0])
        if was_paused:
            self._fresh_analyzers()
        return notices

    def _each(
        self, call: Callable[[Analyzer], list[EventNotice]], time_s: float
    ) -> list[EventNotice]:
        """``call`` on every analyzer. One that fails (a bug met by some scene) is logged with
        the camera and rule, its open events are ended and it starts afresh: the camera's
        other rules, and every other camera on this analysis thread, go on."""
        notices: list[EventNotice] = []
        for i, analyzer in enumerate(self.analyzers):
            try:
                notices.extend(call(analyzer))
            except Exception:
                self.faults += 1
                logger.exception(
                    "camera %s: rule %s failed at %.3f; its open events end and it starts afresh",
                    self.camera.id, analyzer.rule_id, time_s,
                )  # fmt: skip
                notices.extend(self._restart(i, time_s))
        return notices

    def _restart(self, i: int, time_s: float) -> list[EventNotice]:
        old = self.analyzers[i]
        try:
            ended = old.close(time_s, "analyzer_fault")
        except Exception:
            logger.exception("camera %s: rule %s could not end its events", self.camera.id,
                             old.rule_id)  # fmt: skip
            ended = []
        if self._rebuild is not None:
            self.analyzers[i] = self._rebuild()[i]
        return ended

    def _fresh_analyzers(self) -> None:
        if self._rebuild is not None:
            self.analyzers = self._rebuild()
        self._last_raw = Detections.empty()
        if self._tracker is not None:
            self._tracker.reset()

    def close(self, time_s: float, reason: str) -> list[EventNotice]:
        notices: list[EventNotice] = []
        if self.guard is not None:
            notices.extend(self.guard.close(time_s, reason))
        for analyzer in self.analyzers:
            notices.extend(analyzer.close(time_s, reason))
        return notices
