"""A decoded picture as it is shown: upright, in square pixels.

A phone held upright stores the sensor's landscape picture and a display matrix that turns it
(and, from a front camera or an editor, may mirror it);
a recorder's D1 channel stores 704 × 576 samples of a 4:3 or 16:9 scene and signals how wide a
sample is (the sample aspect ratio). Players apply both. Everything gridsight derives from a
picture does too — the motion stage, the detectors, the snapshot the integrator clicks the
façade on, overlays on the evidence — so that a calibration clicked on a snapshot describes
the picture the analyzers see, and a fall is downward and its proportions true. Without this,
a phone's clip of a throw reached the analyzer lying on its side and was never found
(``benchmarks/throwing_formats.py``), and a D1 channel's stretched picture fitted no camera.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import cv2
import numpy as np
from av.sidedata.sidedata import SideData, Type as SideDataType
from numpy.typing import NDArray

# A signalled sample aspect ratio further from square than this is taken as an error.
_ASPECT_RANGE = (Fraction(1, 3), Fraction(3))


@dataclass(frozen=True, slots=True)
class Display:
    """How to show a coded picture: ``turns`` quarter turns counter-clockwise, after widening
    (or, for ratios below one, heightening) samples by ``pixel_aspect`` and, if ``mirror``,
    flipping it left to right. Resampling always enlarges, so no detail of a small object is
    lost."""

    turns: int = 0
    pixel_aspect: Fraction = Fraction(1)
    mirror: bool = False

    @classmethod
    def of(
        cls, frame: av.VideoFrame, stream: av.VideoStream, shape: Fraction | None = None
    ) -> Display:
        """How ``frame`` of ``stream`` is shown: as the stream signals, or, given ``shape``
        (the upright picture's width / height, an integrator's word for a recorder that does
        not signal it), with samples as wide as make that shape."""
        turns, mirror = orientation(frame)
        if shape is not None:
            coded_shape = shape if turns % 2 == 0 else 1 / shape
            aspect = coded_shape * Fraction(frame.height, max(1, frame.width))
        else:
            sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
            aspect = Fraction(sar) if sar else Fraction(1)
        if not (_ASPECT_RANGE[0] <= aspect <= _ASPECT_RANGE[1]) or abs(aspect - 1) < 0.01:
            aspect = Fraction(1)
        return IDENTITY if turns == 0 and aspect == 1 and not mirror else cls(turns, aspect, mirror)

    @property
    def identity(self) -> bool:
        return self.turns == 0 and self.pixel_aspect == 1 and not self.mirror

    def square(self, width: int, height: int) -> tuple[int, int]:
        """A coded size in square pixels, before turning (even, as 4:2:0 needs)."""
        if self.pixel_aspect > 1:
            return max(2, round(width * self.pixel_aspect / 2) * 2), height
        if self.pixel_aspect < 1:
            return width, max(2, round(height / self.pixel_aspect / 2) * 2)
        return width, height

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The size shown for a coded ``width`` × ``height``."""
        w, h = self.square(width, height)
        return (h, w) if self.turns % 2 else (w, h)

    def unturned(self, width: int, height: int) -> tuple[int, int]:
        """A shown size in the coded picture's orientation."""
        return (height, width) if self.turns % 2 else (width, height)

    def upright(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``image`` (already in square pixels) mirrored and turned as shown; contiguous."""
        if self.mirror:
            image = image[:, ::-1]
        if self.turns:
            image = np.rot90(image, self.turns)
        return image if not (self.mirror or self.turns) else np.ascontiguousarray(image)

    def show(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """A coded-size ``image`` (plane or BGR) as shown: resampled to square pixels, turned."""
        if self.identity:
            return image
        w, h = self.square(image.shape[1], image.shape[0])
        if (w, h) != (image.shape[1], image.shape[0]):
            image = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        return self.upright(image)

    def bgr(self, frame: av.VideoFrame) -> NDArray[np.uint8]:
        """The whole frame as shown, BGR."""
        return self.show(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))

    def fit(self, width: int, height: int, max_width: int) -> tuple[int, int]:
        """The size shown for a coded ``width`` × ``height``, scaled down to at most
        ``max_width`` wide (even, as 4:2:0 needs): a viewer's copy."""
        w, h = self.size(width, height)
        scale = min(1.0, max_width / max(1, w))
        return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)

    def picture(self, frame: av.VideoFrame, size: tuple[int, int]) -> av.VideoFrame:
        """``frame`` as shown at ``size`` (from ``fit``), 4:2:0, for an H.264 encoder; the
        frame's own time stamps are the caller's to set."""
        if self.identity:
            return frame.reformat(width=size[0], height=size[1], format="yuv420p")
        shown = np.asarray(
            cv2.resize(self.bgr(frame), size, interpolation=cv2.INTER_AREA), np.uint8
        )
        return av.VideoFrame.from_ndarray(shown, format="bgr24").reformat(format="yuv420p")


IDENTITY = Display()


class StreamDisplay:
    """``Display.of`` for the frames of one stream, decided once and again only when what
    decides it changes (the frame's turn, size or signalled sample shape).

    A frame's side data (its display matrix) is tied to the frame in a reference cycle that
    only the garbage collector frees: read for every frame, a 1080p stream's decoded pictures
    piled up (700 MB after 600 frames) and collecting them cost a camera's worth of CPU."""

    def __init__(self, stream: av.VideoStream, shape: Fraction | None = None) -> None:
        self.stream = stream
        self.shape = shape
        self._key: tuple[object, ...] | None = None
        self._display = IDENTITY

    def __call__(self, frame: av.VideoFrame) -> Display:
        ctx = self.stream.codec_context
        key = (frame.rotation, frame.width, frame.height, ctx.sample_aspect_ratio)
        if key != self._key:
            self._key, self._display = key, Display.of(frame, self.stream, self.shape)
        return self._display


def orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """(quarter turns counter-clockwise, mirrored first) that show ``frame`` as its display
    matrix says. A mirroring matrix is a turn and a flip, which FFmpeg's rotation alone
    reads as a half turn: a picture only mirrored came out upside down."""
    # Looked up by its type: iterating the container gave the side data up to PyAV 18.1.0
    # and gives their types from 18.1.1 on (every picture was refused: AttributeError). The
    # frame stub says str keys and object values; they are these.
    sides = cast("Mapping[SideDataType, SideData]", frame.side_data)
    matrix = sides.get(SideDataType.DISPLAYMATRIX)
    if matrix is None or len(bytes(matrix)) < 36:
        return round(frame.rotation / 90) % 4, False
    # 3 × 3 int32, row-major; a point (p, q) of the coded picture is shown at (p, q)·[[a, b],
    # [c, d]] (16.16 fixed point)
    a, b, _, c, d = (float(v) for v in np.frombuffer(bytes(matrix)[:20], np.int32))
    mirror = a * d - b * c < 0
    if mirror:  # flip the coded picture first: the rest of the matrix is a rotation
        a, b = -a, -b
    if math.hypot(a, c) == 0 or math.hypot(b, d) == 0:
        return 0, False  # not a picture's orientation: show it as coded
    # as av_display_rotation_get: degrees counter-clockwise
    ccw = -math.degrees(math.atan2(b / math.hypot(b, d), a / math.hypot(a, c)))
    return round(ccw / 90) % 4, mirror
