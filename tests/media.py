"""Generated test media: H.264 clips drawn from scripted scenes, with exact ground truth."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.codec.hwaccel
import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.ingest.hwdecode import DEVICE_TYPES
from pipeline.ingest.media import encode_h264
from pipeline.types import Detections, Frame

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Actor:
    """A box-shaped object visible from ``t0`` to ``t1`` (seconds), optionally moving.

    ``box_at(t)`` gives its pixel box; a parked car has ``velocity == (0, 0)``.
    """

    box: Box
    t0: float
    t1: float
    class_id: int = 2  # car
    velocity: tuple[float, float] = (0.0, 0.0)
    color: tuple[int, int, int] = (40, 40, 200)
    confidence: float = 0.8

    def box_at(self, t: float) -> Box | None:
        if not (self.t0 <= t < self.t1):
            return None
        dx, dy = self.velocity[0] * (t - self.t0), self.velocity[1] * (t - self.t0)
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)


@dataclass(frozen=True)
class Scene:
    width: int = 320
    height: int = 240
    fps: int = 10
    duration_s: float = 10.0
    gop: int = 20
    actors: Sequence[Actor] = field(default_factory=tuple)

    def boxes_at(self, t: float) -> list[tuple[Box, Actor]]:
        return [(b, a) for a in self.actors if (b := a.box_at(t)) is not None]

    def render(self, t: float) -> NDArray[np.uint8]:
        img = np.full((self.height, self.width, 3), 90, dtype=np.uint8)
        img[self.height // 2 :, :] = 110  # "road"
        cv2.putText(img, f"{t:6.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        for box, actor in self.boxes_at(t):
            x1, y1, x2, y2 = (round(v) for v in box)
            cv2.rectangle(img, (x1, y1), (x2, y2), actor.color, -1)
        return img


def write_h264(
    path: Path,
    scene: Scene,
    *,
    render: Callable[[float], NDArray[np.uint8]] | None = None,
) -> Path:
    """Encode the scene as H.264 (no B-frames, fixed GOP) in MP4 or MPEG-TS by suffix."""
    draw = render or scene.render
    frames = (draw(i / scene.fps) for i in range(round(scene.duration_s * scene.fps)))
    return encode_h264(
        path, frames, fps=scene.fps, gop=scene.gop, preset="ultrafast", zerolatency=True
    )


def write_h265(path: Path, scene: Scene) -> Path:
    """The scene as H.265 with x265's defaults (B-frames, open GOP), as many cameras send."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265", rate=scene.fps)
        first = scene.render(0.0)
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        stream.options = {"x265-params": f"keyint={scene.gop}:log-level=error:pools=1"}
        for i in range(round(scene.duration_s * scene.fps)):
            vf = av.VideoFrame.from_ndarray(scene.render(i / scene.fps), format="bgr24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return path


class ScriptedDetector:
    """Returns the scene's ground-truth boxes for each frame's stream time (no model needed)."""

    def __init__(self, scene: Scene, jitter_px: float = 0.0, seed: int = 0) -> None:
        self.scene = scene
        self.jitter = jitter_px
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        self.calls += 1
        return [self._one(f) for f in frames]

    def _one(self, frame: Frame) -> Detections:
        sx = frame.image.shape[1] / self.scene.width
        sy = frame.image.shape[0] / self.scene.height
        found = self.scene.boxes_at(frame.pts_s)
        if not found:
            return Detections.empty()
        boxes = np.array([b for b, _ in found], dtype=np.float32) * [sx, sy, sx, sy]
        if self.jitter:
            boxes += self.rng.uniform(-self.jitter, self.jitter, boxes.shape).astype(np.float32)
        return Detections(
            xyxy=boxes.astype(np.float32),
            confidence=np.array([a.confidence for _, a in found], dtype=np.float32),
            class_id=np.array([a.class_id for _, a in found], dtype=np.int32),
        )


class ColorBoxDetector:
    """A pixel-level stand-in for a detector: finds boxes of one colour in the decoded image.

    Used where stream time cannot be mapped back to a script (live RTSP): it looks at the real
    decoded pixels, so it also proves that real frames (not substitutes) reach detection.
    """

    def __init__(self, color_bgr: tuple[int, int, int] = (40, 40, 200), class_id: int = 2) -> None:
        self.color = np.array(color_bgr, dtype=np.int16)
        self.class_id = class_id
        # (camera, epoch, seq, frame time, keyframe, wall clock when detected)
        self.seen: list[tuple[str, int, int, float, bool, float]] = []

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self._one(f) for f in frames]

    def _one(self, frame: Frame) -> Detections:
        self.seen.append(
            (frame.camera_id, frame.epoch, frame.seq, frame.time_s, frame.is_keyframe, time.time())
        )
        diff = np.abs(frame.image.astype(np.int16) - self.color).max(axis=2)
        mask = (diff < 40).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:n] if area >= 50]
        if not boxes:
            return Detections.empty()
        return Detections(
            xyxy=np.array(boxes, dtype=np.float32),
            confidence=np.full((len(boxes),), 0.9, dtype=np.float32),
            class_id=np.full((len(boxes),), self.class_id, dtype=np.int32),
        )


