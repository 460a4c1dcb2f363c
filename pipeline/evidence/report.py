"""Event reports (schema v1, after ``domain-standards.md`` §6.1): what the grid platform receives.

A report is built from frozen pipeline data only (event, camera and site config, model identity,
evidence items), so the same event always yields the same report. Times are ISO-8601 with the
site's UTC offset; stream-relative times are added for replays.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pipeline.codes import classify
from pipeline.config import CameraConfig, SiteConfig, ZoneConfig
from pipeline.evidence.labels import iso
from pipeline.types import (
    CameraStatusDetails,
    CameraViewDetails,
    Event,
)

if TYPE_CHECKING:
    from pipeline.rules.base import RuleKind

SCHEMA_VERSION = "1.0"

@dataclass(frozen=True, slots=True)
class ModelIdentity:
    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One evidence file, described after it has been written and hashed."""

    evidence_id: str  # "<event_id>-<name>"
    name: str  # clip | alert | first | end
    kind: str  # video_clip | annotated_image
    role: str  # original | derived
    relpath: str  # relative to the evidence root; never user input
    media_type: str
    size_bytes: int
    sha256: str
    start_time_s: float
    end_time_s: float | None = None
    pre_roll_s: float | None = None
    post_roll_s: float | None = None
    truncated: bool = False
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    derived_from: str | None = None


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def build_report(
    event: Event,
    camera: CameraConfig,
    site: SiteConfig,
    model: ModelIdentity | None,
    evidence: list[EvidenceItem],
) -> dict[str, Any]:
    tz = ZoneInfo(site.timezone)
    cls = classify(event.event_type)
    zone = next((z for z in camera.zones if z.id == event.zone_id), None)
    evidence_json = [_evidence_json(e, camera, tz) for e in evidence]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "report_id": event.event_id,
        "dedup_key": _dedup_key(event, tz),
        "parent_report_id": getattr(event.details, "previous_event_id", None),
        "event_type": event.event_type.value,
        "classification": {
            "name_zh": cls.name_zh,
            "name_en": cls.name_en,
            "codes": [
                {
                    "system": c.system,
                    **({"kind": c.kind} if c.kind else {}),
                    "code": c.code,
                    "name_zh": c.name_zh,
                    **(
                        {"matter_code": f"{site.admin_division_code}{c.code}"}
                        if site.admin_division_code and c.system.startswith("GB/T 47678")
                        else {}
                    ),
                    "verified": c.verified,
                }
                for c in cls.codes
            ],
        },
        "severity": cls.severity,
        **_titles(event, camera, zone, cls.name_zh, cls.name_en),
        "source": {"channel": "video_ai", "system_id": site.system_id},
        "detection": _detection(event, zone, model, tz),
        "location": {
            "admin_division_code": site.admin_division_code,
            "street_code": site.street_code,
            "community_code": camera.community_code or site.community_code,
            "grids": [{"scheme": "local", "code": camera.grid_code}] if camera.grid_code else [],
            "address_text": camera.address,
            "context": "fire_lane"
            if event.zone_id and zone and zone.kind == "fire_lane"
            else camera.context,
            "lon": camera.lon,
            "lat": camera.lat,
            "crs": "CGCS2000" if camera.lon is not None else None,
        },
        "camera": _camera(camera),
        "evidence": evidence_json,
        "evidence_manifest_sha256": hashlib.sha256(canonical_json(evidence_json)).hexdigest(),
        "lifecycle": {
            "state": "pending_review",
            "detection_state": event.state.value,
            "history": [
                {
                    "from": "detected",
                    "to": "pending_review",
                    "at": iso(event.alerted_at, tz),
                    "actor_type": "system",
                }
            ],
        },
        "created_at": iso(event.alerted_at, tz),
        "updated_at": iso(event.updated_at, tz),
    }
    return report


def kind_of_details(details: object) -> RuleKind[Any, Any] | None:
    # imported here: the store imports this module (EvidenceItem), and the rules bring the
    # detector runtime with them, which a store user (the API, the CLI) does not need
    from pipeline.rules.registry import kind_of_details as lookup

    return lookup(details)


def _dedup_key(event: Event, tz: ZoneInfo) -> str:
    bucket = datetime.fromtimestamp(event.alerted_at, tz=tz).strftime("%Y-%m-%dT%H")
    return f"{event.camera_id}|{event.event_type.value}|{event.zone_id or '-'}|{bucket}"


