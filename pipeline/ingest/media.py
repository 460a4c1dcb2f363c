"""Writing H.264 from generated frames (demo footage, test media, benchmark scenes)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray


def encode_h264(
    path: Path,
    frames: Iterable[NDArray[np.uint8]],
    *,
    fps: Fraction | int,
    gop: int,
    preset: str = "veryfast",
    crf: int | None = 23,
    bitrate_kbps: int | None = None,
    zerolatency: bool = False,
) -> Path:
    """Encode BGR frames with libx264: fixed GOP, no B-frames, headers on every keyframe.

    The container follows the suffix (``.h264`` gives an Annex-B elementary stream, what the
    RTSP test server loops). ``bitrate_kbps`` selects the constant-bitrate control IP cameras
    use (one-second VBV buffer, which also bounds I-frame size as on a camera); otherwise the
    quality is constant (``crf``). The file appears under its name only once complete.
    """
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fmt = "h264" if path.suffix == ".h264" else None
    it = iter(frames)
    first = next(it)
    with av.open(str(tmp), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        options: dict[str, str] = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "0",
            "preset": preset,
            "repeat-headers": "1",
        }
        if zerolatency:
            options["tune"] = "zerolatency"
        if bitrate_kbps:
            rate = f"{bitrate_kbps}k"
            # one encoder thread: x264's rate control over parallel frames depends on thread
            # timing, so the same frames would give a different stream each time (CRF does not)
            options |= {"b": rate, "maxrate": rate, "bufsize": rate, "threads": "1"}
        elif crf is not None:
            options["crf"] = str(crf)
        stream.options = dict(options)
        for i, img in enumerate(_chain(first, it)):
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts = i
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def _chain(
    first: NDArray[np.uint8], rest: Iterable[NDArray[np.uint8]]
) -> Iterable[NDArray[np.uint8]]:
    yield first
    yield from rest
