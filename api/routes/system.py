"""Liveness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.auth import AnyRoleDep
from api.deps import ApiContext, ContextDep
from api.schemas import Healthz
from pipeline.evidence.schema import report_schema
from pipeline.types import CameraHealth, HealthState

router = APIRouter(tags=["system"])
_Family = type[GaugeMetricFamily | CounterMetricFamily]


class RuntimeCollector(Collector):
    """Reads health and counters at scrape time; holds no state of its own."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def collect(self) -> Iterator[Metric]:
        ctx = self._ctx
        events = CounterMetricFamily(
            "gridsight_events", "Events stored, by type", labels=["event_type"]
        )
        for etype, n in sorted(ctx.store.count_by_type().items()):
            events.add_metric([etype], n)
        yield events
        rt = ctx.runtime
        if rt is None:
            return
        per_camera: list[tuple[str, str, _Family, Callable[[CameraHealth], float]]] = [
            # (name, help, kind, value of a CameraHealth)
            ("gridsight_camera_up", "1 if the camera delivers frames", GaugeMetricFamily,
             lambda h: 1.0 if h.state == HealthState.ONLINE else 0.0),
            ("gridsight_camera_fps_in", "Packets per second demuxed", GaugeMetricFamily,
             lambda h: h.fps_in),
            ("gridsight_camera_frames", "Frames handed to analysis", CounterMetricFamily,
             lambda h: h.frames_out),
            ("gridsight_camera_drops", "Frames dropped (analysis busy)", CounterMetricFamily,
             lambda h: h.drops),
            ("gridsight_camera_reconnects", "Reconnects", CounterMetricFamily,
             lambda h: h.reconnects),
        ]  # fmt: skip
        healths = [h for c in ctx.cameras if (h := rt.health(c.id)) is not None]
        for name, doc, kind, value in per_camera:
            family = kind(name, doc, labels=["camera_id"])
            for h in healths:
                family.add_metric([h.camera_id], float(value(h)))
            yield family
        state = GaugeMetricFamily(
            "gridsight_camera_state", "Health state (1 = current)", labels=["camera_id", "state"]
        )
        for h in healths:
            for s in HealthState:
                state.add_metric([h.camera_id, s.value], 1.0 if h.state == s else 0.0)
        yield state
        # a GPU node's cameras fallen back to the CPU show here before its cores run out
        decoder = GaugeMetricFamily(
            "gridsight_camera_decoder",
            "Where the camera's pictures are decoded (1 = current): cpu or a hardware device",
            labels=["camera_id", "decoder"],
        )
        for h in healths:
            decoder.add_metric([h.camera_id, h.decoder.split(" ", 1)[0]], 1.0)
        yield decoder
        ws, inf = rt.writer_stats(), rt.inference_stats()
        yield GaugeMetricFamily(
            "gridsight_evidence_queue_depth", "Notices waiting for the writer", ws.queue_depth
        )
        yield CounterMetricFamily(
            "gridsight_evidence_write_errors", "Evidence write failures", ws.write_errors
        )
        yield CounterMetricFamily(
            "gridsight_inference_frames", "Frames through the detector", inf.frames
        )
        yield CounterMetricFamily(
            "gridsight_inference_detected_frames",
            "Frames the detector ran on (others were skipped by the change gate)",
            inf.detected,
        )
        yield CounterMetricFamily(
            "gridsight_inference_busy_seconds", "Time spent in inference", inf.busy_s
        )


@router.get("/healthz", response_model=Healthz)
def healthz(ctx: ContextDep) -> Healthz:
    rt = ctx.runtime
    online = 0
    if rt is not None:
        online = sum(
            1 for c in ctx.cameras if (h := rt.health(c.id)) and h.state == HealthState.ONLINE
        )
    stored = sum(ctx.store.count_by_type().values())
    return Healthz(
        status="ok",
        cameras=len(ctx.cameras),
        cameras_online=online,
        events_stored=stored,
        store_schema_version=ctx.store.schema_version,
    )


@router.get("/metrics", response_class=Response)
def metrics(ctx: ContextDep, who: AnyRoleDep) -> Response:
    """Figures of the whole installation (every camera): not for grid-scoped tokens."""
    if who.scope is not None:
        raise HTTPException(
            403, "metrics cover every camera; a grid-scoped token may not read them"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(ctx))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")


@router.get("/schemas/event-report-v1.json")
def event_report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every stored and pushed event report satisfies."""
    return report_schema()
