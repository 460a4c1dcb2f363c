"""The composition root: the one place where the store, the evidence storage, casework, the
running pipeline and the API are built and connected. The CLI, the demo, replays, cluster
workers and tests call these functions; nothing else constructs those objects.

Connections made here and nowhere else:
* the runtime's stored events → ``CaseWorker.on_stored`` (one subscription);
* casework's probes of the scene (is the camera online, the after picture) → the runtime;
* security settings of every API (auth, the package signing key, subscriber keys).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pipeline.casework.cases import AfterSnapshot, Case, CaseService, EventProbe, Probe
from pipeline.casework.feed import ChangeFeed
from pipeline.casework.outbox import Outbox
from pipeline.casework.package import Exporter
from pipeline.casework.retention import RetentionJob
from pipeline.casework.worker import CaseWorker
from pipeline.config import AppConfig, CameraConfig
from pipeline.detect.inference import Detector
from pipeline.evidence.report import ModelIdentity
from pipeline.evidence.storage import EvidenceStorage, LocalStorage, open_storage
from pipeline.runtime import Runtime
from pipeline.store.repository import EventStore
from pipeline.types import CameraChanges

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.deps import RuntimeView


def signing_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The evidence-package signing key (``GRIDSIGHT_SIGNING_KEY``)."""
    key = (os.environ if env is None else env).get("GRIDSIGHT_SIGNING_KEY")
    return key.encode() if key else None


@dataclass(frozen=True, slots=True)
class Installation:
    """One site's persistent side: index, evidence files, casework, exports."""

    cfg: AppConfig
    root: Path  # the evidence root (exported packages go under it)
    store: EventStore
    storage: EvidenceStorage
    tz: ZoneInfo
    clock: Callable[[], float]
    secrets: Mapping[str, bytes]  # subscribers' HMAC keys present in this process
    signing_key: bytes | None
    outbox: Outbox
    cases: CaseService
    exporter: Exporter
    feed: ChangeFeed


def installation(
    cfg: AppConfig,
    *,
    root: Path | None = None,
    store: EventStore | None = None,
    storage: EvidenceStorage | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    probe: Probe | None = None,
    after_snapshot: AfterSnapshot | None = None,
    sending: bool = False,
) -> Installation:
    """``sending``: this process delivers the outbox (it then needs every subscriber's key)."""
    env = os.environ if env is None else env
    root = root or cfg.evidence.root
    store = store or EventStore(cfg.store_location(root))
    storage = storage or open_storage(cfg.evidence, root)
    tz = ZoneInfo(cfg.site.timezone)
    secrets = {s.id: env[s.secret_env].encode() for s in cfg.subscribers if env.get(s.secret_env)}
    alert_urls = {a.id: env[a.url_env] for a in cfg.alerts if env.get(a.url_env)}
    outbox = Outbox(store, cfg.subscribers, secrets, tz, clock, sending=sending,
                    alerts=cfg.alerts, alert_urls=alert_urls,
                    attachment=storage.local_path)  # fmt: skip
    feed = ChangeFeed(listen=store.listen_case_changes)
    cases = CaseService(store, cfg.cases, tz, clock, enqueue=outbox.enqueue, probe=probe,
                        after_snapshot=after_snapshot, on_change=feed.publish)  # fmt: skip
    key = signing_key(env)
    exporter = Exporter(store, storage, cases, tz, clock, signing_key=key)
    return Installation(cfg, root, store, storage, tz, clock, secrets, key, outbox, cases,
                        exporter, feed)  # fmt: skip


class Gridsight:
    """A running pipeline with its casework: ``start()`` once, then ``stop()`` or
    ``wait_finished()``. Without a case ``worker`` (a cluster worker) stored events still
    become cases; the clocks, deliveries and retention run in the coordinator's process."""

    def __init__(self, site: Installation, runtime: Runtime, worker: CaseWorker | None) -> None:
        self.site = site
        self.runtime = runtime
        self.worker = worker

    @property
    def store(self) -> EventStore:
        return self.site.store

    @property
    def cases(self) -> CaseService:
        return self.site.cases

    @property
    def outbox(self) -> Outbox:
        return self.site.outbox

    def start(self) -> None:
        self.runtime.start()
        if self.worker is not None and not self.runtime.replay:  # a replay makes cases but
            self.worker.start()  # runs no clocks or delivery

    def stop(self, timeout: float = 30.0) -> None:
        self.runtime.stop(timeout)  # the writer's last events still become cases
        if self.worker is not None:
            self.worker.stop()

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self.runtime.wait_finished(timeout)


