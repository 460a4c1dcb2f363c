"""A broadcast of "cases changed" to live views (the review queue's server-sent events).

Changes made in this process (``CaseService(on_change=feed.publish)``) reach every open
stream at once, with no query per client per second. Changes made by other processes sharing
the store (cluster workers, ``run`` beside ``serve``) are heard by one watcher thread per
process, running while any stream waits: on PostgreSQL it LISTENs for the NOTIFY each case
change sends (``listen``); on SQLite, which has no notices, it compares the store's case
counter every few seconds and publishes when it moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from pipeline import threads

_UNREAD = object()


# (keep listening?, on notice) → False where the store cannot notify (then: poll)
Listen = Callable[[Callable[[], bool], Callable[[], None]], bool]


class ChangeFeed:
    def __init__(self, listen: Listen | None = None) -> None:
        self._listen = listen
        self._version = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._watcher: threading.Thread | None = None

    @property
    def version(self) -> int:
        return self._version

    def publish(self) -> None:
        """Thread-safe: wakes every waiting stream, whatever its event loop."""
        with self._lock:
            self._version += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    async def wait(self, seen: int, timeout_s: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout_s`` (keep-alives)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)  # before the check: a publish in between is not missed
        try:
            if self._version == seen:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(entry[1].wait(), timeout_s)
            return self._version
        finally:
            with self._lock:
                self._waiters.discard(entry)

    def watch(self, marker: Callable[[], Any], every_s: float = 3.0) -> None:
        """Make sure the watcher runs (it stops by itself once no stream waits)."""
        with self._lock:
            if self._watcher is not None:
                return
            self._watcher = threads.start("gridsight-feed", partial(self._watch, marker, every_s))

    def _still_waited_for(self) -> bool:
        with self._lock:
            if self._waiters:
                return True
            self._watcher = None  # nobody listens: the next stream starts it again
            return False

    def _watch(self, marker: Callable[[], Any], every_s: float) -> None:
        if self._listen is not None and self._listen(self._still_waited_for, self.publish):
            return
        last: Any = _UNREAD
        pause = threading.Event()
        while True:
            try:
                now = marker()
            except Exception:  # a store hiccup: try again next time
                now = last
            if last is not _UNREAD and now != last:
                self.publish()
            last = now
            pause.wait(every_s)
            with self._lock:
                if not self._waiters:
                    self._watcher = None  # nobody listens: the next stream starts it again
                    return
