"""What stays in a zone that is not part of the empty scene: a long-term background model.

Stalls are made of anything (crates, tarps, racks, baskets of fruit) that no COCO class covers,
so besides detected objects the vending analyzer needs "static foreground": whatever has been in
view long enough to be part of the *recent* scene but is not part of the *empty* scene.

Two backgrounds of a small, blurred thumbnail of the zones' bounding box are kept:

* ``recent`` takes over a pixel's new value once that pixel has stayed different for
  ``recent_s`` (~1 min) without interruption: a stall enters it after a minute; people walking
  through never do, however busy the walkway (a running average would soak in a steady stream
  of passers-by).
* ``empty`` follows only with ``empty_s`` (~20 min), and almost not at all where something
  currently differs from it, so a stall standing for an hour does not become "empty scene".

Static foreground = where ``recent`` differs from ``empty``. Each thumbnail is stored as
(luminance / its local mean over a wide neighbourhood, chromaticity r, g): a change of light
scales luminance and its local mean alike and leaves chromaticity alone, so clouds, dusk and
street lights switching on do not count as occupation, while a crate (a new edge, a new colour)
does. Times come from the frames (observations may be seconds apart: keyframes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import ZoneConfig
from pipeline.imaging import area_shrink

_THUMB_W = 320


def scene_features(
    crop: NDArray[np.uint8], width: int = _THUMB_W, light_sigma: float | None = 48.0
) -> NDArray[np.float32]:
    """(H, W, 3) float32 thumbnail: luminance relative to the light level ×100 and chromaticity
    r, g ×255 with the global colour cast removed (robust to changes of light).

    The light level is a Gaussian local mean of ``light_sigma`` thumbnail pixels (follows
    shadows and uneven street lighting; uniform objects much larger than it lose their
    interior) or, with None, the mean of the whole thumbnail (small regions such as a bin).
    """
    th = max(8, round(width * crop.shape[0] / max(1, crop.shape[1])))
    small = area_shrink(crop, (width, th)).astype(np.float32)
    small = np.asarray(cv2.GaussianBlur(small, (5, 5), 0), np.float32) + 1.0
    total = small.sum(axis=2)
    lum = total / 3.0
    if light_sigma is None:
        level: NDArray[np.float32] | float = float(lum.mean())
    else:
        level = _light_level(lum, light_sigma)
    out = np.empty(small.shape, np.float32)
    out[..., 0] = 100.0 * lum / level
    out[..., 1] = 255.0 * small[..., 2] / total  # r
    out[..., 2] = 255.0 * small[..., 1] / total  # g
    # A colour cast of the light is global; the median, not the mean, so that a large
    # coloured object (a red tarp over a fifth of the view) does not shift every pixel. Every
    # other pixel each way is plenty for a median and a quarter of its cost.
    out[..., 1:] -= np.median(out[::2, ::2, 1:].reshape(-1, 2), axis=0)
    return out


def _light_level(lum: NDArray[np.float32], sigma: float) -> NDArray[np.float32]:
    """Gaussian local mean of ``sigma`` pixels. A blur that wide keeps nothing finer than a
    few sixths of sigma, so it is taken at that resolution and brought back bilinearly: the
    same light level (within ~2 % of it where it changes fastest) at under half the cost of a
    kernel hundreds of taps wide (scene_features is most of a parking camera's analysis)."""
    k = int(sigma // 6)
    if k <= 1:
        return np.asarray(cv2.GaussianBlur(lum, (0, 0), sigma), np.float32)
    h, w = lum.shape
    coarse = cv2.resize(lum, (-(-w // k), -(-h // k)), interpolation=cv2.INTER_AREA)
    coarse = cv2.GaussianBlur(coarse, (0, 0), sigma / k)
    return np.asarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)


def features_differ(
    a: NDArray[np.float32], b: NDArray[np.float32], luma_delta: float, chroma_delta: float
) -> NDArray[np.bool_]:
    diff = np.abs(a - b)
    chroma = np.hypot(diff[..., 1], diff[..., 2])
    return np.asarray((diff[..., 0] > luma_delta) | (chroma > chroma_delta), np.bool_)


def _edges(features: NDArray[np.float32]) -> NDArray[np.float32]:
    """Gradient magnitude of the luminance and chromaticity of a feature thumbnail."""
    total = np.zeros(features.shape[:2], np.float32)
    for ch in range(features.shape[2]):
        gx = cv2.Sobel(features[..., ch], cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(features[..., ch], cv2.CV_32F, 0, 1, ksize=3)
        total += np.asarray(cv2.magnitude(gx, gy), np.float32)
    return total


class StaticForeground:
    """Per camera; owned by the analysis thread."""

    def __init__(
        self,
        zones: Sequence[ZoneConfig],
        *,
        recent_s: float = 60.0,
        empty_s: float = 1200.0,
        luma_delta: float = 18.0,
        chroma_delta: float = 12.0,
        thumb_width: int = _THUMB_W,
    ) -> None:
        """``thumb_width``: the model's resolution across the zones (cost grows with its
        square; vehicles need less than crates)."""
        xs = [x for z in zones for x, _ in z.polygon] or [0.0, 1.0]
        ys = [y for z in zones for _, y in z.polygon] or [0.0, 1.0]
        pad = 0.03
        self.roi_rel = (
            max(0.0, min(xs) - pad), max(0.0, min(ys) - pad),
            min(1.0, max(xs) + pad), min(1.0, max(ys) + pad),
        )  # fmt: skip
        self.recent_s = recent_s
        self.empty_s = empty_s
        self.luma_delta = luma_delta
        self.thumb_width = thumb_width
        self.chroma_delta = chroma_delta
        self._recent: NDArray[np.float32] | None = None
        self._empty: NDArray[np.float32] | None = None
        self._since: NDArray[np.float64] | None = None  # when each pixel started to differ
        # when what now stands at each pixel arrived (its ``since`` when it settled)
        self._arrived: NDArray[np.float64] | None = None
        self._last_t: float | None = None
        self.observations = 0

    def reset(self, empty_scene: NDArray[np.uint8] | None = None) -> None:
        """Forget the model; optionally start from a known empty-scene image (BGR)."""
        self._recent = self._empty = None
        self._since = self._arrived = None
        self._last_t = None
        self.observations = 0
        if empty_scene is not None:
            lab = self._lab(empty_scene)
            self._recent, self._empty = lab.copy(), lab.copy()
            self._since = np.full(lab.shape[:2], np.nan)
            self._arrived = np.full(lab.shape[:2], np.nan)

    def roi_px(self, width: int, height: int) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = self.roi_rel
        return round(x1 * width), round(y1 * height), round(x2 * width), round(y2 * height)

    def _lab(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = self.roi_px(w, h)
        crop = image[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)]
        # the light level is judged over the same share of the zones whatever the resolution
        return scene_features(crop, self.thumb_width, 48.0 * self.thumb_width / _THUMB_W)

    def update(self, image: NDArray[np.uint8], time_s: float) -> NDArray[np.bool_]:
        """Feed one frame; returns the static foreground present in it (ROI thumbnail)."""
        lab = self._lab(image)
        if self._recent is None or self._empty is None or self._recent.shape != lab.shape:
            self._recent, self._empty = lab.copy(), lab.copy()
            self._since = np.full(lab.shape[:2], np.nan)
            self._arrived = np.full(lab.shape[:2], np.nan)
            self._last_t = time_s
            self.observations = 1
            return np.zeros(lab.shape[:2], np.bool_)
        assert self._since is not None
        dt = max(0.0, time_s - (self._last_t if self._last_t is not None else time_s))
        self._last_t = time_s
        self.observations += 1
        differs = self._differs(lab, self._recent)
        self._since = np.where(
            differs, np.where(np.isnan(self._since), time_s, self._since), np.nan
        )
        settled = differs & (time_s - np.nan_to_num(self._since, nan=time_s) >= self.recent_s)
        assert self._arrived is not None  # created with _since
        self._arrived[settled] = self._since[settled]
        # pixels that match follow slowly (noise, gradual light); settled changes are taken over
        a_follow = 1.0 - math.exp(-dt / self.recent_s)
        cv2.accumulateWeighted(lab, self._recent, a_follow, mask=(~differs).astype(np.uint8))
        self._recent[settled] = lab[settled]
        static = self.mask()
        if settled.any() and static.any():
            static = self._heal_ghosts(static, settled)
        # The empty scene follows slowly where nothing stands, and ~20× slower where something
        # does (a permanent change, e.g. a new bench, is absorbed over hours, not minutes).
        a_empty = 1.0 - math.exp(-dt / self.empty_s)
        keep = static.astype(np.uint8)
        cv2.accumulateWeighted(self._recent, self._empty, a_empty, mask=1 - keep)
        cv2.accumulateWeighted(self._recent, self._empty, a_empty / 20, mask=keep)
        # Present *now*: static and still matching the recent scene. A stall that has left
        # stays in ``recent`` for another ``recent_s``; counting it there would stretch every
        # stay by that much (a 2.5-minute stop would pass a 3-minute dwell).
        return np.asarray(static & ~differs, np.bool_)

    def _heal_ghosts(
        self, static: NDArray[np.bool_], settled: NDArray[np.bool_]
    ) -> NDArray[np.bool_]:
        """Forget static regions that are holes, not objects.

        Where the empty scene was learnt with something in it (a car parked when the camera
        started, a stall cleared away overnight), its leaving makes a "ghost": the road now
        differs from the empty scene there, in the shape of what left. An object has edges at
        its outline in the current picture and the empty scene has none there; a ghost is the
        other way round. A newly settled static region whose outline is at most half as sharp
        now as in the empty scene is taken into the empty scene at once.
        """
        assert self._recent is not None
        assert self._empty is not None
        n, labels = cv2.connectedComponents(static.astype(np.uint8), connectivity=8)
        now, before = _edges(self._recent), _edges(self._empty)
        healed = False
        kernel = np.ones((3, 3), np.uint8)
        for i in range(1, n):
            comp = labels == i
            if not (comp & settled).any():
                continue
            c8 = comp.astype(np.uint8)
            rim = (cv2.dilate(c8, kernel) - cv2.erode(c8, kernel)) > 0
            if float(now[rim].mean()) * 2 <= float(before[rim].mean()):
                self._empty[comp] = self._recent[comp]
                healed = True
        return self.mask() if healed else static

    def _differs(self, a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.bool_]:
        return features_differ(a, b, self.luma_delta, self.chroma_delta)

    def mask(self) -> NDArray[np.bool_]:
        if self._recent is None or self._empty is None:
            return np.zeros((1, 1), np.bool_)
        static = self._differs(self._recent, self._empty)
        opened = cv2.morphologyEx(
            static.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
        )
        return np.asarray(opened > 0, np.bool_)

    def to_image_mask(
        self, static: NDArray[np.bool_], width: int, height: int
    ) -> NDArray[np.bool_]:
        """The thumbnail mask placed into a full ``width`` × ``height`` frame."""
        x1, y1, x2, y2 = self.roi_px(width, height)
        full = np.zeros((height, width), np.uint8)
        if x2 > x1 and y2 > y1 and static.size > 1:
            full[y1:y2, x1:x2] = cv2.resize(
                static.astype(np.uint8), (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST
            )
        return np.asarray(full > 0, np.bool_)

    def to_thumb(
        self, boxes: NDArray[np.float32], size: tuple[int, int], shape: tuple[int, ...]
    ) -> NDArray[np.float32]:
        """Image-pixel boxes (N, 4) in thumbnail pixels of a mask of ``shape``."""
        w, h = size
        x1, y1, x2, y2 = self.roi_px(w, h)
        sx, sy = shape[1] / max(1, x2 - x1), shape[0] / max(1, y2 - y1)
        return np.asarray((boxes - [x1, y1, x1, y1]) * [sx, sy, sx, sy], np.float32)

    def boxes_mask(
        self,
        boxes: NDArray[np.float32],
        size: tuple[int, int],
        shape: tuple[int, ...],
        margin: float = 0.0,
    ) -> NDArray[np.bool_]:
        """A thumbnail mask of ``shape`` covering image-pixel ``boxes``, each grown by ``margin``
        thumbnail pixels."""
        mask = np.zeros(shape[:2], np.uint8)
        for x1, y1, x2, y2 in self.to_thumb(boxes, size, shape):
            cv2.rectangle(mask, (round(x1 - margin), round(y1 - margin)),
                          (round(x2 + margin), round(y2 + margin)), 1, -1)  # fmt: skip
        return np.asarray(mask > 0, np.bool_)

    def blobs(
        self, static: NDArray[np.bool_], size: tuple[int, int], min_area_px: float
    ) -> list[StaticBlob]:
        """Connected static objects of at least ``min_area_px`` image pixels, in image pixels.

        Gaps of a few thumbnail pixels are closed first: a dark roof or windscreen may match a
        dark road and split one car into pieces."""
        if static.size <= 1 or not static.any():
            return []
        w, h = size
        x1, y1, x2, y2 = self.roi_px(w, h)
        sx, sy = (x2 - x1) / static.shape[1], (y2 - y1) / static.shape[0]
        closed = cv2.morphologyEx(
            static.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)
        )
        n, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
        out: list[StaticBlob] = []
        for i in range(1, n):
            bx, by, bw, bh, area = (int(v) for v in stats[i])
            if area * sx * sy < min_area_px:
                continue
            ys, xs = np.nonzero(labels[by : by + bh, bx : bx + bw] == i)
            points = np.stack([x1 + (xs + bx + 0.5) * sx, y1 + (ys + by + 0.5) * sy], axis=1)
            box = np.array(
                [x1 + bx * sx, y1 + by * sy, x1 + (bx + bw) * sx, y1 + (by + bh) * sy], np.float32
            )
            arrived = float("nan")
            if self._arrived is not None and self._arrived.shape == labels.shape:
                times = self._arrived[by : by + bh, bx : bx + bw][ys, xs]
                if np.isfinite(times).any():
                    arrived = float(np.nanmedian(times))
            pts = np.asarray(points, np.float32)
            centre = np.asarray(np.median(pts, axis=0), np.float32)
            out.append(StaticBlob(box, pts, float(area * sx * sy), centre, arrived))
        return out


@dataclass(frozen=True, slots=True)
class StaticBlob:
    """One connected static object: its box, pixel centres and area in image pixels."""

    box: NDArray[np.float32]
    points: NDArray[np.float32]
    area_px: float
    centre: NDArray[np.float32]  # median of its pixels: its middle, whatever its shadow
    # median time its pixels began to differ from the scene before it (NaN: not known):
    # when it arrived, to within one observation
    arrived_s: float = float("nan")
