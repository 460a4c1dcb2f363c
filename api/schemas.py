"""Wire format of the API, separate from pipeline dataclasses (mapped by ``from_*`` helpers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.config import CameraConfig
from pipeline.rules.registry import RuleConfig
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
            zones=getattr(r, "zones", None),
            facades=getattr(r, "facades", None),
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
    decoder: str  # "cpu", a hardware device ("cuda"), or "cpu (why not the device asked for)"

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
            decoder=h.decoder,
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
    # integrity of the view: "learning", "ok", "moved", "occluded", "defocused"; None: unchecked
    view: str | None = None
    # how far the camera sways in wind (its pixels; registered, but small objects suffer);
    # None: it stands still
    sway_px: float | None = None

    @classmethod
    def from_config(
        cls,
        c: CameraConfig,
        health: CameraHealth | None,
        view: str | None = None,
        sway_px: float | None = None,
    ) -> CameraOut:
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
            view=view,
            sway_px=None if sway_px is None else round(sway_px, 1),
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


# -- cases ----------------------------------------------------------------------------------


class HistoryOut(BaseModel):
    """One transition of a case (``from`` is the state before it)."""

    model_config = ConfigDict(populate_by_name=True)

    seq: int
    at: str | None
    action: str
    from_: str | None = Field(alias="from")
    to: str
    actor: str
    actor_type: str
    reason_code: str | None
    reason: str | None
    detail: dict[str, Any]


class DeadlinesOut(BaseModel):
    review_by: str | None
    respond_by: str | None
    dispose_by: str | None
    recheck_until: str | None


class CaseOut(BaseModel):
    case_id: str
    state: str
    escalation_level: int
    assignee: str | None
    supervised: bool
    hotspot: bool
    parent_case_id: str | None
    recurrence_count_30d: int
    detections: int
    created_at: str | None
    last_seen_at: str | None
    closed_at: str | None
    deadlines: DeadlinesOut
    history: list[HistoryOut]
    camera_id: str
    zone_id: str | None
    event_type: str
    severity: str
    event_ids: list[str]
    after_snapshot: str | None


class CasePage(BaseModel):
    items: list[CaseOut]
    total: int


class CallbackOut(BaseModel):
    case_id: str
    state: str


class ReviewStatsOut(BaseModel):
    camera_id: str
    zone_id: str | None
    rule_id: str | None
    event_type: str
    accepted: int
    rejected: int
    reject_reasons: dict[str, int]
    precision: float | None
    suggestion: str | None


class ExportOut(BaseModel):
    package: str  # under the evidence root
    kind: str  # shared | full
    manifest_sha256: str  # keep it: it authenticates the package (gridsight verify)
    files: int
    masked_regions: int


# -- stats ----------------------------------------------------------------------------------


class SlaOut(BaseModel):
    dispatched: int
    on_time: int
    compliance: float | None


class DashboardOut(BaseModel):
    days: int
    events_per_day: dict[str, dict[str, int]]
    cases_by_state: dict[str, int]
    sla: SlaOut
    review: list[ReviewStatsOut]


class GridOut(BaseModel):
    grid_code: str
    open: int
    hotspots: int
    urgent: int
    by_type: dict[str, int]


# -- admin ----------------------------------------------------------------------------------


class AuditOut(BaseModel):
    seq: int
    at: float
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any]


class OutboxRowOut(BaseModel):
    seq: int
    subscriber_id: str
    idempotency_key: str
    case_id: str | None
    kind: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    delivered_at: float | None


class OutboxOut(BaseModel):
    counts: dict[str, int]
    rows: list[OutboxRowOut]


class RequeueOut(BaseModel):
    seq: int
    state: str


class TokenOut(BaseModel):
    name: str
    role: str
    token: str  # shown once; only its hash is stored
    expires_at: float


class RevokedOut(BaseModel):
    name: str
    state: str


# -- cameras --------------------------------------------------------------------------------


class HealthChangeOut(BaseModel):
    at: float
    state: str
    reason: str | None


class HealthHistoryOut(BaseModel):
    camera_id: str
    uptime_24h: float | None
    changes: list[HealthChangeOut]


class GeometryOut(BaseModel):
    editable: bool  # False: the server has no cameras.toml to write
    live: bool  # True: a save restarts the camera with the new zones
    zones: list[dict[str, Any]]
    facades: list[dict[str, Any]] = []


class IssueOut(BaseModel):
    location: str
    message: str


class FacadeFitOut(BaseModel):
    id: str
    ok: bool
    message: str


class GeometryCheckOut(BaseModel):
    ok: bool
    issues: list[IssueOut]
    facade_fits: list[FacadeFitOut] = []


class AppliedOut(BaseModel):
    updated: list[str]
    untouched: int


class GeometrySavedOut(BaseModel):
    ok: bool
    changed: list[str]
    backup: str | None
    applied: AppliedOut | None
    facade_fits: list[FacadeFitOut]
