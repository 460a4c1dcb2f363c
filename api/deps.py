"""Typed dependencies: routes get the runtime view, the store and settings through these."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Depends, Request

from pipeline.config import CameraConfig, SiteConfig
from pipeline.evidence import WriterStats
from pipeline.inference import InferenceStats
from pipeline.store import EventStore
from pipeline.types import CameraHealth


class RuntimeView(Protocol):
    """What the API may ask of a running pipeline (``pipeline.runtime.Runtime`` fits)."""

    def camera_configs(self) -> list[CameraConfig]: ...
    def health(self, camera_id: str) -> CameraHealth | None: ...
    def snapshot_jpeg(self, camera_id: str) -> bytes | None: ...
    def writer_stats(self) -> WriterStats: ...
    def inference_stats(self) -> InferenceStats: ...


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Everything routes need; put on ``app.state`` in exactly one place (``create_app``)."""

    runtime: RuntimeView | None
    store: EventStore
    evidence_root: Path
    cameras: tuple[CameraConfig, ...]
    site: SiteConfig


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]
