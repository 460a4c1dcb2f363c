"""gridsight pipeline: RTSP cameras → detection → analyzers → evidence and event reports."""

from pipeline.types import (
    CameraHealth,
    Detections,
    Event,
    EventNotice,
    EventState,
    EventType,
    Frame,
)

__all__ = [
    "CameraHealth",
    "Detections",
    "Event",
    "EventNotice",
    "EventState",
    "EventType",
    "Frame",
]
