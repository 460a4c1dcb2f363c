"""The live "cases changed" feed: a publish from any thread wakes every waiting stream at once;
the watcher notices other processes' changes and stops when nobody listens."""

from __future__ import annotations

import asyncio
import threading
import time

from pipeline.casework.feed import ChangeFeed


def test_publish_from_another_thread_wakes_waiters_at_once() -> None:
    feed = ChangeFeed()

    async def main() -> tuple[int, float]:
        t0 = time.monotonic()
        threading.Timer(0.2, feed.publish).start()
        version = await feed.wait(feed.version, timeout_s=10)
        return version, time.monotonic() - t0

    version, waited = asyncio.run(main())
    assert version == 1 and waited < 2  # woken, not timed out


def test_wait_returns_at_once_when_a_change_came_before() -> None:
    feed = ChangeFeed()
    seen = feed.version
    feed.publish()
    assert asyncio.run(feed.wait(seen, timeout_s=10)) == seen + 1


def test_watcher_publishes_outside_changes_and_stops_without_listeners() -> None:
    feed = ChangeFeed()
    marker = [0]

    async def main() -> int:
        feed.watch(lambda: marker[0], every_s=0.05)
        threading.Timer(0.2, lambda: marker.__setitem__(0, 1)).start()
        return await feed.wait(0, timeout_s=5)

    assert asyncio.run(main()) >= 1
    deadline = time.monotonic() + 2
    while feed._watcher is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed._watcher is None  # nobody waits any more: the watcher ended
