"""Dashboard figures: events per type per day, reviewer precision, SLA compliance, grids."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.auth import ViewerDep, visible_cameras
from api.deps import ContextDep
from api.routes.cases import review_json, scoped_review_stats
from api.schemas import DashboardOut, GridOut
from pipeline.store.access import dashboard as store_dashboard

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("/dashboard", response_model=DashboardOut)
def dashboard(
    ctx: ContextDep, who: ViewerDep, days: Annotated[int, Query(ge=1, le=366)] = 14
) -> dict[str, Any]:
    tz = ZoneInfo(ctx.site.timezone)
    figures = store_dashboard(ctx.store, ctx.clock() - days * 86400.0, visible_cameras(ctx, who))
    per_day: dict[str, dict[str, int]] = {}
    for etype, at in figures.events:
        day = datetime.fromtimestamp(at, tz).date().isoformat()
        per_day.setdefault(day, {})
        per_day[day][etype] = per_day[day].get(etype, 0) + 1
    dispatched = figures.dispatched
    on_time = [c for c in dispatched if c not in figures.breached]
    return {
        "days": days,
        "events_per_day": dict(sorted(per_day.items())),
        "cases_by_state": figures.states,
        "sla": {
            "dispatched": len(dispatched),
            "on_time": len(on_time),
            "compliance": round(len(on_time) / len(dispatched), 3) if dispatched else None,
        },
        "review": [review_json(s) for s in scoped_review_stats(ctx, who, 5)],
    }


@router.get("/grids", response_model=list[GridOut])
def grids(ctx: ContextDep, who: ViewerDep) -> list[dict[str, Any]]:
    """Open cases and hotspots per grid (the "real-scene map" without a GIS server)."""
    grid_of = {c.id: (c.grid_code or "—") for c in ctx.cameras}
    cases, _ = ctx.cases.query(open_only=True, limit=10000, cameras=visible_cameras(ctx, who))
    out: dict[str, dict[str, Any]] = {}
    for c in cases:
        empty: dict[str, Any] = {"open": 0, "hotspots": 0, "urgent": 0, "by_type": {}}
        g = out.setdefault(grid_of.get(c.camera_id, "—"), empty)
        g["open"] += 1
        g["hotspots"] += int(bool(c.hotspot))
        g["urgent"] += int(c.severity == "urgent")
        g["by_type"][c.event_type] = g["by_type"].get(c.event_type, 0) + 1
    return [{"grid_code": k, **v} for k, v in sorted(out.items())]
