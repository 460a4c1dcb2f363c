"""Wire format of the API, separate from pipeline dataclasses (mapped by ``from_*`` helpers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pipeline.config import CameraConfig, RuleConfig, ThrowingRule
from pipeline.store.repository import EventRow
from pipeline.types import CameraHealth


class ZoneOut(BaseModel):
    zone_id: str
    kind: str
    name: str | None
    polygon: list[tuple[float, float]]


class RuleOut(BaseModel):
    rule_id: str
    analyzer: str
    zones: list[str] | None = None
    facades: list[str] | None = None
    min_dwell_s: float | None = None

    @classmethod
    def from_rule(cls, r: RuleConfig) -> RuleOut:
        return cls(
            rule_id=r.id,
            analyzer=r.analyzer,
            zones=None if isinstance(r, ThrowingRule) else r.zones,
            facades=r.facades if isinstance(r, ThrowingRule) else None,
            min_dwell_s=getattr(r, "min_dwell_s", None),
        )


class CameraHealthOut(BaseModel):
    camera_id: str
    state: str
    epoch: int
    decode_mode: str
    fps_in: float
    fps_out: float
    frames_decoded: int
    frames_out: int
    drops: int
    reconnects: int
    keyframe_interval_s: float | None
    last_frame_time_s: float | None
    state_since_s: float
    last_error: str | None

    @classmethod
    def from_health(cls, h: CameraHealth) -> CameraHealthOut:
        return cls(
            camera_id=h.camera_id,
            state=h.state.value,
            epoch=h.epoch,
            decode_mode=h.decode_mode.value,
            fps_in=h.fps_in,
            fps_out=h.fps_out,
            frames_decoded=h.frames_decoded,
            frames_out=h.frames_out,
            drops=h.drops,
            reconnects=h.reconnects,
            keyframe_interval_s=h.keyframe_interval_s,
            last_frame_time_s=h.last_frame_time_s,
            state_since_s=h.state_since_s,
            last_error=h.last_error,
        )


class CameraOut(BaseModel):
    camera_id: str
    name: str
    url: str  # redacted: no credentials, no query string
    transport: str
    enabled: bool
    gb28181_device_id: str | None
    gb28181_channel_id: str | None
    grid_code: str | None
    address: str | None
    zones: list[ZoneOut]
    rules: list[RuleOut]
    health: CameraHealthOut | None

    @classmethod
    def from_config(cls, c: CameraConfig, health: CameraHealth | None) -> CameraOut:
        return cls(
            camera_id=c.id,
            name=c.name,
            url=c.redacted_url,
            transport=c.transport,
            enabled=c.enabled,
            gb28181_device_id=c.gb28181_device_id,
            gb28181_channel_id=c.gb28181_channel_id,
            grid_code=c.grid_code,
            address=c.address,
            zones=[
                ZoneOut(zone_id=z.id, kind=z.kind.value, name=z.name, polygon=z.polygon)
                for z in c.zones
            ],
            rules=[RuleOut.from_rule(r) for r in c.rules],
            health=None if health is None else CameraHealthOut.from_health(health),
        )


class EventSummary(BaseModel):
    event_id: str
    camera_id: str
    event_type: str
    name_zh: str
    name_en: str
    state: str
    severity: str
    zone_id: str | None
    rule_id: str | None
    started_at: float
    alerted_at: float
    updated_at: float
    ended_at: float | None
    # set when the store ended it for an analyzer that could not (e.g. "worker_lost")
    closed_reason: str | None
    score: float
    title_zh: str | None
    links: dict[str, str]

    @classmethod
    def from_row(cls, r: EventRow, links: dict[str, str]) -> EventSummary:
        cls_ = r.report.get("classification", {})
        return cls(
            event_id=r.event_id,
            camera_id=r.camera_id,
            event_type=r.event_type,
            name_zh=cls_.get("name_zh", r.event_type),
            name_en=cls_.get("name_en", r.event_type),
            state=r.state,
            severity=r.severity,
            zone_id=r.zone_id,
            rule_id=r.rule_id,
            started_at=r.started_at,
            alerted_at=r.alerted_at,
            updated_at=r.updated_at,
            ended_at=r.ended_at,
            closed_reason=r.closed_reason,
            score=r.score,
            title_zh=r.report.get("title_zh"),
            links=links,
        )


class EventPage(BaseModel):
    items: list[EventSummary]
    total: int
    limit: int
    offset: int


class EventDetail(BaseModel):
    summary: EventSummary
    report: dict[str, Any]


class Healthz(BaseModel):
    status: str
    cameras: int
    cameras_online: int
    events_stored: int
    store_schema_version: int
