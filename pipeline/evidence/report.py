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
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.codes import classify
from pipeline.config import CameraConfig, SiteConfig, ZoneConfig
from pipeline.types import (
    BinDetails,
    CameraStatusDetails,
    Event,
    EventState,
    ParkingDetails,
    ThrowingDetails,
    VendingDetails,
)

SCHEMA_VERSION = "1.0"

CLASS_ZH = {
    "car": "小型汽车",
    "bus": "大客车",
    "truck": "货车",
    "motorcycle": "摩托车",
    "bicycle": "自行车/电动自行车",
}
ZONE_KIND_ZH = {"no_parking": "禁停区", "fire_lane": "消防通道"}
VENDING_ZONE_ZH = {"walkway": "人行道", "roadway": "车行道", "shop_front": "店铺门前"}
OBJECT_ZH = {
    "umbrella": "遮阳伞", "dining table": "桌子", "chair": "椅子", "bench": "长凳",
    "bicycle": "三轮/自行车", "motorcycle": "摩托/电动车", "truck": "货车", "car": "汽车",
    "suitcase": "箱子", "handbag": "提包", "backpack": "背包", "potted plant": "盆栽",
    "bottle": "瓶子", "bowl": "碗", "cup": "杯子", "book": "书",
}  # fmt: skip


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


def iso(t: float | None, tz: ZoneInfo) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=tz).isoformat(timespec="milliseconds")


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


def _dedup_key(event: Event, tz: ZoneInfo) -> str:
    bucket = datetime.fromtimestamp(event.alerted_at, tz=tz).strftime("%Y-%m-%dT%H")
    return f"{event.camera_id}|{event.event_type.value}|{event.zone_id or '-'}|{bucket}"


