"""Small-object motion at full frame rate inside façade regions (高空抛物 front end).

Runs in the camera's source thread on the luma (Y) plane of every decoded frame, so no colour
conversion is paid and cameras run in parallel (OpenCV releases the GIL). Only the bounding box
of the façade zones is processed, optionally downscaled (``scale``) where objects of interest
stay ≥ 2 px.

A pixel belongs to a moving object at time t when it differs both from a slowly updated
background (running average, not updated where something moves) and from the frame two steps
earlier. A single frame difference shows every moving object twice (old and new place) and the
plain three-frame double difference still splits slow objects into a leading and a trailing
blob; with the background term only where the object is *now* remains, which is what a
trajectory needs. The threshold adapts to the frame's noise (median absolute difference). A
frame in which a large part of the region changes at once (exposure jump, camera shake, a
curtain of rain) yields no blobs and is flagged, instead of flooding the tracker.

Why not MOG2 or a learned detector: at 25 fps and full resolution a mixture-of-Gaussians model
costs ~10 ms per megapixel per frame and still needs several frames to absorb a moving object;
falling objects of 3-10 px are below what COCO detectors find. Differencing costs ~1-3 ms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import ZoneConfig, whole_step
from pipeline.types import Blobs, MotionSample

# Above this fraction of changed pixels the frame is a global change, not objects.
GLOBAL_CHANGE_FRACTION = 0.02
_MEDIAN_STEP = 4  # sample every 4th pixel in each direction for the noise estimate
# Per-frame weight of the running background (time constant ~2 s at 25 fps).
BACKGROUND_RATE = 0.02
MAX_BLOBS = 64
# The region is grown to a multiple of this many full-resolution px (see _setup).
_ALIGN_PX = 8
_SLOW_EVERY = 2
# Where motion is normal (foliage, flags, water, a busy balcony): the share of recent frames in
# which each cell of ACTIVITY_CELL × ACTIVITY_CELL analysed pixels held moving pixels, sampled
# every _SLOW_EVERY frames and averaged over ACTIVITY_WINDOW samples (~4 min at 25 fps) once
# warmed up; the first ACTIVITY_WARM samples weigh as if that many had been still, so that one
# object crossing a cell early on does not mark it active.
ACTIVITY_CELL = 4
ACTIVITY_WINDOW = 3000
ACTIVITY_WARM = 100
# ...but a cell that moved in this many of the first samples already is dynamic texture, at its
# plain share of them: the first seconds of a new camera are foliage's too (a falling object
# crosses a cell in one or two samples).
_WARM_HITS = 3
# Blobs up to this many activity cells wide and high are looked up together (_blob_activity).
_SPAN = 6


def _u8(a: object) -> NDArray[np.uint8]:
    return np.asarray(a, np.uint8)


class _Sway:
    """Undoes a swaying camera's shifts: each frame is registered to the background.

    A camera on a pole or a bracket moves with wind by a pixel or more, several times a second;
    every edge of the façade then differs from the background and from the frame before, and
    objects are lost among them (both development throws were missed with a 1 px sway,
    ``benchmarks/throwing_formats.py``). The shift is measured coarsely by phase correlation
    on a reduced picture (any shift up to ``MAX_PX``), refined by Lucas-Kanade steps on the
    background's gradients over every other pixel of every other row (≈0.1 px on the
    development footage), and the frame is resampled onto the background; what registration
    leaves at strong edges (``RESIDUAL_PX`` times the gradient) is not counted as motion. A
    still camera pays one coarse check every ``CHECK_EVERY`` frames (every frame while it is
    new); registration runs only while it brings frames closer to the background, until
    ``CALM_FRAMES`` frames in a row shift less than ``OFF_PX``.
    """

    CHECK_EVERY = 12
    WARM_FRAMES = 100
    ON_PX = 0.35  # analysed pixels
    OFF_PX = 0.2
    CALM_FRAMES = 250
    MAX_PX = 12.0  # beyond this the view itself moved (a global change), not a sway
    RESIDUAL_PX = 0.15  # registration error allowed for at edges (measured ≈0.1 px)
    _MARGIN = 14  # analysed pixels left out of the fine steps (shifted-in borders)
    _FINE_STEPS = 2
    _GRADIENTS_EVERY = 8  # background updates between recomputing its gradients

    def __init__(self) -> None:
        self.active = False
        self.shift = np.zeros(2)
        # the last frames' shifts while registering, for the cameras screen
        self.recent: deque[tuple[float, float]] = deque(maxlen=self.CALM_FRAMES)
        self.edge_allowance: NDArray[np.uint8] | None = None
        self._frames = 0
        self._calm = 0
        self._ref_of: object = None
        self._ref_age = 0
        self._shape: tuple[int, ...] = ()
        self._small: NDArray[np.float32] | None = None
        self._window: NDArray[np.float32] | None = None
        self._reduce = 1
        self._grid = (slice(0, None), slice(0, None))
        self._map: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        self._g: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        self._inv_g: NDArray[np.float64] | None = None

    def reset(self) -> None:
        self.active = False
        self.shift = np.zeros(2)
        self.recent.clear()
        self._calm = 0
        self._ref_of = None
        self._shape = ()

    def _reference(self, bg: NDArray[np.float32]) -> None:
        """Per background update (every _SLOW_EVERY frames); the gradients less often."""
        if self._ref_of is bg:
            return
        self._ref_of = bg
        h, w = bg.shape
        r = self._reduce = max(1, min(4, min(w, h) // 96))
        self._small = np.asarray(
            cv2.resize(bg, (w // r, h // r), interpolation=cv2.INTER_AREA), np.float32
        )
        self._ref_age += 1
        if self._shape == bg.shape and self._ref_age < self._GRADIENTS_EVERY:
            return
        self._shape, self._ref_age = bg.shape, 0
        self._window = np.asarray(cv2.createHanningWindow((w // r, h // r), cv2.CV_32F), np.float32)
        m = self._MARGIN if min(w, h) > 4 * self._MARGIN else 0
        self._grid = (slice(m, h - m, 2), slice(m, w - m, 2))
        ys = np.arange(h, dtype=np.float32)[self._grid[0]]
        xs = np.arange(w, dtype=np.float32)[self._grid[1]]
        mx, my = np.meshgrid(xs, ys)
        self._map = (mx, my)
        full_gx = np.asarray(cv2.Sobel(bg, cv2.CV_32F, 1, 0, ksize=3, scale=0.125), np.float32)
        full_gy = np.asarray(cv2.Sobel(bg, cv2.CV_32F, 0, 1, ksize=3, scale=0.125), np.float32)
        # What a residual misregistration of RESIDUAL_PX changes at each pixel: allowed for
        # before thresholding, so that strong edges do not flicker as motion.
        edge = np.abs(full_gx) + np.abs(full_gy)
        self.edge_allowance = _u8(cv2.convertScaleAbs(edge, alpha=self.RESIDUAL_PX))
        gx, gy = full_gx[self._grid].ravel(), full_gy[self._grid].ravel()
        self._g = (gx, gy)
        g = np.array([[gx @ gx, gx @ gy], [gx @ gy, gy @ gy]], np.float64)
        # a region without texture in both directions cannot be registered finely
        well_posed = np.linalg.det(g) > 1e-6 * max(1.0, float(g[0, 0] * g[1, 1]))
        self._inv_g = np.asarray(np.linalg.inv(g), np.float64) if well_posed else None

    def _coarse(self, cur: NDArray[np.uint8]) -> NDArray[np.float64]:
        assert self._small is not None
        assert self._window is not None
        r = self._reduce
        h, w = self._small.shape
        small = np.asarray(
            cv2.resize(cur, (w, h), interpolation=cv2.INTER_AREA), np.float32
        ) if r > 1 else cur.astype(np.float32)  # fmt: skip
        (sx, sy), _ = cv2.phaseCorrelate(self._small, small, self._window)
        return np.array([sx * r, sy * r])

    def _residual(
        self, cur: NDArray[np.uint8], ref: NDArray[np.float32], s: NDArray[np.float64]
    ) -> NDArray[np.float32]:
        """``cur`` shifted back by ``s`` minus the background, on the sampling grid."""
        assert self._map is not None
        mx, my = self._map
        shifted = cv2.remap(cur, mx + np.float32(s[0]), my + np.float32(s[1]), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        return np.asarray(shifted, np.float32).ravel() - ref

    def register(
        self, cur: NDArray[np.uint8], bg: NDArray[np.float32], full: NDArray[np.uint8], step: int
    ) -> NDArray[np.uint8]:
        """``cur`` (``full`` reduced ``step`` times) on the background's grid; ``cur`` itself
        where it is not shifted. A reduced picture is shifted at full resolution and reduced
        again: fine texture (tiles, brick) aliases when reduced, and a reduced picture shifted
        by a fraction of a pixel differs from the reduced shifted one, lighting up every such
        wall as change (half the frames of a swaying high-rise at scale 0.5)."""
        self._frames += 1
        # a new camera checks every frame at first: the activity map learns in those seconds
        # too, and unregistered sway would mark every edge as foliage
        if not self.active and self._frames > self.WARM_FRAMES and self._frames % self.CHECK_EVERY:
            return cur
        self._reference(bg)
        s = self._coarse(cur)
        if not self.active and float(np.hypot(*s)) < self.ON_PX:
            return cur
        if not np.all(np.isfinite(s)) or float(np.abs(s).max()) > self.MAX_PX:
            return self._keep(cur)
        ref = bg[self._grid].ravel()
        before = float(np.abs(cur[self._grid].ravel() - ref).mean())
        diff = self._residual(cur, ref, s)
        if self._inv_g is not None and self._g is not None:
            gx, gy = self._g
            for _ in range(self._FINE_STEPS):
                s = s - self._inv_g @ np.array([gx @ diff, gy @ diff])
                diff = self._residual(cur, ref, s)
        # Taken only where it brings the frame closer to the background: on a scene without
        # texture the correlation locks onto whatever moves (a leaf, the falling object).
        after = float(np.abs(diff).mean())
        if after >= (1.0 if self.active else 0.8) * before or float(np.abs(s).max()) > self.MAX_PX:
            return self._keep(cur)
        if not self.active:
            self.active, self._calm = True, 0
        self._settle(s)
        m = np.array([[1.0, 0.0, -s[0] * step], [0.0, 1.0, -s[1] * step]], np.float32)
        shifted = cv2.warpAffine(full, m, (full.shape[1], full.shape[0]), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        if step == 1:
            return _u8(shifted)
        return _u8(cv2.resize(shifted, (cur.shape[1], cur.shape[0]), interpolation=cv2.INTER_AREA))

    def _keep(self, cur: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """This frame unregistered (a calm one, for switching off)."""
        self._settle(np.zeros(2))
        return cur

    def _settle(self, s: NDArray[np.float64]) -> None:
        """``s`` taken as this frame's shift; registration ends after CALM_FRAMES calm ones."""
        self.shift = s
        self.recent.append((float(s[0]), float(s[1])))
        self._calm = self._calm + 1 if float(np.hypot(*s)) < self.OFF_PX else 0
        if self._calm >= self.CALM_FRAMES:
            self.active = False
            self.recent.clear()

    @property
    def border(self) -> int:
        """Width of the frame's edge that the shift filled with copies (no motion there)."""
        return int(np.ceil(float(np.abs(self.shift).max()))) + 1 if self.active else 0


