"""Hardware video decoding (NVDEC through CUDA, VA-API, Quick Sync, …), opt-in per site.

Decoding is most of a camera's cost (``benchmarks/throughput.py``: two thirds of a parking
camera's CPU, all but a third of a 高空抛物 camera's), so a node with a video engine can
decode on it: ``[ingest] hwaccel = "cuda"``. PyAV downloads each decoded picture to system
memory (the analyzers are NumPy and OpenCV), so what moves off the CPU is the decoding, not
the copy.

Where the device cannot decode — not in this FFmpeg build, no device or driver (a container
started without the GPU), or neither H.264 nor H.265 on it — the camera decodes on the CPU
exactly as without the setting and says so: in its health (``decoder``), its log, and
``gridsight check``. A missing accelerator never stops a camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # PyAV is imported where decoding happens, not by the configuration
    from av.codec.hwaccel import HWAccel

# FFmpeg's hardware device types (AVHWDeviceType names); which of them this machine's build
# has is ``av.codec.hwaccel.hwdevices_available()``.
DEVICE_TYPES = (
    "cuda", "vaapi", "qsv", "vdpau", "videotoolbox", "d3d11va", "dxva2", "drm", "vulkan", "amf",
    "mediacodec", "opencl",
)  # fmt: skip
# What cameras send; a device is usable if it decodes either.
_CODECS = ("h264", "hevc")


@dataclass(frozen=True, slots=True)
class HwDecode:
    """Where a camera's pictures are decoded: ``device_type`` (None: the CPU) and, when a
    device was asked for and cannot be used, why not."""

    device_type: str | None = None
    device: str | None = None
    refused: str | None = None

    def accel(self) -> HWAccel | None:
        """Settings for ``av.open``; a codec the device lacks falls back to software there."""
        if self.device_type is None:
            return None
        from av.codec.hwaccel import HWAccel

        return HWAccel(self.device_type, self.device, allow_software_fallback=True)

    def describe(self, on_device: bool | None = None) -> str:
        """``decoder`` in a camera's health: the device, or "cpu" and why the device is not
        used (``on_device`` False: the stream's codec did not take to it)."""
        if self.refused is not None:
            return f"cpu ({self.refused})"
        if self.device_type is None:
            return "cpu"
        if on_device is False:
            return f"cpu ({self.device_type} does not decode this stream)"
        return self.device_type


def unusable(device_type: str, device: str | None = None) -> str | None:
    """Why H.264 and H.265 cannot be decoded on ``device_type`` here, or None when one can."""
    import av
    import av.codec.hwaccel
    import av.error
    from av.codec.hwaccel import HWAccel

    built = av.codec.hwaccel.hwdevices_available()
    if device_type not in built:
        return f"this FFmpeg build has no {device_type} (it has {', '.join(built) or 'none'})"
    missing = []
    for name in _CODECS:
        try:
            HWAccel(device_type, device, allow_software_fallback=False).create(av.Codec(name, "r"))
        except NotImplementedError:
            missing.append(name)
        except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
            # whatever the driver answers, the camera must still start (on the CPU)
            where = f" {device}" if device else ""
            why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            return f"no usable {device_type} device{where}: {why}"
        else:
            return None
    return f"{device_type} has no {' or '.join(missing)} decoder in this build"


def choose(device_type: str | None, device: str | None = None) -> HwDecode:
    """The decoding a camera asked for ``device_type`` gets on this machine."""
    if device_type is None:
        return HwDecode()
    why = unusable(device_type, device)
    return HwDecode(None if why else device_type, device, why)
