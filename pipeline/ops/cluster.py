"""Cameras sharded over worker processes: each worker runs the ordinary single-host ``Runtime``
for its share; a coordinator places cameras by measured cost, moves the cameras of a worker
that died, and sends a configuration change only to the workers it concerns. Workers are local
processes, one per core (``pipeline.ops.workers``, what ``gridsight run`` starts by default),
or Ray actors on several hosts (``gridsight run --cluster``; Ray is the optional ``[cluster]``
extra, imported only there).

The coordinator's process serves the API (``ClusterView`` asks each camera's worker) and runs
casework's clocks, deliveries and retention once for the whole site; workers turn their own
stored events into cases.

Placement is sticky: a camera stays where it runs until its worker dies or it is removed (a
move costs a reconnect and ends its open events with reason "reconfigured"). New and orphaned
cameras go, heaviest first, to the worker with the least planned load (cores from
``pipeline.ops.capacity``).

Store: every worker writes events, cases and outbox rows to the configured store. Workers on
one host may share the SQLite file in the evidence root (WAL, busy timeout); workers on several
hosts need ``[store] url`` (PostgreSQL), because SQLite's locks do not work over a network
filesystem. Evidence files go to the configured evidence storage
(``pipeline.evidence.storage``): the evidence root, which several hosts must then mount as shared
storage, or an S3 bucket.

When a worker is lost, the events it had open can never be ended by their analyzer: the
coordinator ends them in the store with ``closed_reason = "worker_lost"`` before the cameras
start elsewhere, and the lost worker is killed so that it cannot write again (a late write to a
closed event is ignored by the store). The camera's new worker raises a new event if the
incident is still there; the case layer attaches it to the same open case, so counts reconcile:
one case per incident, every event linked exactly once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.config import AppConfig, CameraConfig
from pipeline.detect.inference import Detector, InferenceStats
from pipeline.errors import ConfigError, ConfigIssue, PipelineError
from pipeline.evidence.report import ModelIdentity
from pipeline.evidence.writer import WriterStats
from pipeline.ops.capacity import CostModel
from pipeline.store.repository import EventStore
from pipeline.types import CameraChanges, CameraHealth, HealthChange

logger = logging.getLogger(__name__)


def assign(
    cameras: list[CameraConfig],
    workers: list[str],
    current: Mapping[str, str],
    cost: Callable[[CameraConfig], float],
) -> dict[str, str]:
    """camera id → worker id. Cameras already on a live worker stay; the rest are placed
    heaviest first on the least-loaded worker."""
    if not workers:
        raise ValueError("no workers to place cameras on")
    load = dict.fromkeys(workers, 0.0)
    placed: dict[str, str] = {}
    for cam in cameras:
        w = current.get(cam.id)
        if w in load:
            placed[cam.id] = w
            load[w] += cost(cam)
    for cam in sorted((c for c in cameras if c.id not in placed), key=cost, reverse=True):
        w = min(workers, key=lambda k: (load[k], k))
        placed[cam.id] = w
        load[w] += cost(cam)
    return placed


def detector_classes(cfg: AppConfig, cameras: list[CameraConfig]) -> frozenset[int]:
    from pipeline.rules.camera import build_analyzers

    return frozenset[int]().union(
        *(a.classes for c in cameras for a in build_analyzers(c, cfg.site, cfg.evidence, None))
    )


def rebalance(
    cameras: list[CameraConfig],
    workers: list[str],
    placement: Mapping[str, str],
    cost: Callable[[CameraConfig], float],
    max_moves: int,
) -> dict[str, str]:
    """Fewest moves (at most ``max_moves``) that narrow the gap between the most and the least
    loaded worker. A move costs the camera a reconnect and ends its open events, so a camera
    moves only when that strictly lowers the spread: one whose cost is at least the gap would
    just swap which worker is the heavy one."""
    placed = dict(placement)
    costs = {c.id: cost(c) for c in cameras}
    load = dict.fromkeys(workers, 0.0)
    for cid, w in placed.items():
        if w in load and cid in costs:
            load[w] += costs[cid]
    for _ in range(max_moves):
        heavy = max(workers, key=lambda k: (load[k], k))
        light = min(workers, key=lambda k: (load[k], k))
        gap = load[heavy] - load[light]
        movable = [c for c, w in placed.items() if w == heavy and 0 < costs.get(c, 0.0) < gap]
        if not movable:
            break
        best = min(movable, key=lambda c: (abs(gap - 2 * costs[c]), c))
        placed[best] = light
        load[heavy] -= costs[best]
        load[light] += costs[best]
    return placed


# What the coordinator's process may ask of a worker's runtime (``ShardWorker.view``): the
# API's reads of a camera, the live view's setup and casework's probes.
VIEW_METHODS = frozenset({
    "health", "health_history", "snapshot_jpeg", "activity_jpeg", "frame_size", "view_state",
    "sway_px", "confirm_view", "writer_stats", "inference_stats", "online",
})  # fmt: skip


# Live views across Ray (see ShardWorker.live_open): the time to set one up (the remux waits
# for the camera's next keyframe), to wait for a fragment (the hub itself gives up on a camera
# silent for 30 s), and after which a stream nobody pulls is closed.
_LIVE_OPEN_S = 15.0
_LIVE_NEXT_S = 35.0
_LIVE_IDLE_S = 60.0


class WorkerLostError(PipelineError):
    """A worker that does not answer (dead, hung past the timeout, already fenced) or that
    says its runtime failed."""


class ShardWorker:
    """Body of a worker (a Ray actor or a worker process): one ``Runtime`` for the cameras it
    is given. Its stored events become cases here, in the worker; SLA clocks, deliveries and
    retention run once, in the coordinator's process (``compose.casework``)."""

    def __init__(
        self,
        config_json: str,
        worker_id: str,
        detector_factory: Callable[[], Detector] | None = None,
    ) -> None:
        """``detector_factory``: builds the detector in the worker instead of the configured
        ONNX model (another runtime, or a test stand-in); it must be importable there."""
        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {worker_id} %(message)s")
        self.worker_id = worker_id
        self.cfg = AppConfig.model_validate_json(config_json)
        # the detector is loaded once for the classes of every camera of the cluster: any of
        # them may be moved here later
        self.classes = detector_classes(self.cfg, self.cfg.cameras)
        self.app: Any = None  # pipeline.ops.compose.Gridsight, once cameras are applied
        self.runtime: Any = None
        self.detector_factory = detector_factory
        self._live_lock = threading.Lock()
        self._live: dict[int, tuple[Iterator[bytes], float]] = {}  # id → (stream, last pull)
        self._live_ids = itertools.count(1)

    def apply(self, cameras_json: list[str]) -> dict[str, list[str]]:
        """Run exactly these cameras (first call starts the runtime)."""
        from pipeline.ops.compose import pipeline
        from pipeline.runtime import tune_process

        cams = [CameraConfig.model_validate_json(c) for c in cameras_json]
        if self.app is None:
            cfg = self.cfg.model_copy(update={"cameras": cams})
            injected: dict[str, Any] = {}
            if self.detector_factory is not None:
                name = getattr(self.detector_factory, "__name__", "injected")
                injected = {"detector": self.detector_factory(),
                            "model_identity": ModelIdentity(name, "0" * 64)}  # fmt: skip
            self.app = pipeline(cfg, extra_classes=self.classes, case_loop=False, **injected)
            self.runtime = self.app.runtime
            tune_process()
            self.app.start()
            return {"added": [c.id for c in cams], "removed": [], "updated": []}
        ch = self.runtime.reconfigure(cams)
        return {"added": list(ch.added), "removed": list(ch.removed), "updated": list(ch.updated)}

    def health(self) -> dict[str, str]:
        """Each camera's state.

        Raises:
            WorkerLostError: an essential thread of the runtime died; the coordinator replaces
                this worker as it would one that stopped answering.
        """
        if self.runtime is None:
            return {}
        if self.runtime.fault is not None:
            raise WorkerLostError(f"worker {self.worker_id}: {self.runtime.fault}")
        out = {}
        for cid in list(self.runtime.cameras):
            h = self.runtime.health(cid)
            if h is not None:
                out[cid] = h.state.value
        return out

    def view(self, method: str, *args: Any) -> Any:
        """One of ``VIEW_METHODS`` of this worker's runtime (None before it runs)."""
        if method not in VIEW_METHODS:
            raise ValueError(f"{method!r} is not a runtime view method")
        return None if self.runtime is None else getattr(self.runtime, method)(*args)

    def live_view(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None:
        return None if self.runtime is None else self.runtime.live_view(camera_id)

    # A live view pulled across Ray, fragment by fragment (a Ray actor cannot hold a pipe
    # open to the coordinator): the viewer's pace is the pull's, and a stream that nobody
    # pulls for _LIVE_IDLE_S (its coordinator gone) is closed at the next open.

    def live_open(self, camera_id: str) -> tuple[str, int] | None:
        """Start a live view: (codec string, stream id), or None where there is none."""
        self._reap_live()
        live = self.live_view(camera_id)
        if live is None:
            return None
        codec, body = live
        with self._live_lock:
            sid = next(self._live_ids)
            self._live[sid] = (body, time.monotonic())
        return codec, sid

    def live_next(self, sid: int) -> bytes | None:
        """The stream's next bytes (waits for the next fragment); None: it has ended."""
        with self._live_lock:
            entry = self._live.get(sid)
            if entry is None:
                return None
            self._live[sid] = (entry[0], time.monotonic())
        chunk = next(entry[0], None)
        if chunk is None:
            self.live_close(sid)
        return chunk

    def live_close(self, sid: int) -> None:
        with self._live_lock:
            entry = self._live.pop(sid, None)
        close = getattr(entry[0], "close", None) if entry is not None else None
        if close is not None:
            close()

    def _reap_live(self) -> None:
        now = time.monotonic()
        with self._live_lock:
            idle = [sid for sid, (_, at) in self._live.items() if now - at > _LIVE_IDLE_S]
        for sid in idle:
            self.live_close(sid)

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
            self.app.store.close()
            self.app = self.runtime = None


class WorkerHandle(Protocol):
    """The coordinator's end of one worker (``RayWorker``; ``pipeline.ops.workers.ProcessWorker``).
    ``call`` runs a ``ShardWorker`` method there and raises ``WorkerLostError`` when the worker
    does not answer within ``timeout``."""

    worker_id: str

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any: ...
    def live_view(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None: ...
    def kill(self) -> None: ...


# (worker id, AppConfig as JSON, detector factory) → a started worker
Spawn = Callable[[str, str, "Callable[[], Detector] | None"], WorkerHandle]


class RayWorker:
    """A ``ShardWorker`` in a Ray actor (cameras on several hosts: ``gridsight run --cluster``)."""

    def __init__(
        self, worker_id: str, config_json: str, detector_factory: Callable[[], Detector] | None
    ) -> None:
        import ray

        # a live viewer's pull waits in the actor for the next fragment: threads for viewers
        # beside the API's calls
        actor_cls = ray.remote(num_cpus=0)(ShardWorker).options(max_concurrency=16)
        self.worker_id = worker_id
        self.actor: Any = actor_cls.remote(config_json, worker_id, detector_factory)

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        import ray

        try:
            return ray.get(getattr(self.actor, method).remote(*args), timeout=timeout)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            raise WorkerLostError(f"worker {self.worker_id}: {type(exc).__name__}") from exc

    def live_view(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None:
        """The camera's live stream, pulled from the actor a fragment at a time."""
        try:
            opened = self.call("live_open", camera_id, timeout=_LIVE_OPEN_S)
        except WorkerLostError:
            return None
        if opened is None:
            return None
        codec, sid = opened
        return codec, self._pull(sid)

    def _pull(self, sid: int) -> Iterator[bytes]:
        try:
            while (chunk := self.call("live_next", sid, timeout=_LIVE_NEXT_S)) is not None:
                yield chunk
        except WorkerLostError:
            return
        finally:  # the viewer left (or the stream ended): the actor lets it go
            self.actor.live_close.remote(sid)

    def kill(self) -> None:
        import ray

        ray.kill(self.actor, no_restart=True)


@dataclass
class _Worker:
    worker_id: str
    handle: WorkerHandle
    cameras: dict[str, str] = field(default_factory=dict)  # id → config json last applied


class Coordinator:
    """Places cameras on ``workers`` workers and keeps them placed (see module docstring).
    ``spawn`` starts one: a Ray actor by default, a local process for ``gridsight run``."""

    def __init__(
        self,
        cfg: AppConfig,
        workers: int,
        *,
        store: EventStore,
        cost_model: CostModel | None = None,
        health_timeout_s: float = 10.0,
        detector_factory: Callable[[], Detector] | None = None,
        clock: Callable[[], float] = time.time,
        spawn: Spawn = RayWorker,
    ) -> None:
        self.cfg = cfg
        self.n_workers = workers
        self.cost_model = cost_model or CostModel.packaged()
        self.health_timeout_s = health_timeout_s
        self.workers: dict[str, _Worker] = {}
        self.cameras: list[CameraConfig] = [c for c in cfg.cameras if c.enabled]
        self.placement: dict[str, str] = {}
        self._next = 0
        self._spawn_handle = spawn
        self.moves: list[tuple[float, str, str | None, str]] = []  # (time, camera, from, to)
        self.detector_factory = detector_factory
        self.clock = clock
        self.classes = detector_classes(cfg, cfg.cameras)  # what every worker loads
        # the API thread (zone editor) and the health loop both change the placement
        self._lock = threading.RLock()
        self.store = store  # the cluster's shared store (ends a lost worker's events)
        self.orphans_ended: list[str] = []  # event ids ended for lost workers
        self._stopped = False

    def start(self) -> None:
        for _ in range(self.n_workers):
            self._spawn()
        self._place()

    def _spawn(self) -> _Worker:
        self._next += 1
        wid = f"w{self._next}"
        w = _Worker(wid, self._spawn_handle(wid, self.cfg.model_dump_json(), self.detector_factory))
        self.workers[wid] = w
        return w

    def _cost(self, cam: CameraConfig) -> float:
        return self.cost_model.cost(cam).cores

    @staticmethod
    def _all(calls: list[tuple[_Worker, str, tuple[Any, ...]]]) -> None:
        """The calls at once, one thread each (a worker's first ``apply`` loads its models)."""
        if not calls:
            return
        with ThreadPoolExecutor(len(calls), thread_name_prefix="gridsight-place") as pool:
            done = [pool.submit(w.handle.call, m, *a) for w, m, a in calls]
            for f in done:
                f.result()

    def _place(self, max_moves: int = 0) -> None:
        """Assign (then rebalance with at most ``max_moves`` moves of healthy cameras), then
        send each worker its camera list if it changed."""
        before = dict(self.placement)
        workers = sorted(self.workers)
        self.placement = assign(self.cameras, workers, before, self._cost)
        if max_moves:
            self.placement = rebalance(self.cameras, workers, self.placement, self._cost,
                                       max_moves)  # fmt: skip
        now = self.clock()
        for cid, wid in self.placement.items():
            if before.get(cid) != wid:
                self.moves.append((now, cid, before.get(cid), wid))
        wanted = {
            wid: {c.id: c.model_dump_json() for c in self.cameras if self.placement[c.id] == wid}
            for wid in self.workers
        }
        # Two rounds: workers first let go of what leaves them, then the others take it, so a
        # moving camera is never watched (and reported) by two workers at once.
        calls: list[tuple[_Worker, str, tuple[Any, ...]]] = []
        for wid, w in self.workers.items():
            keep = {k: v for k, v in w.cameras.items() if wanted[wid].get(k) == v}
            if keep != w.cameras:
                calls.append((w, "apply", (list(keep.values()),)))
                w.cameras = keep
        self._all(calls)
        calls = []
        for wid, w in self.workers.items():
            if wanted[wid] != w.cameras:  # a worker's runtime starts with its first cameras
                calls.append((w, "apply", (list(wanted[wid].values()),)))
                w.cameras = wanted[wid]
        self._all(calls)

    def update(self, cameras: list[CameraConfig]) -> None:
        """A new camera list: only workers whose cameras changed hear about it."""
        with self._lock:
            self.cameras = [c for c in cameras if c.enabled]
            self._place()

    def reconfigure(self, cameras: list[CameraConfig]) -> CameraChanges:
        """``update`` for the zone editor: says what changed, and refuses (changing nothing) a
        camera that needs a detector class the workers were not started with."""
        enabled = [c for c in cameras if c.enabled]
        issues = [
            ConfigIssue(
                f"camera {c.id!r} → rules",
                f"needs detector classes {sorted(missing)} that the workers did not load; "
                "restart gridsight to apply",
            )
            for c in enabled
            if (missing := detector_classes(self.cfg, [c]) - self.classes)
        ]
        if issues:
            raise ConfigError(issues)
        with self._lock:
            changes = CameraChanges.between(
                {c.id: c for c in self.cameras}, {c.id: c for c in enabled}
            )
            self.update(cameras)
        return changes

    def scale(self, workers: int, max_moves: int | None = None) -> None:
        """Grow or shrink the worker pool. New workers would otherwise stay empty (placement is
        sticky), so cameras are rebalanced onto them, by as few moves as narrow the spread
        (default: up to one per camera). A removed worker is stopped cleanly first."""
        if workers < 1:
            raise ValueError("a cluster needs at least one worker")
        with self._lock:
            while len(self.workers) < workers:
                self._spawn()
            while len(self.workers) > workers:
                wid = max(self.workers, key=lambda k: int(k[1:]))  # newest first
                gone = self.workers.pop(wid)
                try:
                    gone.handle.call("stop", timeout=60)
                finally:
                    gone.handle.kill()
            self.n_workers = workers
            self._place(len(self.cameras) if max_moves is None else max_moves)

    def check(self) -> list[str]:
        """Ping every worker; replace the dead ones and re-place their cameras. Returns the
        ids of the workers found dead."""
        with self._lock:
            return self._check()

    def _check(self) -> list[str]:
        if self._stopped:  # a worker stopping is not a worker lost
            return []
        dead = []
        for wid, w in self.workers.items():
            try:
                w.handle.call("health", timeout=self.health_timeout_s)
            except WorkerLostError as exc:
                logger.warning("worker %s lost (%s): moving its cameras", wid, exc)
                dead.append(wid)
        for wid in dead:
            lost = self.workers.pop(wid)
            try:  # fence it: an unreachable but living worker must not keep writing
                lost.handle.kill()
            except Exception:  # already gone
                logger.debug("worker %s already gone", wid, exc_info=True)
            ended = self.store.end_open_events(sorted(lost.cameras), self.clock(), "worker_lost")
            if ended:
                logger.warning("worker %s: ended %d open event(s) it left", wid, len(ended))
            self.orphans_ended.extend(ended)
            self._spawn()
        if dead:
            self._place()
        return dead

    def health(self) -> dict[str, dict[str, str]]:
        return {
            wid: w.handle.call("health", timeout=self.health_timeout_s)
            for wid, w in list(self.workers.items())  # the health loop may replace one meanwhile
        }

    def owner(self, camera_id: str) -> WorkerHandle | None:
        """The worker that runs ``camera_id`` now (None: not placed, or its worker is gone)."""
        w = self.workers.get(self.placement.get(camera_id, ""))
        return None if w is None else w.handle

    def all_handles(self) -> list[WorkerHandle]:
        return [w.handle for w in list(self.workers.values())]

    def stop(self) -> None:
        """Stop every worker (at once: each ends its open events and finishes its clips)."""
        with self._lock:
            self._stopped = True
            workers = list(self.workers.values())
            self.workers.clear()

        def stop_one(w: _Worker) -> None:
            try:
                w.handle.call("stop", timeout=60)
            except Exception:  # a dead worker has nothing left to stop
                logger.debug("worker %s did not stop cleanly", w.worker_id, exc_info=True)
            w.handle.kill()

        if workers:
            with ThreadPoolExecutor(len(workers), thread_name_prefix="gridsight-stop") as pool:
                list(pool.map(stop_one, workers))

    def run_forever(self, stop: Callable[[], bool], every_s: float = 2.0) -> None:
        while not stop():
            self.check()
            time.sleep(every_s)


class ClusterView:
    """The API's ``RuntimeView`` of a coordinator's cameras: each question about a camera goes
    to the worker that runs it; a worker that does not answer makes the camera unknown (the
    API says 503), never an error page. Also casework's probes (``online``, pictures)."""

    def __init__(self, coord: Coordinator, timeout_s: float = 5.0) -> None:
        self.coord = coord
        self.timeout_s = timeout_s

    def _ask(self, camera_id: str, method: str, *args: Any, timeout: float | None = None) -> Any:
        handle = self.coord.owner(camera_id)
        if handle is None:
            return None
        try:
            return handle.call("view", method, camera_id, *args, timeout=timeout or self.timeout_s)
        except WorkerLostError:
            return None

    def camera_configs(self) -> list[CameraConfig]:
        return list(self.coord.cameras)

    def health(self, camera_id: str) -> CameraHealth | None:
        h: CameraHealth | None = self._ask(camera_id, "health")
        return h

    def online(self, camera_id: str) -> bool:
        return bool(self._ask(camera_id, "online"))

    def snapshot_jpeg(self, camera_id: str) -> bytes | None:
        jpeg: bytes | None = self._ask(camera_id, "snapshot_jpeg")
        return jpeg

    def activity_jpeg(self, camera_id: str) -> bytes | None:
        jpeg: bytes | None = self._ask(camera_id, "activity_jpeg")
        return jpeg

    def frame_size(self, camera_id: str) -> tuple[int, int] | None:
        size: tuple[int, int] | None = self._ask(camera_id, "frame_size")
        return size

    def health_history(self, camera_id: str) -> tuple[tuple[HealthChange, ...], float | None]:
        got: tuple[tuple[HealthChange, ...], float | None] | None
        got = self._ask(camera_id, "health_history")
        return got if got is not None else ((), None)

    def view_state(self, camera_id: str) -> str | None:
        state: str | None = self._ask(camera_id, "view_state")
        return state

    def sway_px(self, camera_id: str) -> float | None:
        px: float | None = self._ask(camera_id, "sway_px")
        return px

    def confirm_view(self, camera_id: str, timeout: float = 10.0) -> str:
        state: str | None = self._ask(camera_id, "confirm_view", timeout,
                                      timeout=timeout + self.timeout_s)  # fmt: skip
        if state is None:
            raise WorkerLostError(f"camera {camera_id!r}: its worker did not answer")
        return state

    def live_view(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None:
        handle = self.coord.owner(camera_id)
        return None if handle is None else handle.live_view(camera_id)

    def _each(self, method: str) -> list[Any]:
        out = []
        for handle in self.coord.all_handles():
            try:
                got = handle.call("view", method, timeout=self.timeout_s)
            except WorkerLostError:
                continue
            if got is not None:
                out.append(got)
        return out

    def writer_stats(self) -> WriterStats:
        return WriterStats.total(self._each("writer_stats"))

    def inference_stats(self) -> InferenceStats:
        return InferenceStats.total(self._each("inference_stats"))
