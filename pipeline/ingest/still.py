"""Still-scene keyframe decoding (on by default, ``[gate] still_decode_interval_s``, 0: off): in
a scene where nothing moves, decode a keyframe only every few seconds; when something changes,
decode every keyframe again and recover the skipped one where the change began.

On the phased throughput trial it sustained more parking cameras within the latency bound than
every keyframe decoded (README, "Still-scene decoding"). It was opt-in from f9ec951 to
2026-12-07: on the burst trial (every camera's scene changes in the same second) it sustained
fewer, because that trial's 5 s dwell made every camera's alert due 2 s after its change was
noticed; a parking rule now holds it to a third of its dwell. A recovered keyframe is
marked (``Frame.recovered``): analyzers date by it but alert on the current keyframe, since it
is analysed a GOP or more after its time; from an interval before an analyzer's timer may
decide (an alert, a stay's end: ``Analyzer.timer_due_s``) the source decodes every keyframe.

A street camera's keyframe decode is most of what it costs (68 % of a parking camera's CPU,
py-spy on the 32-camera throughput trial), and most community cameras look at a still scene
most of the time: a parked car, an empty lane at night. The change gate
(``pipeline.detect.gate``) already spares the detector those keyframes; this spares the
decoder, the colour conversion and the analyzers' per-frame work.

The decision to decode keyframe *n* is taken before it is decoded, so it cannot depend on its
content: while the scene is still, a keyframe is decoded when ``interval_s`` have passed since
the last one decoded; each decoded keyframe's thumbnail (luma of the zones' bounding box,
area-averaged, brightness-normalised: the change gate's measure and thresholds) is compared with
the previous decoded one. A change means the scene is *active*: the skipped keyframes since the
previous decoded one are decoded now until the first that already shows the change, which is
delivered first, so the analyzers see the arrival at keyframe resolution (the start time and
first photo of a stay that settles within one GOP are the same as with every keyframe decoded;
one that takes longer is dated from the current keyframe), and every keyframe is decoded
until ``still_after`` in a row show no change. What this costs is bounded and stated: a change
is noticed up to ``interval_s`` minus one GOP late (dated right by the recovered keyframe); a
change that comes and goes between two decoded keyframes (someone walking through in a few
seconds) is not seen, which no rule that waits minutes for a stay needs. The interval is never
longer than the camera's rules can use (``Analyzer.max_frame_gap_s``: half a parking rule's
``max_gap_s``). Frame times are the frames' own.

Compressed-domain signals (the GOP's byte count) were considered and not used: on the intel
parking clip (``shared/data/parking``) the P-frame bytes follow the encoder's rate control
rather than the moving cars, and a constant-bitrate camera's bytes carry no motion at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import ZoneConfig
from pipeline.imaging import area_shrink

_THUMB_W = 160
T = TypeVar("T")
Roi = tuple[float, float, float, float]


def zones_roi(zones: Sequence[ZoneConfig], pad: float = 0.05) -> Roi:
    """The zones' bounding box (normalised, padded); the whole picture without zones."""
    if not zones:
        return (0.0, 0.0, 1.0, 1.0)
    xs = [x for z in zones for x, _ in z.polygon]
    ys = [y for z in zones for _, y in z.polygon]
    return (
        max(0.0, min(xs) - pad), max(0.0, min(ys) - pad),
        min(1.0, max(xs) + pad), min(1.0, max(ys) + pad),
    )  # fmt: skip