def _titles(
    event: Event, camera: CameraConfig, zone: ZoneConfig | None, name_zh: str, name_en: str
) -> dict[str, str]:
    place_zh = camera.name + (f" {zone.name}" if zone and zone.name else "")
    place_en = camera.id + (f" / {zone.id}" if zone else "")
    d = event.details
    kind = kind_of_details(d)
    if kind is not None:
        summary_zh, summary_en = kind.summary(event, d)
    elif isinstance(d, CameraStatusDetails):
        summary_zh = f"摄像机离线：{d.reason}"
        summary_en = f"Camera offline: {d.reason}"
    elif isinstance(d, CameraViewDetails):
        zh = {"moved": "画面移位", "occluded": "画面遮挡", "defocused": "画面失焦"}[d.kind]
        summary_zh = f"摄像机{zh}：与参考画面吻合 {d.match:.0%}，规则已暂停，待确认"
        summary_en = (
            f"Camera view {d.kind}: {d.match:.0%} of the reference view in place; "
            "rules paused until confirmed"
        )
    else:  # pragma: no cover - every details type is a rule's or the camera's
        raise TypeError(f"no report section for {type(d).__name__}")
    return {
        "title_zh": f"{place_zh}：{name_zh}"[:60],
        "title_en": f"{place_en}: {name_en}",
        "summary_zh": summary_zh[:500],
        "summary_en": summary_en[:500],
    }


def _detection(
    event: Event, zone: ZoneConfig | None, model: ModelIdentity | None, tz: ZoneInfo
) -> dict[str, Any]:
    d = event.details
    det: dict[str, Any] = {
        "model_id": model.name if model else "none",
        "model_version": model.sha256[:12] if model else "none",
        "model_sha256": model.sha256 if model else None,
        "rule_id": event.rule_id,
        "confidence": event.score,
        "first_seen_at": iso(event.started_at, tz),
        "last_seen_at": iso(event.updated_at, tz),
        "alerted_at": iso(event.alerted_at, tz),
        "ended_at": iso(event.ended_at, tz),
        "stream_offset_s": event.stream_offset_s,
    }
    if zone is not None:
        det["zone"] = {
            "zone_id": zone.id,
            "kind": zone.kind.value,
            "name": zone.name,
            "polygon_norm": [list(p) for p in zone.polygon],
        }
    kind = kind_of_details(d)
    if kind is not None:
        det |= kind.detection(d, tz)
    elif isinstance(d, CameraStatusDetails):
        det |= {"reason": d.reason, "reconnects": d.reconnects, "epoch": d.epoch}
    elif isinstance(d, CameraViewDetails):
        det |= {
            "view_problem": d.kind, "match": d.match, "detail": d.detail,
            "sharpness": d.sharpness, "shift": d.shift,
            "reference_at": iso(d.reference_time_s, tz),
            "end_reason": d.end_reason,
        }  # fmt: skip
    return det


def _camera(camera: CameraConfig) -> dict[str, Any]:
    gb = camera.gb28181_channel_id or camera.gb28181_device_id
    return {
        "camera_id": camera.id,
        "name": camera.name,
        "gb28181_device_id": camera.gb28181_device_id,
        "gb28181_channel_id": camera.gb28181_channel_id,
        "industry_code": gb[8:10] if gb else None,
        "type_code": gb[10:13] if gb else None,
    }


def _evidence_json(e: EvidenceItem, camera: CameraConfig, tz: ZoneInfo) -> dict[str, Any]:
    item: dict[str, Any] = {
        "evidence_id": e.evidence_id,
        "name": e.name,
        "kind": e.kind,
        "role": e.role,
        "uri": e.relpath,
        "media_type": e.media_type,
        "size_bytes": e.size_bytes,
        "sha256": e.sha256,
        "captured_from": camera.gb28181_channel_id or camera.id,
        "start_time": iso(e.start_time_s, tz),
        "access_level": "restricted" if e.role == "original" else "internal",
    }
    if e.end_time_s is not None:
        item["end_time"] = iso(e.end_time_s, tz)
    if e.kind == "video_clip":
        item |= {
            "pre_roll_s": e.pre_roll_s,
            "post_roll_s": e.post_roll_s,
            "truncated": e.truncated,
            "codec": e.codec,
            "width": e.width,
            "height": e.height,
        }
    if e.derived_from:
        item["derived_from"] = e.derived_from
        item["derivation"] = "boxes+zone overlay"
    return item