@dataclass(frozen=True, slots=True)
class MotionNeeds:
    """What an analyzer asks of the per-frame motion front end (``Analyzer.motion``)."""

    zones: tuple[ZoneConfig, ...]
    scale: float
    threshold: float
    min_blob_px: int
    max_blob_px: int


class MotionExtractor:
    """Per camera; owned by that camera's source thread."""

    @classmethod
    def serving(cls, camera_id: str, needs: Sequence[MotionNeeds]) -> MotionExtractor | None:
        """One motion pass for every analyzer of a camera that needs one (None: none does);
        the zones of all, the knobs of the first."""
        if not needs:
            return None
        zones = {z.id: z for n in needs for z in n.zones}
        first = needs[0]
        return cls(camera_id, list(zones.values()), scale=first.scale,
                   threshold=first.threshold, min_blob_px=first.min_blob_px,
                   max_blob_px=first.max_blob_px)  # fmt: skip

    def __init__(
        self,
        camera_id: str,
        zones: Sequence[ZoneConfig],
        *,
        scale: float = 1.0,
        threshold: float = 10.0,
        min_blob_px: int = 3,
        max_blob_px: int = 4000,
    ) -> None:
        self.camera_id = camera_id
        self._zones = tuple(zones)
        step = whole_step(scale)
        self.scale = scale
        self._step = step
        self.threshold = threshold
        self.min_area = max(1.0, min_blob_px * scale * scale)
        self.max_area = max_blob_px * scale * scale
        self._size: tuple[int, int] | None = None
        self._roi = (0, 0, 0, 0)
        self._mask: NDArray[np.uint8] | None = None
        self._prev: list[NDArray[np.uint8]] = []
        self._bg: NDArray[np.float32] | None = None
        self._epoch = -1
        self._kernel = np.ones((3, 3), np.uint8)
        self._bg_u8: NDArray[np.uint8] | None = None
        self._noise: float | None = None
        self._frame = 0
        self._activity: NDArray[np.float32] | None = None
        self._activity_near: NDArray[np.float32] | None = None  # each cell's max with neighbours
        self._activity_n = 0
        self._saved: tuple[NDArray[np.float32], int, tuple[int, ...]] | None = None
        self._sway = _Sway()

    def _setup(self, width: int, height: int) -> None:
        xs = [x for z in self._zones for x, _ in z.polygon] or [0.0, 1.0]
        ys = [y for z in self._zones for _, y in z.polygon] or [0.0, 1.0]
        x1, x2 = max(0, int(min(xs) * width)), min(width, int(np.ceil(max(xs) * width)))
        y1, y2 = max(0, int(min(ys) * height)), min(height, int(np.ceil(max(ys) * height)))
        # The ROI is grown to whole blocks: an exact integer downscale runs ~30× faster than a
        # fractional one in OpenCV (0.07 vs 2.2 ms per megapixel).
        unit = self._step * max(1, _ALIGN_PX // self._step)
        (x1, x2), (y1, y2) = self._grow(x1, x2, width, unit), self._grow(y1, y2, height, unit)
        self._roi = (x1, y1, x2, y2)
        sw, sh = (x2 - x1) // self._step, (y2 - y1) // self._step
        mask = np.zeros((sh, sw), np.uint8)
        for z in self._zones:
            pts = (np.array(z.polygon) * [width, height] - [x1, y1]) / self._step
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
        if not self._zones:
            mask[:] = 255
        self._mask = mask
        self._size = (width, height)
        self._prev = []
        self._bg = None
        saved, self._saved = self._saved, None
        if saved is not None and saved[2] == (width, height, *self._roi):
            self._activity, self._activity_n = saved[0], saved[1]
            self._activity_near = self._dilate(self._warm_share())

    @staticmethod
    def _grow(lo: int, hi: int, size: int, unit: int) -> tuple[int, int]:
        """Smallest run of whole ``unit`` cells covering [lo, hi), kept inside [0, size)."""
        span = max(unit, min(-(-(hi - lo) // unit) * unit, size - size % unit))
        start = max(0, min(lo, size - span))
        return start, start + span

    def process(
        self, luma: NDArray[np.uint8], *, seq: int, epoch: int, pts_s: float, time_s: float
    ) -> MotionSample | None:
        """Feed one frame's Y plane (H, W); returns its motion once two earlier frames exist."""
        height, width = luma.shape[:2]
        if self._size != (width, height):
            self._setup(width, height)
        if epoch != self._epoch:
            self._prev = []
            self._bg = None
            self._noise = None
            self._epoch = epoch
            self._sway.reset()
        x1, y1, x2, y2 = self._roi
        roi = luma[y1:y2, x1:x2]
        assert self._mask is not None
        if self._step > 1:  # area average: an object ≥ 2n-1 px wide keeps its full contrast
            cur = _u8(
                cv2.resize(
                    roi, (self._mask.shape[1], self._mask.shape[0]), interpolation=cv2.INTER_AREA
                )
            )
        else:
            cur = np.ascontiguousarray(roi)
        if self._bg is not None and self._bg.shape == cur.shape:
            cur = self._sway.register(cur, self._bg, roi, self._step)
        prev = self._prev
        self._prev = [cur, *prev[:1]]
        if self._bg is None or self._bg.shape != cur.shape:
            self._bg = cur.astype(np.float32)
            self._bg_u8 = cur.copy()
            self._frame = 0
        if len(prev) < 2:
            return None
        self._frame += 1
        # Light, shadows and noise change slowly: the noise level and the background are
        # refreshed every _SLOW_EVERY frames (at a matching rate), which halves the per-frame
        # cost; what must be seen in every frame (the object) is.
        slow = self._frame % _SLOW_EVERY == 0
        if slow or self._noise is None:
            d1 = _u8(cv2.absdiff(cur, prev[0]))
            self._noise = float(np.median(d1[::_MEDIAN_STEP, ::_MEDIAN_STEP]))
        d2 = cv2.absdiff(cur, prev[1])
        assert self._bg_u8 is not None
        dbg = cv2.absdiff(cur, self._bg_u8)
        thr = self.threshold + 2.0 * self._noise
        # An object is where the frame differs from the background *and* from two frames ago.
        # (The plain double difference also lights up where the object was a moment ago, which
        # splits every slow object into a leading and a trailing blob.)
        both, region = cv2.min(dbg, d2), self._mask
        allowance = self._sway.edge_allowance if self._sway.active else None
        if allowance is not None and allowance.shape == both.shape:
            both = cv2.subtract(both, allowance)

        def above(t: float) -> tuple[NDArray[np.uint8], float]:
            m = _u8(cv2.bitwise_and(cv2.threshold(both, t, 255, cv2.THRESH_BINARY)[1], region))
            return m, float(cv2.countNonZero(m)) / max(1, m.size)

        border = self._sway.border
        if border:
            region = region.copy()
            region[:border], region[-border:], region[:, :border], region[:, -border:] = 0, 0, 0, 0
        moving, changed = above(thr)
        if changed > GLOBAL_CHANGE_FRACTION:
            # A camera at a low bitrate refreshes the whole picture at each keyframe: every
            # textured pixel shifts a little at once. Measured against this frame's own
            # change level, such a frame has its objects and little else; a shake or an
            # exposure jump still changes too much and stays a global change.
            level = float(np.median(both[::_MEDIAN_STEP, ::_MEDIAN_STEP]))
            if level > self._noise:
                thr = self.threshold + 2.0 * level
                moving, changed = above(thr)
        if slow:
            # The background follows the scene quickly where the frame matches it and only
            # very slowly where something differs from it: an object lingering for a few frames
            # must not soak into the background, or it leaves a ghost when it moves on.
            fg = cv2.dilate(cv2.threshold(dbg, thr, 255, cv2.THRESH_BINARY)[1], self._kernel)
            rate = 1.0 - (1.0 - BACKGROUND_RATE) ** _SLOW_EVERY
            cv2.accumulateWeighted(cur, self._bg, rate, mask=cv2.bitwise_not(fg))
            cv2.accumulateWeighted(cur, self._bg, rate / 10, mask=fg)
            self._bg_u8 = _u8(cv2.convertScaleAbs(self._bg))
        sample_kw = {
            "camera_id": self.camera_id, "seq": seq, "epoch": epoch, "pts_s": pts_s,
            "time_s": time_s, "changed_fraction": changed, "size": (width, height),
        }  # fmt: skip
        if changed > GLOBAL_CHANGE_FRACTION:
            return MotionSample(blobs=Blobs.empty(), global_change=True, **sample_kw)  # type: ignore[arg-type]
        if slow:  # every other frame is plenty for minutes-long statistics
            self._learn_activity(moving)
        blobs = self._blobs(moving, cur, prev[0])
        return MotionSample(blobs=blobs, global_change=False, **sample_kw)  # type: ignore[arg-type]

    def _learn_activity(self, moving: NDArray[np.uint8]) -> None:
        h, w = moving.shape
        cells = (max(1, w // ACTIVITY_CELL), max(1, h // ACTIVITY_CELL))
        hit = (cv2.resize(moving, cells, interpolation=cv2.INTER_AREA) > 0).astype(np.float32)
        if self._activity is None or self._activity.shape != hit.shape:
            self._activity = np.zeros_like(hit)
            self._activity_n = 0
        self._activity_n += 1
        rate = 1.0 / min(self._activity_n + ACTIVITY_WARM, ACTIVITY_WINDOW)
        cv2.accumulateWeighted(hit, self._activity, rate)
        # looked up for every blob of every frame, but changes only here
        self._activity_near = self._dilate(self._warm_share())

    def _warm_share(self) -> NDArray[np.float32]:
        """The activity as blobs see it: while warming up, a cell's plain share of the samples
        so far where it moved in _WARM_HITS of them (the running mean times its weight is
        that count exactly until the window fills)."""
        assert self._activity is not None
        n = self._activity_n
        if n >= ACTIVITY_WARM:
            return self._activity
        hits = self._activity * float(n + ACTIVITY_WARM)
        return np.where(hits >= _WARM_HITS - 0.01, hits / float(max(n, 1)), self._activity).astype(
            np.float32
        )

    @staticmethod
    def _dilate(activity: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray(cv2.dilate(activity, np.ones((3, 3), np.uint8)), np.float32)

    def save_activity(self, path: Path) -> None:
        """Keep the learned activity across restarts (a deploy must not make foliage new)."""
        if self._activity is None or self._size is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as f:
            np.savez(f, activity=self._activity, n=self._activity_n,
                     key=np.array([*self._size, *self._roi]))  # fmt: skip
        tmp.replace(path)

    def load_activity(self, path: Path) -> bool:
        """Start from a saved map; used once the first frame shows the same size and region
        (a changed zone or stream resolution starts afresh)."""
        try:
            with np.load(path) as data:
                act = np.asarray(data["activity"], np.float32)
                self._saved = (act, int(data["n"]), tuple(int(v) for v in data["key"]))
        except (OSError, KeyError, ValueError):
            return False
        return True

    def activity_map(self) -> NDArray[np.uint8] | None:
        """The learned activity (0-255) over the analysed region, for integrators to see
        where motion is normal (trees to leave out of the façade zone)."""
        if self._activity is None:
            return None
        return _u8(np.clip(self._activity * 255.0, 0, 255))

    @property
    def registration(self) -> tuple[float, float] | None:
        """The last frame's shift (analysed px) while the camera sways and is registered."""
        return (
            (float(self._sway.shift[0]), float(self._sway.shift[1])) if self._sway.active else None
        )

    @property
    def sway_px(self) -> float | None:
        """How far the camera sways while it is registered: the 90th percentile of the last
        frames' distances from their mean pose (the background may have been learnt at any
        pose), in the camera's pixels; None while it stands still. Registration makes up for
        it, but an object not much bigger than the sway is easily lost: worth telling the
        integrator (a firmer mount)."""
        if not self._sway.active or not self._sway.recent:
            return None
        shifts = np.asarray(self._sway.recent)
        spread = np.hypot(*(shifts - shifts.mean(axis=0)).T)
        return float(np.percentile(spread, 90)) * self._step

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the frames analysed so far."""
        return self._size

    @property
    def activity_region(self) -> tuple[int, int, int, int]:
        """Full-resolution box (x1, y1, x2, y2) that ``activity_map`` covers."""
        return self._roi

    def _blob_activity(self, boxes: NDArray[np.float64]) -> NDArray[np.float32]:
        """Per blob (boxes in analysed pixels): the highest activity in and next to it."""
        near = self._activity_near
        if near is None:
            return np.zeros(len(boxes), np.float32)
        c = ACTIVITY_CELL
        gh, gw = near.shape
        cells = boxes.astype(np.int64)
        a = np.minimum(cells[:, 0] // c, gw - 1)
        b = np.minimum(np.maximum(cells[:, 2] - 1, 0) // c, gw - 1)
        u = np.minimum(cells[:, 1] // c, gh - 1)
        v = np.minimum(np.maximum(cells[:, 3] - 1, 0) // c, gh - 1)
        # A foliage frame has dozens of blobs, nearly all within a few cells: their maxima are
        # gathered at once over a _SPAN × _SPAN window whose indices are held inside each
        # box (repeats do not change a maximum); a bigger blob is looked at alone.
        k = np.arange(_SPAN)
        ys = np.minimum(u[:, None] + k, v[:, None])
        xs = np.minimum(a[:, None] + k, b[:, None])
        out = np.asarray(near[ys[:, :, None], xs[:, None, :]].max(axis=(1, 2)), np.float32)
        for i in np.flatnonzero((b - a >= _SPAN) | (v - u >= _SPAN)).tolist():
            out[i] = near[u[i] : v[i] + 1, a[i] : b[i] + 1].max()
        return out

    def _blobs(
        self, moving: NDArray[np.uint8], cur: NDArray[np.uint8], last: NDArray[np.uint8]
    ) -> Blobs:
        # Only the box around the moving pixels (and the merging dilation's margin) is
        # labelled: the labelling scans every pixel it is given (~0.25 ms on a 0.3-megapixel
        # region), and a façade's motion is mostly a few birds, people and leaves.
        # (at even offsets: the labelling works on 2 × 2 blocks, and its label order, which
        # decides ties among equal blobs downstream, must not depend on the box)
        bx, by, bw, bh = cv2.boundingRect(moving)
        if bw == 0:
            return Blobs.empty()
        left, top = max(0, bx - 1) & ~1, max(0, by - 1) & ~1
        box = (slice(top, by + bh + 1), slice(left, bx + bw + 1))
        moving = moving[box]
        merged = _u8(cv2.dilate(moving, self._kernel))
        # Components of the merged mask, their statistics gathered over its few set pixels
        # with bincounts: OpenCV's labelling alone costs ~0.1 ms on a 0.3-megapixel region but
        # ~0.9 ms with its per-component statistics, which scan the whole image again.
        n, labels = cv2.connectedComponents(merged, connectivity=8, ltype=cv2.CV_32S)
        labels = np.asarray(labels, np.int32)
        w = labels.shape[1]
        pts = np.asarray(cv2.findNonZero(merged), np.int64).reshape(-1, 2)  # numpy's: 4× slower
        on = pts[:, 1] * w + pts[:, 0]
        px, py = pts[:, 0] + left, pts[:, 1] + top
        lab = labels.ravel()[on]
        count = np.bincount(lab, minlength=n).astype(np.float64)
        count[0] = 1.0
        # Size = moving pixels of the component before the merging dilation: a lone noisy pixel
        # stays 1 px (dilation would make it 9) while fragments of one object add up.
        mov = moving[pts[:, 1], pts[:, 0]] > 0
        mlab = lab[mov]
        areas = np.bincount(mlab, minlength=n).astype(np.float64)
        # contrast against the last frame, averaged over the component's moving pixels
        my, mx = py[mov], px[mov]
        dc = np.abs(cur[my, mx].astype(np.int16) - last[my, mx])
        contrast = np.bincount(mlab, weights=dc, minlength=n) / np.maximum(areas, 1.0)
        # centroid and box of the merged component (box edges are pixel edges: x1 = last + 1)
        cx = np.bincount(lab, weights=px, minlength=n) / count
        cy = np.bincount(lab, weights=py, minlength=n) / count
        x0 = np.full(n, 1 << 30, np.int64)
        y0 = np.full(n, 1 << 30, np.int64)
        x1 = np.zeros(n, np.int64)
        y1 = np.zeros(n, np.int64)
        np.minimum.at(x0, lab, px)
        np.minimum.at(y0, lab, py)
        np.maximum.at(x1, lab, px + 1)
        np.maximum.at(y1, lab, py + 1)
        keep = np.flatnonzero((areas >= self.min_area) & (areas <= self.max_area))
        keep = keep[keep > 0]
        if len(keep) == 0:
            return Blobs.empty()
        if len(keep) > MAX_BLOBS:  # leaves in wind, rain: keep the largest, the tracker copes
            keep = keep[np.argsort(areas[keep])[-MAX_BLOBS:]]
        inv = float(self._step)
        rx, ry = self._roi[0], self._roi[1]
        # centroids and boxes are in thumbnail pixel units: pixel i covers [i, i+1) * step
        off = (inv - 1.0) / 2.0
        xy = np.stack([cx[keep], cy[keep]], axis=1)
        boxes = np.stack([x0[keep], y0[keep], x1[keep], y1[keep]], axis=1).astype(np.float64)
        return Blobs(
            xy=(xy * inv + off + [rx, ry]).astype(np.float32),
            area=(areas[keep] * inv * inv).astype(np.float32),
            bbox=(boxes * inv + [rx, ry, rx, ry]).astype(np.float32),
            contrast=contrast[keep].astype(np.float32),
            activity=self._blob_activity(boxes),
        )
