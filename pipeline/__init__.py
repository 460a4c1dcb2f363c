"""gridsight pipeline: RTSP cameras → detection → analyzers → evidence and event reports."""

import os

from pipeline.types import (
    CameraHealth,
    Detections,
    Event,
    EventNotice,
    EventState,
    EventType,
    Frame,
)

# onnxruntime's official builds (1.29 on) collect usage telemetry on Linux as well: on first
# import they write a device ID under ~/.cache/Microsoft and queue events for upload to
# Microsoft (found building the container: a thousand events queued by the test suite). Camera
# sites are privacy-sensitive and often air-gapped, so it is off unless the operator sets
# ORT_DISABLE_TELEMETRY=0. onnxruntime reads the variable once, when it is first imported,
# and every module that loads a model imports this package first (pipeline.types does not
# load onnxruntime).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__all__ = [
    "CameraHealth",
    "Detections",
    "Event",
    "EventNotice",
    "EventState",
    "EventType",
    "Frame",
]
