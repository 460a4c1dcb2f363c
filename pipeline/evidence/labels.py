"""Words and times as reports and snapshots show them (shared by the report and each rule's
section of it)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

CLASS_ZH = {
    "car": "小型汽车",
    "bus": "大客车",
    "truck": "货车",
    "motorcycle": "摩托车",
    "bicycle": "自行车/电动自行车",
    "vehicle": "车辆",
}
ZONE_KIND_ZH = {"no_parking": "禁停区", "fire_lane": "消防通道"}
VENDING_ZONE_ZH = {"walkway": "人行道", "roadway": "车行道", "shop_front": "店铺门前"}
OBJECT_ZH = {
    "umbrella": "遮阳伞", "dining table": "桌子", "chair": "椅子", "bench": "长凳",
    "bicycle": "三轮/自行车", "motorcycle": "摩托/电动车", "truck": "货车", "car": "汽车",
    "suitcase": "箱子", "handbag": "提包", "backpack": "背包", "potted plant": "盆栽",
    "bottle": "瓶子", "bowl": "碗", "cup": "杯子", "book": "书",
}  # fmt: skip


def iso(t: float | None, tz: ZoneInfo) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=tz).isoformat(timespec="milliseconds")
