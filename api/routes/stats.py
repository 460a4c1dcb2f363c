"""Dashboard figures: events per type per day, reviewer precision, SLA compliance, grids."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.auth import ViewerDep
from api.deps import ContextDep
from api.routes.cases import review_json

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("/dashboard")
def dashboard(
    ctx: ContextDep, _who: ViewerDep, days: Annotated[int, Query(ge=1, le=366)] = 14
) -> dict[str, Any]:
    tz = ZoneInfo(ctx.site.timezone)
    since = ctx.clock() - days * 86400.0
    with ctx.store.reader() as db:
        rows = db.execute(
            "SELECT event_type, alerted_at FROM events WHERE alerted_at >= ? "
            "AND event_type != 'camera_offline'",
            (since,),
        ).fetchall()
        breached = {
            str(r[0])
            for r in db.execute(
                "SELECT DISTINCT case_id FROM case_history WHERE action IN ('escalate', 'overdue')"
            )
        }
        dispatched = [
            str(r[0])
            for r in db.execute(
                "SELECT DISTINCT h.case_id FROM case_history h JOIN cases c USING (case_id) "
                "WHERE h.action = 'dispatch' AND c.created_at >= ?",
                (since,),
            )
        ]
        states = dict(
            db.execute(
                "SELECT state, COUNT(*) FROM cases WHERE created_at >= ? GROUP BY 1", (since,)
            ).fetchall()
        )
    per_day: dict[str, dict[str, int]] = {}
    for etype, at in rows:
        day = datetime.fromtimestamp(at, tz).date().isoformat()
        per_day.setdefault(day, {})
        per_day[day][etype] = per_day[day].get(etype, 0) + 1
    on_time = [c for c in dispatched if c not in breached]
    return {
        "days": days,
        "events_per_day": dict(sorted(per_day.items())),
        "cases_by_state": states,
        "sla": {
            "dispatched": len(dispatched),
            "on_time": len(on_time),
            "compliance": round(len(on_time) / len(dispatched), 3) if dispatched else None,
        },
        "review": [review_json(s) for s in ctx.cases.review_stats(min_reviews=5)],
    }


@router.get("/grids")
def grids(ctx: ContextDep, _who: ViewerDep) -> list[dict[str, Any]]:
    """Open cases and hotspots per grid (the "real-scene map" without a GIS server)."""
    grid_of = {c.id: (c.grid_code or "—") for c in ctx.cameras}
    cases, _ = ctx.cases.query(open_only=True, limit=10000)
    out: dict[str, dict[str, Any]] = {}
    for c in cases:
        empty: dict[str, Any] = {"open": 0, "hotspots": 0, "urgent": 0, "by_type": {}}
        g = out.setdefault(grid_of.get(c.camera_id, "—"), empty)
        g["open"] += 1
        g["hotspots"] += int(bool(c.hotspot))
        g["urgent"] += int(c.severity == "urgent")
        g["by_type"][c.event_type] = g["by_type"].get(c.event_type, 0) + 1
    return [{"grid_code": k, **v} for k, v in sorted(out.items())]