def _titles(
    event: Event, camera: CameraConfig, zone: ZoneConfig | None, name_zh: str, name_en: str
) -> dict[str, str]:
    place_zh = camera.name + (f" {zone.name}" if zone and zone.name else "")
    place_en = camera.id + (f" / {zone.id}" if zone else "")
    d = event.details
    if isinstance(d, ParkingDetails):
        minutes = d.dwell_s / 60
        vehicle_zh = CLASS_ZH.get(d.class_name, d.class_name)
        zone_zh = ZONE_KIND_ZH.get(d.zone_kind, d.zone_kind)
        limit = d.min_dwell_s / 60
        summary_zh = f"{vehicle_zh}在{zone_zh}停留约{minutes:.1f}分钟（阈值{limit:.1f}分钟）"
        summary_en = (
            f"{d.class_name} standing in {d.zone_kind} zone for about {minutes:.1f} min "
            f"(limit {limit:.1f} min)"
        )
        if event.state == EventState.ENDED:
            summary_zh += "，已驶离" if d.end_reason == "left" else f"，结束（{d.end_reason}）"
            summary_en += "; left" if d.end_reason == "left" else f"; ended ({d.end_reason})"
    elif isinstance(d, ThrowingDetails):
        where_zh = f"{d.building}号楼" + (f"{d.unit}单元" if d.unit else "")
        where_en = f"building {d.building}" + (f" unit {d.unit}" if d.unit else "")
        lo, hi = d.floor_range
        best = d.candidates[0] if d.candidates else None
        top_zh = (
            f"，最可能 {best.floor}层 {best.column}列（{best.probability:.0%}）" if best else ""
        )
        top_en = (
            f"; most likely floor {best.floor}, column {best.column} ({best.probability:.0%})"
            if best
            else ""
        )
        summary_zh = (
            f"{where_zh}外立面坠落物，下落约{d.fall_height_m:.1f}米（加速度{d.g_ratio:.2f}g），"
            f"来源楼层约{lo}–{hi}层{top_zh}；须人工复核"
        )
        summary_en = (
            f"Object falling down the facade of {where_en}, about {d.fall_height_m:.1f} m "
            f"({d.g_ratio:.2f} g); origin floors {lo}-{hi}{top_en}; human review required"
        )
    elif isinstance(d, VendingDetails):
        zone_zh = VENDING_ZONE_ZH.get(d.zone_kind, d.zone_kind)
        what_zh = "、".join(OBJECT_ZH.get(o, o) for o in d.objects) or "不明物品（背景变化）"
        if d.stops > 1:
            summary_zh = (
                f"流动摊贩在{zone_zh}反复停留（{d.stops}次），每次不足{d.min_dwell_s / 60:.0f}分钟"
            )
            summary_en = f"Mobile vendor stopping repeatedly in the {d.zone_kind} ({d.stops} stops)"
        else:
            minutes = d.dwell_s / 60
            what_en = ", ".join(d.objects) or "unlisted objects"
            summary_zh = (
                f"{zone_zh}约{d.peak_occupancy:.0%}面积被占用（{what_zh}），持续约{minutes:.1f}分钟"
            )
            summary_zh += "，有人员在旁" if d.persons_nearby else ""
            summary_en = (
                f"{d.peak_occupancy:.0%} of the {d.zone_kind} blocked ({what_en}) "
                f"for about {minutes:.1f} min"
            )
            summary_en += "; people beside it" if d.persons_nearby else ""
        if event.state == EventState.ENDED and d.end_reason == "cleared":
            summary_zh += "，已清理"
            summary_en += "; cleared"
    elif isinstance(d, BinDetails):
        minutes = d.duration_s / 60
        if d.zone_kind == "litter_area":
            summary_zh = (
                f"无容器处出现堆放垃圾（约{d.ground_fraction:.0%}地面），持续约{minutes:.0f}分钟"
            )
            summary_en = (
                f"Rubbish on open ground ({d.ground_fraction:.0%} of the area), {minutes:.0f} min"
            )
        else:
            summary_zh = (
                f"垃圾箱满溢：桶口以上变化{d.above_rim_fraction:.0%}、周边地面{d.ground_fraction:.0%}，"
                f"持续约{minutes:.0f}分钟"
            )
            summary_en = (
                f"Bin overflowing: {d.above_rim_fraction:.0%} above the rim and "
                f"{d.ground_fraction:.0%} of the ground around it changed, {minutes:.0f} min"
            )
        if event.state == EventState.ENDED and d.end_reason == "clean":
            summary_zh += "，已清理"
            summary_en += "; cleaned"
    elif isinstance(d, CameraStatusDetails):
        summary_zh = f"摄像机离线：{d.reason}"
        summary_en = f"Camera offline: {d.reason}"
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
    if isinstance(d, ParkingDetails):
        det |= {
            "dwell_seconds": d.dwell_s,
            "enforced_dwell_seconds": d.enforced_dwell_s,
            "thresholds": {"min_dwell_s": d.min_dwell_s},
            "observations": d.observations,
            "end_reason": d.end_reason,
            "objects": [
                {
                    "label": d.class_name,
                    "label_zh": CLASS_ZH.get(d.class_name, d.class_name),
                    "vehicle_group": d.vehicle_group,
                    "track_ids": [str(t) for t in d.track_ids],
                    "bbox_norm": list(d.box_rel),
                    "first_bbox_norm": list(d.first_box_rel),
                }
            ],
        }
    elif isinstance(d, ThrowingDetails):
        w, h = d.frame_size
        best = d.candidates[0] if d.candidates else None
        det |= {
            "trajectory": [
                {"t": t, "x_norm": round(x / w, 5), "y_norm": round(y / h, 5), "x_px": x, "y_px": y}
                for t, x, y in d.trajectory
            ],
            "trajectory_t0": iso(d.t0_s, tz),
            "frame_size": list(d.frame_size),
            "fit": {
                "model": (
                    "ballistic body with drag in 3-D, through the camera solved from the facade "
                    "calibration (metres, z up)"
                    if d.model == "3d"
                    else "z(t) = z0 + v0·t − a·t²/2 on the calibrated facade plane (metres, z up)"
                ),
                "accel_mps2": d.accel_mps2,
                "g_ratio": d.g_ratio,
                "v0_z_mps": d.v0_z_mps,
                "v0_x_mps": d.v0_x_mps,
                "final_speed_mps": d.final_speed_mps,
                "fall_height_m": d.fall_height_m,
                "rms_m": d.fit_rms_m,
                **(
                    {
                        "rms_px": d.fit_rms_px,
                        "release_out_m": d.release_out_m,
                        "outward_speed_mps": d.outward_speed_mps,
                    }
                    if d.model == "3d"
                    else {}
                ),
            },
            "object_size_px": d.object_size_px,
            "source_estimate": {
                "building_id": d.building,
                "unit": d.unit,
                "facade": d.facade_id,
                "floor_min": d.floor_range[0],
                "floor_max": d.floor_range[1],
                "window_column": best.column if best else None,
                "confidence": best.probability if best else 0.0,
                "release_offset_s": d.release_time_s,
                "release_xz_m": list(d.release_xz_m),
                "release_sigma_m": list(d.release_sigma_m),
                "release_px": list(d.release_px),
                "method": (
                    "3-D ballistic fit through the solved camera; release = top of the flight"
                    if d.model == "3d"
                    else "parabola fit on calibrated facade homography; apex = release"
                ),
                "candidates": [
                    {
                        "building_id": c.building, "unit": c.unit, "floor": c.floor,
                        "window_column": c.column, "probability": c.probability,
                    }
                    for c in d.candidates
                ],
            },
            "review_required": True,
        }  # fmt: skip
    elif isinstance(d, VendingDetails):
        det |= {
            "dwell_seconds": d.dwell_s,
            "thresholds": {"min_dwell_s": d.min_dwell_s},
            "occupancy": d.occupancy,
            "peak_occupancy": d.peak_occupancy,
            "static_fraction": d.static_fraction,
            "persons_nearby": d.persons_nearby,
            "stops": d.stops,
            "end_reason": d.end_reason,
            "objects": [{"label": o, "label_zh": OBJECT_ZH.get(o, o)} for o in d.objects],
            "footprint": {
                "bbox_norm": list(d.footprint_box_rel),
                "polygons_norm": [[list(p) for p in poly] for poly in d.footprint_polygons_rel],
            },
        }
    elif isinstance(d, BinDetails):
        det |= {
            "above_rim_fraction": d.above_rim_fraction,
            "ground_fraction": d.ground_fraction,
            "model_score": d.model_score,
            "observations": d.observations,
            "reference_taken_at": iso(d.reference_time_s, tz),
            "duration_seconds": d.duration_s,
            "end_reason": d.end_reason,
            "changed": {
                "bbox_norm": list(d.changed_box_rel),
                "polygons_norm": [[list(p) for p in poly] for poly in d.changed_polygons_rel],
            },
        }
    elif isinstance(d, CameraStatusDetails):
        det |= {"reason": d.reason, "reconnects": d.reconnects, "epoch": d.epoch}
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
