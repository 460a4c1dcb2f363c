"""A decoded picture as it is shown: upright, in square pixels.

A phone held upright stores the sensor's landscape picture and a display matrix that turns it;
a recorder's D1 channel stores 704 × 576 samples of a 4:3 or 16:9 scene and signals how wide a
sample is (the sample aspect ratio). Players apply both. Everything gridsight derives from a
picture does too — the motion stage, the detectors, the snapshot the integrator clicks the
façade on, overlays on the evidence — so that a calibration clicked on a snapshot describes
the picture the analyzers see, and a fall is downward and its proportions true. Without this,
a phone's clip of a throw reached the analyzer lying on its side and was never found
(``benchmarks/throwing_formats.py``), and a D1 channel's stretched picture fitted no camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np
from numpy.typing import NDArray

# A signalled sample aspect ratio further from square than this is taken as an error.
_ASPECT_RANGE = (Fraction(1, 3), Fraction(3))


@dataclass(frozen=True, slots=True)
class Display:
    """How to show a coded picture: ``turns`` quarter turns counter-clockwise, after widening
    (or, for ratios below one, heightening) samples by ``pixel_aspect``. Resampling always
    enlarges, so no detail of a small object is lost."""

    turns: int = 0
    pixel_aspect: Fraction = Fraction(1)

    @classmethod
    def of(
        cls, frame: av.VideoFrame, stream: av.VideoStream, shape: Fraction | None = None
    ) -> Display:
        """How ``frame`` of ``stream`` is shown: as the stream signals, or, given ``shape``
        (the upright picture's width / height, an integrator's word for a recorder that does
        not signal it), with samples as wide as make that shape."""
        turns = round(frame.rotation / 90) % 4
        if shape is not None:
            coded_shape = shape if turns % 2 == 0 else 1 / shape
            aspect = coded_shape * Fraction(frame.height, max(1, frame.width))
        else:
            sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
            aspect = Fraction(sar) if sar else Fraction(1)
        if not (_ASPECT_RANGE[0] <= aspect <= _ASPECT_RANGE[1]) or abs(aspect - 1) < 0.01:
            aspect = Fraction(1)
        return IDENTITY if turns == 0 and aspect == 1 else cls(turns, aspect)

    @property
    def identity(self) -> bool:
        return self.turns == 0 and self.pixel_aspect == 1

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
        """``image`` (already in square pixels) turned as shown; contiguous."""
        if self.turns == 0:
            return image
        return np.ascontiguousarray(np.rot90(image, self.turns))

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
