"""Camera integrity: a camera that was turned, covered or put out of focus (视频遮挡/移位/失焦).

Every zone, façade and ground calibration of a camera is drawn on its view; if the camera is
turned (a PTZ left off its preset, a bracket knocked) they silently point at something else,
and a covered or defocused camera sees nothing. So each camera's view is compared, a few times
a minute, with a reference view of itself:

* **structure**: where the reference has its strongest edges (the top share of its gradient
  magnitudes: relative, so a dimmer or brighter picture has the same edges), the view now must
  have edges too, within a pixel or two. People and cars passing cover a part; a camera pointed
  elsewhere keeps only chance agreement. ``match`` is the share of the reference's edges found
  in place.
* **shift**: a camera turned by a degree or two still has most of its long horizontal and
  vertical edges in place (an edge slid along itself overlaps itself), so the global shift of
  the edge picture is estimated too, by phase correlation; passing objects do not move its peak.
* **detail**: the mean gradient magnitude relative to the mean brightness (dusk dims both
  alike), now over the reference's. A cover (a bag, paint, a hand) leaves an almost flat
  picture.
* **sharpness**: the Laplacian's energy relative to the gradient's, now over the reference's;
  it falls when the lens is out of focus even though the scene's outlines remain.

A departure must last ``hold_s`` (a bus filling the view for a few seconds is not tampering);
it then becomes one ``camera_tamper`` event (moved / occluded / defocused), the camera's rules
are paused (their open events end with reason ``camera_tamper``: what they would see next is
meaningless) until an integrator confirms the view as the new reference (after redrawing the
zones, if it moved for good) or the view returns to its reference by itself (a PTZ back on its
preset). The reference follows slow changes (dusk, seasons) by being renewed while the view
matches it well.

Everything runs on grey thumbnails 320 and 640 pixels wide: ~1.4 ms per check on one core
(``benchmarks/thumbnails.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, TypedDict

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config import IntegrityConfig
from pipeline.imaging import area_shrink
from pipeline.rules.base import IdFactory, new_event_id
from pipeline.types import (
    CameraViewDetails,
    Event,
    EventNotice,
    EventState,
    EventType,
    Frame,
)

_THUMB_W = 320
_EDGE_SHARE = 0.12  # the strongest 12 % of gradient magnitudes are the view's "edges"
_MIN_EDGE_MAG = 6.0  # … and never the noise of a flat picture
_TOLERANCE_PX = 2  # vibration and re-encoding move edges by a pixel or two
# A single check against a run (a bus crossing a turned camera's view, a moment the shift is
# not found) does not restart its hold.
_TOLERATED = 1


@dataclass(frozen=True, slots=True)
class ViewMeasure:
    """One comparison of the view with its reference."""

    match: float  # share of the reference's edges found in place now (0-1)
    detail: float  # gradient magnitude over brightness, now / reference's
    sharpness: float  # relative Laplacian energy now / reference's
    shift: float  # global shift of the view, share of its width
    shift_response: float  # phase-correlation peak strength (0-1): how sure the shift is


@dataclass(slots=True)
class _Run:
    """Checks one way in a row, timed against the hold; one check the other way is tolerated."""

    since: float | None = None
    contrary: int = 0

    def along(self, t: float) -> float:
        """A check this way at ``t``: how long the run has lasted."""
        self.contrary = 0
        if self.since is None:
            self.since = t
        return t - self.since

    def against(self) -> None:
        self.contrary += 1
        if self.contrary > _TOLERATED:
            self.since = None

    def reset(self) -> None:
        self.since, self.contrary = None, 0


@dataclass(frozen=True, slots=True)
class View:
    """What a check keeps of a view: the reference, or the view now."""

    mag: NDArray[np.float32]  # gradient magnitude of the thumbnail
    edges: NDArray[np.uint8]
    reach: NDArray[np.uint8]  # edges widened by the tolerance
    detail: float
    sharpness: float


def view_of(image: NDArray[np.uint8]) -> View:
    h, w = image.shape[:2]
    th = max(8, round(_THUMB_W * h / max(1, w)))
    grey = np.asarray(
        cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image, np.uint8
    )
    # OpenCV's area resize at a fractional factor (960 → 640, the analysis frame of a 1080p
    # camera) cost a millisecond, half the check: bilinear for the part of the factor under 2
    # (a view is only ever compared with a reference made the same way)
    fine = area_shrink(grey, (2 * _THUMB_W, 2 * th), rest=cv2.INTER_LINEAR)
    # the thumbnail from the fine one (an exact halving) rather than a second pass over the frame
    small = np.asarray(
        cv2.resize(fine.astype(np.float32), (_THUMB_W, th), interpolation=cv2.INTER_AREA),
        np.float32,
    )
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.asarray(cv2.magnitude(gx, gy), np.float32)
    flat = mag.ravel()
    rank = int((1.0 - _EDGE_SHARE) * (flat.size - 1))
    cut = max(_MIN_EDGE_MAG, float(np.partition(flat, rank)[rank]))
    edges = (mag >= cut).astype(np.uint8)
    k = 2 * _TOLERANCE_PX + 1
    reach = np.asarray(cv2.dilate(edges, np.ones((k, k), np.uint8)), np.uint8)
    # gradient over brightness: dusk dims both alike, a cover flattens the picture
    detail = float(mag.mean()) / (float(small.mean()) + 10.0)
    # Laplacian over gradient, at twice the thumbnail's resolution (a lens a little out of
    # focus blurs by a few pixels of the full picture): a blurred edge keeps its gradient
    # longer than its curvature. On the 8-bit picture in 16-bit integers (exact for 3 × 3
    # kernels), summed by OpenCV, and the gradient as |gx| + |gy|: float images of the whole
    # fine picture cost more than the filters themselves, and the measure is only ever
    # compared with the same camera's reference.
    lap = _l1(cv2.Laplacian(fine, cv2.CV_16S, ksize=3))
    grad = _l1(cv2.Sobel(fine, cv2.CV_16S, 1, 0, ksize=3))
    grad += _l1(cv2.Sobel(fine, cv2.CV_16S, 0, 1, ksize=3))
    sharpness = lap / max(grad, 1e-3 * fine.size)
    return View(mag, edges, reach, detail, sharpness)


def _l1(a: NDArray[np.integer[Any] | np.floating[Any]]) -> float:
    return float(cv2.norm(a, cv2.NORM_L1))


@functools.cache
def _hanning(w: int, h: int) -> NDArray[np.float32]:
    """The phase-correlation window of a thumbnail size (one per camera resolution)."""
    return np.asarray(cv2.createHanningWindow((w, h), cv2.CV_32F), np.float32)


def compare(ref: View, now: View) -> ViewMeasure:
    n_ref = int(ref.edges.sum())
    found = int((ref.edges & now.reach).sum())
    h, w = ref.mag.shape
    (dx, dy), response = cv2.phaseCorrelate(ref.mag, now.mag, _hanning(w, h))
    return ViewMeasure(
        match=found / n_ref if n_ref else 0.0,
        detail=now.detail / max(ref.detail, 1e-3),
        sharpness=now.sharpness / max(ref.sharpness, 1e-6),
        shift=float(np.hypot(dx, dy)) / w,
        shift_response=float(response),
    )


def verdict(m: ViewMeasure, cfg: IntegrityConfig) -> str | None:
    """What is wrong with the view, or None."""
    if m.detail < cfg.occluded_detail:
        return "occluded"
    shifted = m.shift >= cfg.min_shift and m.shift_response >= cfg.min_shift_response
    if shifted or m.match < cfg.min_match:
        # a view out of focus loses its finest edges first, so few are found in place
        return "defocused" if not shifted and m.sharpness < cfg.defocus_sharpness else "moved"
    # outlines in place but soft: out of focus, misted or rain on the lens
    return "defocused" if m.sharpness < cfg.defocus_sharpness else None


class ViewGuard:
    """Integrity of one camera's view; owned by the analysis thread (see module docstring)."""

    def __init__(
        self, camera_id: str, cfg: IntegrityConfig, *, new_id: IdFactory = new_event_id
    ) -> None:
        self.camera_id = camera_id
        self.cfg = cfg
        self._new_id = new_id
        self._ref: View | None = None
        self._ref_time_s = 0.0
        self._last_check_s: float | None = None
        self._bad = _Run()  # the view wrong, before an event
        self._good = _Run()  # the view right again, while an event is open
        self.event: Event | None = None
        self.last: ViewMeasure | None = None

    @property
    def paused(self) -> bool:
        """Whether the camera's rules must not run (a tamper event is open)."""
        return self.event is not None

    @property
    def state(self) -> str:
        """ "learning" (no reference yet), "ok", or the open event's kind."""
        if self.event is not None:
            assert isinstance(self.event.details, CameraViewDetails)
            return self.event.details.kind
        return "learning" if self._ref is None else "ok"

    def observe(self, frame: Frame) -> list[EventNotice]:
        t = frame.time_s
        if self._last_check_s is not None and t - self._last_check_s < self.cfg.every_s:
            return []
        self._last_check_s = t
        now = view_of(frame.image)
        if self._ref is None or self._ref.mag.shape != now.mag.shape:
            self._ref, self._ref_time_s = now, t
            return []
        m = compare(self._ref, now)
        self.last = m
        kind = verdict(m, self.cfg)
        if self.event is not None:
            return self._while_open(frame, m, kind)
        if kind is None:
            self._bad.against()
            if (self._bad.since is None and m.match >= self.cfg.renew_match
                    and t - self._ref_time_s >= self.cfg.renew_s):  # fmt: skip
                self._ref, self._ref_time_s = now, t  # follows dusk, dawn and seasons
            return []
        if self._bad.along(t) < self.cfg.hold_s:
            return []
        started = self._bad.since
        assert started is not None
        self._good.reset()
        self.event = Event(
            event_id=self._new_id(t),
            event_type=EventType.CAMERA_TAMPER,
            state=EventState.STARTED,
            camera_id=self.camera_id,
            zone_id=None,
            rule_id=None,
            started_at=started,
            alerted_at=t,
            updated_at=t,
            ended_at=None,
            score=round(1.0 - min(m.match, 1.0), 3),
            details=self._details(kind, m),
        )
        return [EventNotice(event=self.event, frame=frame)]

    def _details(self, kind: str, m: ViewMeasure) -> CameraViewDetails:
        return CameraViewDetails(kind=kind, reference_time_s=self._ref_time_s, **_reported(m))

    def _while_open(self, frame: Frame, m: ViewMeasure, kind: str | None) -> list[EventNotice]:
        """Open event: ends by itself only once the view has been back for ``hold_s``."""
        t = frame.time_s
        if kind is not None:
            self._good.against()
            return []
        if self._good.along(t) < self.cfg.hold_s:
            return []
        return self._end(frame, "restored", m)

    def confirm(self, frame: Frame) -> list[EventNotice]:
        """An integrator accepts the view now as the camera's reference."""
        notices = self._end(frame, "confirmed", self.last) if self.event is not None else []
        self._ref, self._ref_time_s = view_of(frame.image), frame.time_s
        self._bad.reset()
        return notices

    def close(self, time_s: float, reason: str) -> list[EventNotice]:
        """End an open event without a frame (shutdown, reconfigure)."""
        if self.event is None:
            return []
        return [EventNotice(event=self._ended(time_s, reason, None))]

    def _end(self, frame: Frame, reason: str, m: ViewMeasure | None) -> list[EventNotice]:
        return [EventNotice(event=self._ended(frame.time_s, reason, m), frame=frame)]

    def _ended(self, t: float, reason: str, m: ViewMeasure | None) -> Event:
        """The open event, ended at ``t``; with the measures the view came back to, if any."""
        ev = self.event
        assert ev is not None
        assert isinstance(ev.details, CameraViewDetails)
        self.event = None
        self._good.reset()
        self._bad.reset()
        details = replace(ev.details, end_reason=reason)
        if m is not None:
            details = replace(details, **_reported(m))
        return replace(ev, state=EventState.ENDED, updated_at=t, ended_at=t, details=details)


class _Reported(TypedDict):
    match: float
    detail: float
    sharpness: float
    shift: float


def _reported(m: ViewMeasure) -> _Reported:
    """The measures as reports carry them."""
    return {"match": round(m.match, 3), "detail": round(m.detail, 3),
            "sharpness": round(m.sharpness, 3), "shift": round(m.shift, 4)}  # fmt: skip
