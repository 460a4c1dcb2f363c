"""Drawing on evidence images: zones, boxes, trajectories, façade grids, composites.

Everything here returns new images; originals (the clip) are never touched. OpenCV's Hershey
fonts cannot draw Chinese, so burned-in labels are ASCII; the bilingual text lives in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.config_base import FacadeConfig
from pipeline.ingest.display import Display, StreamDisplay
from pipeline.rules.facade import FacadeGrid
from pipeline.types import Box

if TYPE_CHECKING:
    from pipeline.rules.throwing import ThrowingDetails

_ZONE_COLOR = (0, 215, 255)  # amber (BGR)
_TRACK_COLOR = (0, 0, 255)
_FIT_COLOR = (255, 200, 0)
_ORIGIN_COLOR = (0, 255, 0)
_GRID_COLOR = (200, 200, 200)
_REGION_COLOR = (60, 20, 220)  # blocked area (crimson)


def _px(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = size
    return (round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h))


def annotate(
    image: NDArray[np.uint8],
    polygon_rel: list[tuple[float, float]] | None,
    boxes: list[tuple[Box, tuple[int, int, int], str]],
    caption: str,
    regions: Sequence[Sequence[tuple[float, float]]] = (),
) -> NDArray[np.uint8]:
    """Copy of ``image`` with the zone outline, filled regions (e.g. the blocked part of a
    walkway), labelled boxes and a caption bar."""
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(w / 640))
    scale = max(0.4, w / 1600)
    if polygon_rel:
        pts = (np.array(polygon_rel) * [w, h]).round().astype(np.int32)
        overlay = out.copy()
        cv2.fillPoly(overlay, [pts], _ZONE_COLOR)
        cv2.addWeighted(overlay, 0.18, out, 0.82, 0, dst=out)
        cv2.polylines(out, [pts], True, _ZONE_COLOR, thick, cv2.LINE_AA)
    if regions:
        polys = [(np.array(r) * [w, h]).round().astype(np.int32) for r in regions if len(r) >= 3]
        overlay = out.copy()
        cv2.fillPoly(overlay, polys, _REGION_COLOR)
        cv2.addWeighted(overlay, 0.35, out, 0.65, 0, dst=out)
        cv2.polylines(out, polys, True, _REGION_COLOR, thick, cv2.LINE_AA)
    for box, color, label in boxes:
        x1, y1, x2, y2 = _px(box, (w, h))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
        if label:
            cv2.putText(out, label, (x1, max(14, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, color, thick, cv2.LINE_AA)  # fmt: skip
    bar = max(18, h // 28)
    cv2.rectangle(out, (0, h - bar), (w, h), (0, 0, 0), -1)
    cv2.putText(out, caption, (8, h - bar // 4), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    return out


def _scale(image: NDArray[np.uint8], frame_size: tuple[int, int]) -> float:
    return float(image.shape[1]) / max(1, frame_size[0])


def draw_throw(
    image: NDArray[np.uint8],
    d: ThrowingDetails,
    facade: FacadeConfig | None,
    caption: str,
) -> NDArray[np.uint8]:
    """The façade grid, the observed track, the fitted fall and the ranked origin cells."""
    out = image.copy()
    w = out.shape[1]
    k = _scale(out, d.frame_size)
    thick = max(1, round(w / 640))
    if facade is not None:
        grid = FacadeGrid(facade, *d.frame_size)
        for f in range(grid.n_floors + 1):
            a, b = grid.to_image(np.array([[0, f], [grid.n_cols, f]], np.float64)) * k
            cv2.line(out, _pt(a), _pt(b), _GRID_COLOR, 1, cv2.LINE_AA)
        for c in range(grid.n_cols + 1):
            a, b = grid.to_image(np.array([[c, 0], [c, grid.n_floors]], np.float64)) * k
            cv2.line(out, _pt(a), _pt(b), _GRID_COLOR, 1, cv2.LINE_AA)
        for rank, cand in enumerate(d.candidates[:3]):
            fi = cand.floor - facade.bottom_floor
            ci = facade.columns.index(cand.column)
            cell = (
                grid.to_image(
                    np.array([[ci, fi], [ci + 1, fi], [ci + 1, fi + 1], [ci, fi + 1]], np.float64)
                )
                * k
            )
            color = _ORIGIN_COLOR if rank == 0 else (0, 160, 0)
            cv2.polylines(
                out,
                [np.round(cell).astype(np.int32)],
                True,
                color,
                thick + (rank == 0),
                cv2.LINE_AA,
            )
            label = f"{cand.floor}F-{cand.column} {cand.probability:.0%}"
            x0, y0 = np.round(cell.max(axis=0)).astype(int)
            cv2.putText(out, label, (x0 + 4, y0 - 4), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, w / 1800),
                        color, thick, cv2.LINE_AA)  # fmt: skip
    curve = np.array(d.fitted_curve, np.float64) * k
    if len(curve) > 1:
        cv2.polylines(
            out, [np.round(curve).astype(np.int32)], False, _FIT_COLOR, thick, cv2.LINE_AA
        )
    for _, x, y in d.trajectory:
        cv2.circle(out, _pt((x * k, y * k)), max(2, thick + 1), _TRACK_COLOR, -1, cv2.LINE_AA)
    rx, ry = d.release_px
    cv2.drawMarker(out, _pt((rx * k, ry * k)), _ORIGIN_COLOR, cv2.MARKER_CROSS, 18, thick + 1)
    return _caption(out, caption)


def _pt(xy: Sequence[float] | NDArray[np.float64]) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))


def _caption(out: NDArray[np.uint8], caption: str) -> NDArray[np.uint8]:
    h, w = out.shape[:2]
    bar = max(18, h // 28)
    cv2.rectangle(out, (0, h - bar), (w, h), (0, 0, 0), -1)
    cv2.putText(out, caption, (8, h - bar // 4), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, w / 1600),
                (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    return out


class _FramePixels:
    """BGR pixels of small boxes of one decoded frame. Converting the whole 1080p frame to BGR
    for a patch of a few dozen pixels was most of the composite's cost: 4:2:0 frames convert
    just the box; any other format, or a picture shown turned or resampled (``Display``),
    converts the frame once."""

    def __init__(self, frame: av.VideoFrame, display: Display) -> None:
        self.frame = frame
        self.display = display
        self.w, self.h = display.size(frame.width, frame.height)
        self.i420 = (
            display.identity
            and frame.format.name in ("yuv420p", "yuvj420p")
            and self.h % 2 == self.w % 2 == 0
        )
        self._planes: NDArray[np.uint8] | None = None
        self._bgr: NDArray[np.uint8] | None = None

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> tuple[NDArray[np.uint8], int, int]:
        """(patch, x0, y0): the box clipped to the frame, aligned to the chroma grid."""
        h, w = self.h, self.w
        x0, y0 = max(0, x0) & ~1, max(0, y0) & ~1  # 4:2:0 chroma covers 2×2 luma pixels
        x1, y1 = min(w, x1 + (x1 & 1)), min(h, y1 + (y1 & 1))
        if not self.i420:
            if self._bgr is None:
                self._bgr = self.display.bgr(self.frame)
            return self._bgr[y0:y1, x0:x1].copy(), x0, y0
        if self._planes is None:
            self._planes = np.asarray(self.frame.to_ndarray(), np.uint8)  # (h * 3 / 2, w)
        p = self._planes
        u = p[h : h + h // 4].reshape(h // 2, w // 2)
        v = p[h + h // 4 : h + h // 2].reshape(h // 2, w // 2)
        i420 = np.concatenate([
            p[y0:y1, x0:x1].ravel(),
            u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].ravel(),
            v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2].ravel(),
        ]).reshape((y1 - y0) * 3 // 2, x1 - x0)  # fmt: skip
        return np.asarray(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), np.uint8), x0, y0


def composite_from_clip(
    clip: str, d: ThrowingDetails, clip_start_s: float, caption: str, patch: int = 0
) -> NDArray[np.uint8] | None:
    """Stack the object's positions from the clip's own frames onto one picture.

    The base is the frame at the first detected position; for every trajectory point, the
    patch around the object in the frame nearest that time is pasted in (what commercial
    systems show as a "trajectory composite"). Decodes only the fall's few seconds.
    """
    t_first = d.t0_s - clip_start_s
    times = [t_first + p[0] for p in d.trajectory]
    if not times:
        return None
    half = patch or max(6, int(2 * np.sqrt(max(d.object_size_px, 1.0))) + 4)
    wanted = dict(enumerate(times))
    base: NDArray[np.uint8] | None = None
    patches: list[tuple[int, NDArray[np.uint8], int, int]] = []
    with av.open(clip) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_count = 1  # the cameras are the parallelism
        # The clip starts with ~10 s of pre-roll: jump to the keyframe before the fall instead
        # of decoding all of it (per event this was the writer's largest cost).
        if times[0] > 1.0 and stream.time_base:
            target = (times[0] - 0.5) / float(stream.time_base)
            c.seek(int(target) + (stream.start_time or 0), stream=stream, backward=True)
        shown = StreamDisplay(stream)
        for frame in c.decode(stream):
            ft = float(frame.time or 0.0)
            if ft < times[0] - 0.1:
                continue
            if ft > times[-1] + 0.1:
                break
            display = shown(frame)
            if base is None:
                base = display.bgr(frame).copy()
            pixels = _FramePixels(frame, display)
            for i, t in list(wanted.items()):
                if abs(ft - t) <= 0.5 / float(stream.average_rate or 25):
                    _, x, y = d.trajectory[i]
                    cx, cy = int(x), int(y)
                    patch_px, x0, y0 = pixels.crop(cx - half, cy - half, cx + half, cy + half)
                    patches.append((i, patch_px, x0, y0))
                    del wanted[i]
    if base is None:
        return None
    for _, p, x0, y0 in patches:
        ph, pw = p.shape[:2]
        base[y0 : y0 + ph, x0 : x0 + pw] = p
    for _, x, y in d.trajectory:
        cv2.circle(base, (int(x), int(y)), half + 2, _TRACK_COLOR, 1, cv2.LINE_AA)
    return _caption(base, caption)
