"""Event classification: names (中文 first) and codes of every code system we report.

Codes follow ``shared/reference/domain-standards.md`` §1.3 / §6.1. The GB/T 47678.5-2026 codes
come from a third-party transcription of the standard and are marked ``verified = False`` until
checked against the official text; 高空抛物 and device outages have no national code and use
local extension codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.types import EventType

Severity = Literal["urgent", "normal"]


@dataclass(frozen=True, slots=True)
class Code:
    system: Literal["GB/T 47678.5-2026", "GB/T 30428.2-2013", "local"]
    code: str
    name_zh: str
    kind: Literal["管理事项", "管理部件", "事件"] | None = None
    verified: bool = False


@dataclass(frozen=True, slots=True)
class Classification:
    event_type: EventType
    name_zh: str
    name_en: str
    severity: Severity
    codes: tuple[Code, ...]


def _c(
    et: EventType,
    zh: str,
    en: str,
    severity: Severity,
    gb47678: str | None,
    gb30428: str | None,
    local: str,
) -> Classification:
    codes: list[Code] = []
    if gb47678:
        codes.append(Code("GB/T 47678.5-2026", gb47678, zh, "管理事项"))
    if gb30428:
        codes.append(Code("GB/T 30428.2-2013", gb30428, zh, "事件"))
    codes.append(Code("local", local, zh, verified=True))
    return Classification(et, zh, en, severity, tuple(codes))


CLASSIFICATIONS: dict[EventType, Classification] = {
    c.event_type: c
    for c in (
        _c(EventType.HIGH_ALTITUDE_THROWING, "高空抛物", "High-altitude throwing", "urgent",
           None, None, "LX-GKPW-01"),
        _c(EventType.ROAD_OCCUPATION_VENDING, "占道经营", "Road-occupying vending", "normal",
           "09006", None, "LX-ZDJY-01"),
        _c(EventType.UNLICENSED_MOBILE_VENDING, "无照经营游商", "Unlicensed mobile vendor",
           "normal", "09001", "0501", "LX-WZYS-01"),
        _c(EventType.SHOP_FRONT_SPILLOVER, "店外经营", "Shop-front spill-over trading", "normal",
           "09005", "0504", "LX-DWJY-01"),
        _c(EventType.BIN_OVERFLOW, "垃圾站（箱）满溢", "Overflowing bin / station", "normal",
           "06042", None, "LX-LJMY-01"),
        _c(EventType.EXPOSED_GARBAGE, "暴露垃圾", "Exposed garbage", "normal",
           "06010", "0102", "LX-BLLJ-01"),
        _c(EventType.ACCUMULATED_GARBAGE, "积存垃圾渣土", "Accumulated garbage / muck", "normal",
           "06011", "0103", "LX-JCLJ-01"),
        _c(EventType.ILLEGAL_PARKING_MOTOR, "机动车乱停放", "Illegal motor-vehicle parking",
           "normal", "09009", "0505", "LX-JDCT-01"),
        _c(EventType.ILLEGAL_PARKING_NON_MOTOR, "非机动车乱停放",
           "Illegal non-motor-vehicle parking", "normal", "09010", "0506", "LX-FJDC-01"),
        _c(EventType.FIRE_LANE_OCCUPATION, "占用消防通道", "Fire-lane occupation", "urgent",
           "09012", None, "LX-XFTD-01"),
        _c(EventType.CAMERA_OFFLINE, "视频设备离线", "Camera offline", "normal",
           None, None, "LX-SBLX-01"),
        _c(EventType.CAMERA_TAMPER, "视频遮挡/移位", "Camera moved, covered or defocused",
           "normal", None, None, "LX-SPZD-01"),
    )
}  # fmt: skip


# The cameras' own state, for integrators: neither governance cases nor incident statistics.
DEVICE_EVENT_TYPES = frozenset({EventType.CAMERA_OFFLINE.value, EventType.CAMERA_TAMPER.value})


def classify(event_type: EventType) -> Classification:
    return CLASSIFICATIONS[event_type]
