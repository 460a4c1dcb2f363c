"""Exception hierarchy. Errors name the camera (and field) they concern."""

from __future__ import annotations

from dataclasses import dataclass


class PipelineError(Exception):
    """Base of every error raised by gridsight on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file.

    Attributes:
        location: human-readable path, e.g. ``camera 'gate_east' → zones[1].polygon``.
        message: what is wrong and, where possible, how to fix it.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ConfigError(PipelineError):
    """A configuration that must not start: carries every issue found, not just the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class SourceError(PipelineError):
    """A camera stream failed; ``camera_id`` names it, the message never contains credentials."""

    def __init__(self, camera_id: str, message: str) -> None:
        self.camera_id = camera_id
        super().__init__(f"camera '{camera_id}': {message}")


class StreamOpenError(SourceError):
    """The stream could not be opened (refused, timed out, no video track)."""


class StreamStalledError(SourceError):
    """An open stream stopped delivering packets or ended."""


class ModelError(PipelineError):
    """An ONNX model is missing, corrupt or has an output layout we cannot decode."""


class StoreError(PipelineError):
    """The event store cannot be opened or migrated."""