def grey_thumbnail(image: NDArray[np.uint8], roi: Roi) -> NDArray[np.float32]:
    """A small, blurred grey thumbnail of ``roi`` of a BGR image or a luma plane, scaled to a
    mean of 128 (auto-exposure and slow light changes vanish; area averaging removes noise)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = roi
    crop = image[round(y1 * h) : max(round(y2 * h), round(y1 * h) + 1),
                 round(x1 * w) : max(round(x2 * w), round(x1 * w) + 1)]  # fmt: skip
    th = max(8, round(_THUMB_W * crop.shape[0] / max(1, crop.shape[1])))
    small = area_shrink(crop, (_THUMB_W, th))
    if small.ndim == 3:
        small = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), np.uint8)
    grey = np.asarray(cv2.GaussianBlur(small.astype(np.float32), (3, 3), 0), np.float32)
    return np.asarray(grey * (128.0 / max(float(grey.mean()), 1.0)), np.float32)


def thumbnails_differ(
    a: NDArray[np.float32], b: NDArray[np.float32], pixel_delta: float, min_fraction: float
) -> bool:
    return a.shape != b.shape or float(np.mean(np.abs(a - b) > pixel_delta)) >= min_fraction


@dataclass(frozen=True, slots=True)
class StillSettings:
    interval_s: float = 6.0  # a still scene's keyframes are decoded this far apart
    roi: Roi = (0.0, 0.0, 1.0, 1.0)
    pixel_delta: float = 12.0
    min_changed_fraction: float = 0.003
    still_after: int = 2  # unchanged decoded keyframes in a row before skipping again


class StillDecoder(Generic[T]):
    """Per camera, in its source thread: which keyframes to decode. Calls, per keyframe:
    ``wants(t)`` (t: frame time); if False the caller keeps the packet (``hold``), else decodes it
    and passes its luma to ``changed``; when that is True the caller decodes the held packets
    (``take_held``) in order until one ``began_here`` and delivers that one before the keyframe.

    One, not all: a live camera's frame queue keeps two frames and drops the older when a
    third comes (the newest is the one worth analysing), so more would push the change's
    first keyframe out; the keyframes between it and the current one add nothing the
    analyzers need (time comes from the frames)."""

    def __init__(self, settings: StillSettings) -> None:
        self.s = settings
        self._ref: NDArray[np.float32] | None = None
        self._before: NDArray[np.float32] | None = None  # the decoded keyframe before _ref
        self._last_decoded_s: float | None = None
        self._gop_s = 0.0
        self._last_key_s: float | None = None
        self._unchanged = 0
        self._held: list[T] = []
        self.skipped = 0

    def reset(self) -> None:
        """A new connection: nothing is known about the scene."""
        self._ref = self._before = None
        self._last_decoded_s = self._last_key_s = None
        self._unchanged = 0
        self._held.clear()

    def wants(self, time_s: float, timer_due_s: float = math.inf) -> bool:
        """Decode the keyframe at ``time_s``? ``timer_due_s``: when an analyzer's timer may
        decide (a dwell running out, an unseen stay's gap: ``Analyzer.timer_due_s``), which
        must come on time, not at the next decoded keyframe: every keyframe is decoded from
        an interval before it (the due time is the analysis thread's, a little behind)."""
        if self._last_key_s is not None and time_s > self._last_key_s:
            step = time_s - self._last_key_s
            self._gop_s = step if self._gop_s == 0.0 else 0.8 * self._gop_s + 0.2 * step
        self._last_key_s = time_s
        # decode this one if skipping it would leave the next decoded keyframe too far away
        wanted = (
            time_s + self.s.interval_s >= timer_due_s
            or self._ref is None
            or self._last_decoded_s is None
            or self._unchanged < self.s.still_after
            or time_s - self._last_decoded_s + 0.5 * self._gop_s >= self.s.interval_s
        )
        if wanted:
            self._last_decoded_s = time_s
        return wanted

    def hold(self, item: T) -> None:
        self._held.append(item)
        self.skipped += 1

    def take_held(self) -> list[T]:
        held, self._held = self._held, []
        return held

    def changed(self, luma: NDArray[np.uint8]) -> bool:
        """Record the keyframe ``wants`` asked for; True: it differs from the previous one."""
        thumb = grey_thumbnail(luma, self.s.roi)
        changed = self._differs(thumb, self._ref)
        self._before, self._ref = self._ref, thumb
        self._unchanged = 0 if changed else self._unchanged + 1
        if not changed:
            self._held.clear()  # the scene stood still across them: nothing to recover
        return changed

    def began_here(self, luma: NDArray[np.uint8]) -> bool:
        """For a held keyframe decoded after ``changed`` said True: does it already differ
        from the still scene before (so the change began here)?"""
        return self._differs(grey_thumbnail(luma, self.s.roi), self._before)

    def _differs(self, thumb: NDArray[np.float32], ref: NDArray[np.float32] | None) -> bool:
        return ref is None or thumbnails_differ(
            thumb, ref, self.s.pixel_delta, self.s.min_changed_fraction
        )