def pipeline(
    cfg: AppConfig,
    *,
    env: Mapping[str, str] | None = None,
    detector: Detector | None = None,
    model_identity: ModelIdentity | None = None,
    clock: Callable[[], float] = time.time,
    replay: bool = False,
    start_time_s: float | None = None,
    extra_classes: frozenset[int] = frozenset(),
    case_loop: bool = True,
) -> Gridsight:
    """The pipeline for ``cfg``'s enabled cameras, connected to its casework (``case_loop``
    False: a cluster worker's, whose coordinator runs ``casework`` for the site)."""
    store = EventStore(cfg.store_location())
    storage = open_storage(cfg.evidence)
    runtime = Runtime(cfg, store=store, storage=storage, env=env, detector=detector,
                      model_identity=model_identity, clock=clock, replay=replay,
                      start_time_s=start_time_s, extra_classes=extra_classes)  # fmt: skip
    site = installation(cfg, store=store, storage=storage, env=env, clock=clock,
                        probe=EventProbe(store, runtime.online),
                        after_snapshot=snapshot_saver(runtime.snapshot_jpeg, storage),
                        sending=case_loop and not replay)  # fmt: skip
    worker = casework(site)
    runtime.subscribe(worker.on_stored)
    return Gridsight(site, runtime, worker if case_loop else None)


def casework(site: Installation) -> CaseWorker:
    """SLA clocks, re-checks, deliveries and retention for ``site`` (start it once per site:
    in the pipeline's process, or in a cluster's coordinator)."""
    retention = RetentionJob(site.store, site.storage, site.cfg.retention, _free(site.storage))
    return CaseWorker(site.cases, site.outbox, retention=retention)


def coordinating(
    cfg: AppConfig, view: RuntimeView, store: EventStore
) -> tuple[Installation, CaseWorker]:
    """The coordinator's side of a cluster: the installation its API serves (over the
    coordinator's ``store``), with casework that probes the cameras through ``view`` (each
    question goes to the camera's worker)."""
    storage = open_storage(cfg.evidence)
    site = installation(cfg, store=store, storage=storage, probe=EventProbe(store, view.online),
                        after_snapshot=snapshot_saver(view.snapshot_jpeg, storage),
                        sending=True)  # fmt: skip
    return site, casework(site)


def snapshot_saver(
    snapshot_jpeg: Callable[[str], bytes | None], storage: EvidenceStorage
) -> AfterSnapshot:
    """The camera's picture now, stored as the case's after picture (自动核查)."""

    def save(case: Case, now: float) -> tuple[str, str] | None:
        jpeg = snapshot_jpeg(case.camera_id)
        if jpeg is None:
            return None
        rel = f"cases/{case.case_id}/after-{int(now)}.jpg"
        _, digest = storage.put(rel, jpeg)
        return rel, digest

    return save


def _free(storage: EvidenceStorage) -> Callable[[], int | None]:
    """Free bytes on the evidence volume (None for object storage: no disk to fill)."""
    if not isinstance(storage, LocalStorage):
        return lambda: None
    root = storage.root
    return lambda: shutil.disk_usage(root).free if root.exists() else None


def api(
    site: Installation,
    *,
    runtime: RuntimeView | None = None,
    config_path: Path | None = None,
    reconfigure: Callable[[list[CameraConfig]], CameraChanges] | None = None,
) -> FastAPI:
    """The API over an installation (and its running pipeline, if this process runs one;
    ``reconfigure`` applies the zone editor's saves to it, or to a cluster)."""
    from api.main import create_app  # the API is optional for replays and workers

    cfg = site.cfg
    return create_app(
        store=site.store, evidence_root=site.root, storage=site.storage,
        cameras=runtime.camera_configs() if runtime else list(cfg.cameras), site=cfg.site,
        runtime=runtime, config=cfg, cases=site.cases, outbox=site.outbox,
        secrets=site.secrets, auth_required=cfg.api.auth, clock=site.clock,
        exporter=site.exporter, feed=site.feed, config_path=config_path,
        reconfigure=reconfigure,
    )  # fmt: skip
