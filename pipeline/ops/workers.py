"""One pipeline process per core on one host: what ``gridsight run`` starts by default.

Why processes: the per-frame Python of the analyzers (高空抛物's motion stage and tracker
above all) holds the GIL, so one process tops out well below the machine's cores
(``benchmarks/results/throughput_throwing.json``: one process 0.54× full-decode cameras, one
per core 0.66×). Each worker is a ``spawn``ed process running a ``cluster.ShardWorker`` (the
ordinary ``Runtime`` for its share of the cameras); the coordinator in the main process places
cameras by cost, replaces a worker that dies, serves the API and runs casework's clocks.

The coordinator reaches a worker over one pipe, by small requests answered out of order (a
worker's first ``apply`` loads its models for seconds; a health question must not wait behind
it). A live view is a stream on the same pipe: the worker sends the fragments of its remux,
the coordinator hands them to the viewer, and tells the worker when the viewer left.

A worker ignores SIGINT (a terminal's Ctrl-C reaches the whole process group; the coordinator
stops the workers in order) and stops cleanly on SIGTERM or when the coordinator's end of the
pipe closes (the coordinator died): its open events are ended and its clips finished.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError as FutureTimeout
from functools import partial
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from pipeline import threads
from pipeline.detect.inference import Detector
from pipeline.errors import PipelineError
from pipeline.ops.cluster import ShardWorker, WorkerLostError

logger = logging.getLogger(__name__)

# Fragments (0.5 s each) a live viewer may fall behind by before its stream is cut; it then
# reconnects, as with a viewer of the in-process remux that falls behind.
_LIVE_BUFFER = 64
_LIVE_OPEN_TIMEOUT_S = 15.0  # the remux waits up to 10 s for a keyframe
_REQUEST_THREADS = 8  # questions a worker answers at once (confirm_view may wait 10 s)

# messages, coordinator → worker: ("call", id, method, args) | ("live", id, camera) |
# ("close", id); worker → coordinator: ("ok", id, value) | ("err", id, exception) |
# ("codec", id, codec) | ("chunk", id, bytes) | ("end", id, None)


class _SigtermError(Exception):
    """SIGTERM in a worker: leave the request loop and stop cleanly."""


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise _SigtermError


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (a ConfigError with its issues does), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return PipelineError(f"{type(exc).__name__}: {exc}")
    return exc


def serve(
    conn: Connection,
    config_json: str,
    worker_id: str,
    detector_factory: Callable[[], Detector] | None,
) -> None:
    """A worker process's body: answer the coordinator until it says stop or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminate)
    worker = ShardWorker(config_json, worker_id, detector_factory)
    send_lock = threading.Lock()
    leaving: dict[int, threading.Event] = {}

    def send(msg: tuple[Any, ...]) -> None:
        # the coordinator gone: the request loop ends on EOF
        with send_lock, contextlib.suppress(OSError, ValueError):
            conn.send(msg)

    def answer(rid: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            send(("ok", rid, getattr(worker, method)(*args)))
        except Exception as exc:
            send(("err", rid, _portable(exc)))

    def stream(rid: int, camera_id: str, left: threading.Event) -> None:
        try:
            live = worker.live_view(camera_id)
            if live is None:
                return
            codec, body = live
            send(("codec", rid, codec))
            try:
                for chunk in body:
                    if left.is_set():
                        break
                    send(("chunk", rid, chunk))
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        except Exception:
            logger.exception("live view of %s failed", camera_id)
        finally:
            send(("end", rid, None))
            leaving.pop(rid, None)

    pool = ThreadPoolExecutor(_REQUEST_THREADS, thread_name_prefix=f"gridsight-{worker_id}-rpc")
    try:
        while True:
            try:
                kind, rid, *rest = conn.recv()
            except (EOFError, OSError):
                logger.warning("coordinator gone: stopping")
                break
            if kind == "call" and rest[0] == "stop":
                worker.stop()
                send(("ok", rid, None))
                break
            if kind == "call":
                pool.submit(answer, rid, rest[0], tuple(rest[1]))
            elif kind == "live":
                leaving[rid] = left = threading.Event()
                threads.start(f"gridsight-{worker_id}-live", partial(stream, rid, rest[0], left))
            elif kind == "close" and (gone := leaving.get(rid)) is not None:
                gone.set()
    except _SigtermError:
        logger.info("SIGTERM: stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the stop short
        worker.stop()
        pool.shutdown(wait=False, cancel_futures=True)
        conn.close()


class _LiveStream:
    """One viewer's fragments from a worker; ``close()`` tells the worker at once."""

    def __init__(self, worker: ProcessWorker, rid: int) -> None:
        self._worker = worker
        self._rid = rid
        self.fragments: queue.Queue[bytes | None] = queue.Queue(maxsize=_LIVE_BUFFER)
        self.codec: Future[str | None] = Future()
        self._closed = False

    def offer(self, chunk: bytes | None) -> None:
        """From the reader thread, which must never wait for a viewer."""
        try:
            self.fragments.put_nowait(chunk)
        except queue.Full:  # too slow: the stream ends, the viewer reconnects
            self.close()
            while True:
                try:
                    self.fragments.get_nowait()
                except queue.Empty:
                    break
            self.fragments.put_nowait(None)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = self.fragments.get(timeout=30.0)
        except queue.Empty:
            chunk = None  # the camera sent nothing for 30 s
        if chunk is None:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._worker.forget(self._rid)


class ProcessWorker:
    """The coordinator's end of one worker process (a ``cluster.WorkerHandle``)."""

    def __init__(
        self, worker_id: str, config_json: str, detector_factory: Callable[[], Detector] | None
    ) -> None:
        ctx = multiprocessing.get_context("spawn")  # no forked copies of threads or models
        self._conn, child = ctx.Pipe(duplex=True)
        self.worker_id = worker_id
        self.process = ctx.Process(
            target=serve, args=(child, config_json, worker_id, detector_factory),
            name=f"gridsight-{worker_id}", daemon=True,
        )  # fmt: skip
        self.process.start()
        child.close()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # sending, and the tables below
        self._calls: dict[int, Future[Any]] = {}
        self._streams: dict[int, _LiveStream] = {}
        self._lost: str | None = None
        self._stopping = False
        self._reader = threads.start(f"gridsight-{worker_id}-reader", self._read)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _send(self, msg: tuple[Any, ...]) -> None:
        """Under ``self._lock``."""
        if self._lost is not None:
            raise WorkerLostError(f"worker {self.worker_id}: {self._lost}")
        try:
            self._conn.send(msg)
        except (OSError, ValueError) as exc:
            raise WorkerLostError(f"worker {self.worker_id}: {exc}") from exc

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        fut: Future[Any] = Future()
        with self._lock:
            self._stopping = self._stopping or method == "stop"
            rid = next(self._ids)
            self._calls[rid] = fut
            try:
                self._send(("call", rid, method, args))
            except WorkerLostError:
                del self._calls[rid]
                raise
        try:
            return fut.result(timeout)
        except FutureTimeout:
            raise WorkerLostError(
                f"worker {self.worker_id}: no answer to {method} in {timeout} s"
            ) from None
        finally:
            with self._lock:
                self._calls.pop(rid, None)

    def live_view(self, camera_id: str) -> tuple[str, Iterator[bytes]] | None:
        with self._lock:
            rid = next(self._ids)
            stream = self._streams[rid] = _LiveStream(self, rid)
            try:
                self._send(("live", rid, camera_id))
            except WorkerLostError:
                del self._streams[rid]
                return None
        try:
            codec = stream.codec.result(_LIVE_OPEN_TIMEOUT_S)
        except FutureTimeout:
            codec = None
        if codec is None:
            stream.close()
            return None
        return codec, stream

    def forget(self, rid: int) -> None:
        """A viewer left: its worker stops sending."""
        with self._lock:
            if self._streams.pop(rid, None) is not None and self._lost is None:
                with contextlib.suppress(OSError, ValueError):
                    self._conn.send(("close", rid))

    def _read(self) -> None:
        while True:
            try:
                kind, rid, value = self._conn.recv()
            except (EOFError, OSError) as exc:
                self._gone(f"its process ended ({type(exc).__name__})")
                return
            with self._lock:
                fut = self._calls.pop(rid, None) if kind in ("ok", "err") else None
                stream = self._streams.get(rid)
            if kind == "ok" and fut is not None:
                fut.set_result(value)
            elif kind == "err" and fut is not None:
                fut.set_exception(value)
            elif stream is None:
                continue  # a viewer that left, or a call that timed out
            elif kind == "codec":
                stream.codec.set_result(value)
            elif kind == "chunk":
                stream.offer(value)
            elif kind == "end":
                if not stream.codec.done():
                    stream.codec.set_result(None)
                stream.offer(None)
                with self._lock:
                    self._streams.pop(rid, None)

    def _gone(self, why: str) -> None:
        with self._lock:
            self._lost = why
            calls, self._calls = self._calls, {}
            streams, self._streams = self._streams, {}
        for fut in calls.values():
            fut.set_exception(WorkerLostError(f"worker {self.worker_id}: {why}"))
        for stream in streams.values():
            if not stream.codec.done():
                stream.codec.set_result(None)
            stream.offer(None)

    def kill(self) -> None:
        """Fence the worker: it must not write again (its cameras are placed elsewhere). One
        told to stop is given time to exit by itself first."""
        if self._stopping:
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self._conn.close()
