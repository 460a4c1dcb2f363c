"""Typed dependencies: routes get the runtime view, the store and settings through these."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Depends, Request

from pipeline.cases import CaseService
from pipeline.config import AppConfig, CameraConfig, SiteConfig
from pipeline.evidence import WriterStats
from pipeline.inference import InferenceStats
from pipeline.outbox import Outbox
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
    cases: CaseService
    clock: Callable[[], float]
    config: AppConfig | None = None
    outbox: Outbox | None = None
    # HMAC keys of subscribers, for their status callbacks
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    auth_required: bool = True
    signing_key: bytes | None = None  # HMAC key for evidence-package manifests


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]
