"""Events: search, detail, and evidence files (paths come from the index, never the request)."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from fastapi import APIRouter, Header, HTTPException, Query, Response
from fastapi.responses import FileResponse, StreamingResponse

from api.auth import Principal, ViewerDep, audit, may_see, visible_cameras
from api.deps import MAX_OFFSET, ApiContext, ContextDep
from api.schemas import EventDetail, EventPage, EventSummary
from pipeline.evidence.storage import StorageError, iter_chunks
from pipeline.evidence.writer import PREVIEW
from pipeline.store.repository import EventQuery, EventRow

router = APIRouter(prefix="/events", tags=["events"])


class SnapshotName(StrEnum):
    ALERT = "alert"
    FIRST = "first"
    END = "end"


def _links(ctx: ApiContext, row: EventRow) -> dict[str, str]:
    base = f"/events/{row.event_id}"
    links = {"self": base}
    for name, _, _ in ctx.store.evidence_for(row.event_id):
        if name == "clip":
            links["clip"] = f"{base}/clip.mp4"
        elif name == PREVIEW:
            links[PREVIEW] = f"{base}/clip-preview.mp4"
        else:
            links[f"snapshot_{name}"] = f"{base}/snapshot.jpg?name={name}"
    return links


def _parse_time(value: str | None, field: str, tz: ZoneInfo) -> float | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        try:
            epoch = float(value)
            if not math.isfinite(epoch):
                raise ValueError(value)
            return epoch
        except ValueError:
            raise HTTPException(
                422, f"{field}: expected ISO-8601 time or epoch seconds, got {value!r}"
            ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)  # a time without offset is site-local time
    return dt.timestamp()


@router.get("", response_model=EventPage)
def list_events(
    ctx: ContextDep,
    who: ViewerDep,
    camera_id: str | None = None,
    event_type: str | None = None,
    state: str | None = None,
    since: Annotated[str | None, Query(description="ISO-8601 or epoch seconds")] = None,
    until: Annotated[str | None, Query(description="ISO-8601 or epoch seconds")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> EventPage:
    tz = ZoneInfo(ctx.site.timezone)
    query = EventQuery(
        camera_id=camera_id,
        event_type=event_type,
        state=state,
        since=_parse_time(since, "since", tz),
        until=_parse_time(until, "until", tz),
        limit=limit,
        offset=offset,
        cameras=visible_cameras(ctx, who),
    )
    rows, total = ctx.store.query_events(query)
    items = [EventSummary.from_row(r, _links(ctx, r)) for r in rows]
    return EventPage(items=items, total=total, limit=limit, offset=offset)


def _row(ctx: ApiContext, event_id: str, who: Principal) -> EventRow:
    """The event, or 404, also for one of a camera outside ``who``'s scope."""
    row = ctx.store.get_event(event_id)
    if row is None or not may_see(ctx, who, row.camera_id):
        raise HTTPException(404, f"event {event_id!r} not found")
    return row


@router.get("/{event_id}", response_model=EventDetail)
def get_event(event_id: str, ctx: ContextDep, who: ViewerDep) -> EventDetail:
    row = _row(ctx, event_id, who)
    return EventDetail(summary=EventSummary.from_row(row, _links(ctx, row)), report=row.report)


def _evidence_file(
    ctx: ApiContext, event_id: str, name: str, who: Principal, media_type: str,
    range_header: str | None = None,
) -> Response:  # fmt: skip
    _row(ctx, event_id, who)
    rel = ctx.store.evidence_path(event_id, name)
    if rel is None:
        raise HTTPException(404, f"event {event_id!r} has no {name} evidence (yet)")
    response = served_file(ctx, rel, f"evidence file for {event_id!r}/{name} is missing",
                           media_type, range_header)  # fmt: skip
    audit(ctx, who, "view_evidence", f"event:{event_id}/{name}", relpath=rel)
    return response


def served_file(
    ctx: ApiContext, rel: str, missing: str, media_type: str, range_header: str | None = None
) -> Response:
    """An indexed evidence file (never one outside the storage), or 404 ``missing``; with
    HTTP Range (one range) on every backend, so browsers can seek in clips."""
    try:
        path = ctx.storage.local_path(rel)
        if path is not None:
            return FileResponse(path, media_type=media_type)
        size = ctx.storage.size(rel)
        if size is not None:
            whole = {"Accept-Ranges": "bytes", "Content-Length": str(size)}
            wanted = byte_range(range_header, size)
            if wanted is None:
                body = iter_chunks(ctx.storage.open(rel))
                return StreamingResponse(body, media_type=media_type, headers=whole)
            if wanted == (-1, -1):
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            start, end = wanted
            part = iter_chunks(ctx.storage.open_range(rel, start, end))
            headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1),
                       "Content-Range": f"bytes {start}-{end}/{size}"}  # fmt: skip
            return StreamingResponse(part, status_code=206, media_type=media_type,
                                     headers=headers)  # fmt: skip
    except StorageError:
        pass
    raise HTTPException(404, missing)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single-range ``Range: bytes=…`` header; None to send the
    whole file (no header, several ranges, another unit); (-1, -1) when unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header.removeprefix("bytes=").strip().partition("-")
    try:
        if first:
            start, end = int(first), int(last) if last else size - 1
        else:  # "-N": the last N bytes
            start, end = max(0, size - int(last)), size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        return (-1, -1)
    return start, min(end, size - 1)


@router.get(
    "/{event_id}/clip.mp4",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content"}},
)
def event_clip(
    event_id: str, ctx: ContextDep, who: ViewerDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:  # fmt: skip
    """The original evidence clip, with HTTP Range so browsers can seek."""
    return _evidence_file(ctx, event_id, "clip", who, "video/mp4", range_header)


@router.get(
    "/{event_id}/clip-preview.mp4",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "Partial content"}},
)
def event_clip_preview(
    event_id: str, ctx: ContextDep, who: ViewerDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:  # fmt: skip
    """An H.264 copy of a clip browsers cannot play (an H.265 camera's), derived from it."""
    return _evidence_file(ctx, event_id, PREVIEW, who, "video/mp4", range_header)


@router.get(
    "/{event_id}/snapshot.jpg",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def event_snapshot(
    event_id: str, ctx: ContextDep, who: ViewerDep, name: SnapshotName = SnapshotName.ALERT
) -> Response:
    return _evidence_file(ctx, event_id, name.value, who, "image/jpeg")


THUMB_WIDTH = 240


@router.get(
    "/{event_id}/thumb.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def event_thumb(event_id: str, ctx: ContextDep, who: ViewerDep) -> Response:
    """The alert snapshot 240 pixels wide, for the review queue's pictures (a view of the
    evidence, audited as one)."""
    _row(ctx, event_id, who)
    rel = ctx.store.evidence_path(event_id, SnapshotName.ALERT.value)
    if rel is None:
        raise HTTPException(404, f"event {event_id!r} has no alert snapshot (yet)")
    try:
        data = b"".join(iter_chunks(ctx.storage.open(rel)))
    except StorageError:
        raise HTTPException(404, f"evidence file for {event_id!r}/alert is missing") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise HTTPException(500, f"the alert snapshot of {event_id!r} is not a readable JPEG")
    h, w = image.shape[:2]
    small = cv2.resize(image, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
    if not ok:
        raise HTTPException(500, "thumbnail encoding failed")
    audit(ctx, who, "view_evidence", f"event:{event_id}/alert-thumb", relpath=rel)
    return Response(buf.tobytes(), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})  # fmt: skip