class FailingWhenToldDetector(ColorBoxDetector):
    """``ColorBoxDetector`` whose model fails once when the file named by the environment's
    ``GRIDSIGHT_TEST_FAIL`` appears (it is taken away): a worker process's model breaking
    while it runs, which its replacement, started with the same factory, survives."""

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        marker = os.environ.get("GRIDSIGHT_TEST_FAIL")
        if marker:
            try:
                Path(marker).unlink()
            except FileNotFoundError:
                pass
            else:
                raise RuntimeError("the model's session broke")
        return super().detect(frames)


def to_annexb(mp4: Path, out: Path) -> Path:
    """Copy the video stream of ``mp4`` into an H.264 Annex-B file (for the RTSP server)."""
    with av.open(str(mp4)) as inp, av.open(str(out), "w", format="h264") as dst:
        src = inp.streams.video[0]
        stream = dst.add_stream_from_template(src, opaque=True)
        for packet in inp.demux(src):
            if packet.size:
                packet.stream = stream
                dst.mux(packet)
    return out


def read_bgr(path: Path) -> NDArray[np.uint8]:
    """An image file as BGR pixels; a missing or unreadable file is an error, not ``None``."""
    img = cv2.imread(str(path))
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return np.asarray(img, np.uint8)


def stored_as_shown_differently(
    src: Path,
    dst: Path,
    *,
    turns: int = 0,
    sar: Fraction | None = None,
    codec: str = "libx264",
    signal: bool = True,
    mirror: bool = False,
) -> Path:
    """``src`` re-encoded as a phone or recorder stores it, to be shown like ``src``: each
    picture turned clockwise ``turns`` quarter turns with a display matrix that turns it back
    (a phone held upright; ``mirror``: also flipped left to right, the matrix flipping it
    back first, as a front camera's or an editor's), or squeezed to ``1 / sar`` of its width
    with that sample aspect ratio signalled (a recorder's D1 channel; ``signal=False``: one
    that does not say so)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        stream = cast("av.VideoStream", out.add_stream(codec, rate=vs.average_rate or 25))
        w, h = vs.codec_context.width, vs.codec_context.height
        if sar is not None:
            w = round(w / sar / 2) * 2
            if signal:
                stream.codec_context.sample_aspect_ratio = sar
        stream.width, stream.height = (h, w) if turns % 2 else (w, h)
        stream.pix_fmt = "yuv420p"
        stream.options = {"threads": "1", "g": "25", "crf": "18"}
        if codec == "libx265":
            stream.options = {"x265-params": "keyint=25:log-level=error:pools=1", "crf": "20"}
        if mirror:
            # FFmpeg's display matrix (16.16): shown = coded · [[a, b], [c, d]]; a turn of
            # 90·turns° counter-clockwise whose first row is negated flips the coded picture
            # left to right before turning it
            cos, sin = round(math.cos(math.pi / 2 * turns)), round(math.sin(math.pi / 2 * turns))
            one = 1 << 16
            stream.set_display_matrix([-cos * one, sin * one, 0, sin * one, cos * one, 0,
                                       0, 0, 1 << 30])  # fmt: skip
        elif turns:
            stream.set_display_rotation(90 * turns)
        for i, frame in enumerate(inp.decode(vs)):
            img = frame.to_ndarray(format="bgr24", width=w, height=vs.codec_context.height)
            stored = np.rot90(img, -turns)
            if mirror:
                stored = stored[:, ::-1]
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(stored, np.uint8), format="bgr24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return dst


def lacking_device() -> str:
    """A hardware decoding device type this machine's FFmpeg build lacks (no build has them
    all: VideoToolbox is Apple's, D3D11VA Windows', MediaCodec Android's)."""
    built = set(av.codec.hwaccel.hwdevices_available())
    return next(t for t in DEVICE_TYPES if t not in built)


class PoleSway:
    """A camera on a pole in wind: each picture shifted by a smooth random sway (standard
    deviation ``sway_px``, correlated over ~0.15 s whatever the frame rate), and smeared along
    the path the sway took while the shutter was open (``exposure_s``, 1/50 s as the 3-D
    renderer's objects): the picture moves during the exposure as an object does."""

    def __init__(self, sway_px: float, fps: float, seed: int = 0, exposure_s: float = 0.02) -> None:
        self.sway_px = sway_px
        self.a = 0.8 ** (30.0 / fps)
        self.open = min(1.0, exposure_s * fps)  # the part of a frame interval exposed
        self.rng = np.random.default_rng(seed)
        self.shift = np.zeros(2)  # where the sway is when the shutter closes
        self.seen = np.zeros(2)  # where the picture shows it: the mean over the exposure

    def __call__(self, img: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if not self.sway_px:
            return img
        a, before = self.a, self.shift
        self.shift = a * before + self.rng.normal(0.0, self.sway_px * (1 - a * a) ** 0.5, 2)
        # the sway moves evenly from the last picture's shift to this one's over the interval;
        # the shutter sees the last ``open`` part of it, sampled every quarter pixel
        smear = self.open * float(np.hypot(*(self.shift - before)))
        steps = int(min(8, np.ceil(smear / 0.25)))
        ats = [1.0]  # under a quarter pixel: no smear to draw
        if steps >= 2:
            ats = [1.0 - self.open * (steps - 1 - j) / (steps - 1) for j in range(steps)]
        self.seen = before + (self.shift - before) * float(np.mean(ats))
        acc = np.zeros(img.shape, np.float32)
        for at in ats:
            dx, dy = before + (self.shift - before) * at
            m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            acc += cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        return np.asarray(np.clip(acc / len(ats) + 0.5, 0, 255), np.uint8)


def swayed_copy(src: Path, dst: Path, sway_px: float, seed: int = 0) -> Path:
    """``src`` as a camera on a pole in wind records it (``PoleSway``)."""
    with av.open(str(src)) as inp:
        vs = inp.streams.video[0]
        fps = vs.average_rate or 25
        sway = PoleSway(sway_px, float(fps), seed)
        out = [sway(np.asarray(f.to_ndarray(format="bgr24"), np.uint8)) for f in inp.decode(vs)]
    return encode_h264(dst, out, fps=fps, gop=round(2 * float(fps)), crf=20)


# sRGB-like mid-grey (118 of 255) as linear light: what ``LowLight``'s electrons are given for
_MID_LINEAR = (118 / 255) ** 2.2
_TO_LINEAR = ((np.arange(256) / 255.0) ** 2.2).astype(np.float32)


class LowLight:
    """A camera at night, as its sensor and image processor make the picture: the IR-cut
    filter out (monochrome); the scene's light scaled down so that a mid-grey pixel gathers
    ``electrons`` photo-electrons in one exposure, with their shot noise (Gaussian of the
    Poisson variance: a draw per pixel, not Poisson's cost) and the sensor's read noise; the
    camera's gain bringing mid-grey back to ``brightness`` of the day picture's; then its
    temporal noise reduction (3D-DNR), which blends each pixel with its last output by
    ``dnr`` wherever the two differ by less than ``dnr_sigmas`` noise levels: a still
    background is smoothed, a moving object that stands out from the noise is not, and one
    that does not is blended away with it. Apply it to the whole picture, object drawn in
    (the sensor sees both), after any sway (the noise is the sensor's, not the scene's)."""

    def __init__(
        self,
        electrons: float,
        seed: int = 0,
        *,
        read_noise_e: float = 3.0,
        brightness: float = 0.8,
        dnr: float = 0.6,
        dnr_sigmas: float = 3.0,
    ) -> None:
        self.k = electrons / _MID_LINEAR  # electrons of a white pixel
        self.gain = brightness**2.2 / self.k  # electrons -> linear output (white = 1)
        self.read_var = read_noise_e**2
        self.dnr, self.dnr_sigmas = dnr, dnr_sigmas
        self.rng = np.random.default_rng(seed)
        self._last: NDArray[np.float32] | None = None

    def __call__(self, img: NDArray[np.uint8]) -> NDArray[np.uint8]:
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        signal = _TO_LINEAR[grey] * np.float32(self.k)
        sigma = np.sqrt(signal + np.float32(self.read_var))
        noise = self.rng.standard_normal(grey.shape, dtype=np.float32)
        out = (signal + sigma * noise) * np.float32(self.gain)
        last = self._last
        if last is not None and self.dnr > 0:
            still = np.abs(out - last) < np.float32(self.dnr_sigmas * self.gain) * sigma
            out = np.where(still, np.float32(self.dnr) * last + np.float32(1 - self.dnr) * out, out)
        self._last = out
        shown = np.clip(out, 0.0, 1.0) ** np.float32(1 / 2.2) * np.float32(255.0) + np.float32(0.5)
        return np.asarray(cv2.cvtColor(shown.astype(np.uint8), cv2.COLOR_GRAY2BGR), np.uint8)
