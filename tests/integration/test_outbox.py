"""Outbox delivery against a real HTTP receiver on 127.0.0.1, including repeated process kills."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline.casework.cases import Action, CaseService
from pipeline.casework.outbox import Outbox, verify_signature
from pipeline.config import CasesConfig, Subscriber
from pipeline.store.repository import EventStore
from tests.conftest import REPO
from tests.http_receiver import LocalReceiver
from tests.outbox_child import SECRET
from tests.unit.test_cases import MON_9, VirtualClock, store_event

TZ = ZoneInfo("Asia/Shanghai")


class Receiver:
    """An idempotent platform endpoint: applies each Idempotency-Key once, counts repeats."""

    def __init__(self) -> None:
        self.effects: dict[str, dict[str, Any]] = {}
        self.received = 0
        self.rejected = 0
        self.fail_next = 0  # answer 503 to this many requests
        self.now: Callable[[], float] = time.time  # the sender's clock (virtual in some tests)
        self.lock = threading.Lock()
        self.http = LocalReceiver(self.answer)
        self.url = f"http://127.0.0.1:{self.http.port}/cases"

    def answer(self, body: bytes, headers: Any) -> int:
        with self.lock:
            self.received += 1
            bad = verify_signature(
                SECRET, headers.get("X-Gridsight-Timestamp"), headers.get("Idempotency-Key"),
                body, headers.get("X-Gridsight-Signature"), self.now(),
            )  # fmt: skip
            if bad:
                self.rejected += 1
                return 401
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503
            self.effects.setdefault(headers["Idempotency-Key"], json.loads(body))
            return 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.http.close()


def sub(url: str, **kw: Any) -> Subscriber:
    return Subscriber(id="grid", url=url, secret_env="GRID_SECRET", **kw)


def test_signed_delivery_in_order_with_retries_and_dead_letter(
    receiver: Receiver, store_location: str | Path
) -> None:
    store = EventStore(store_location)
    clock = VirtualClock(MON_9)
    receiver.now = clock
    out = Outbox(store, [sub(receiver.url, max_attempts=3)], {"grid": SECRET}, TZ, clock,
                 rng=random.Random(1))  # fmt: skip
    cases = CaseService(store, CasesConfig(), TZ, clock, enqueue=out.enqueue)
    case = cases.on_event(store_event(store, "ev1", clock()))
    assert case is not None
    assert out.counts() == {}  # nothing leaves before human review
    cases.act(case.case_id, Action.ACCEPT, "op1")
    cases.act(case.case_id, Action.DISPATCH, "op1")
    receiver.fail_next = 1
    stats = out.deliver_due()
    # the first update failed; the second waits behind it (order per case)
    assert (stats.attempted, stats.failed) == (1, 1)
    assert out.deliver_due().attempted == 0  # backing off
    clock.advance(10)
    assert out.deliver_due().delivered == 2
    kinds = [p["kind"] for p in receiver.effects.values()]
    assert kinds == ["accept", "dispatch"]
    payload = next(iter(receiver.effects.values()))
    assert payload["case"]["case_id"] == case.case_id and payload["report"]["report_id"] == "ev1"
    # a receiver that keeps failing: dead-lettered after max_attempts, requeue works
    receiver.fail_next = 10
    cases.act(case.case_id, Action.RESPOND, "unit-a")
    for _ in range(3):
        clock.advance(3600)
        out.deliver_due()
    [dead] = out.rows(state="dead")
    assert dead.attempts == 3 and dead.last_error == "HTTP 503"
    receiver.fail_next = 0
    assert out.requeue(dead.seq)
    assert out.deliver_due().delivered == 1
    assert out.counts() == {"delivered": 3}


def test_wrong_secret_is_refused_and_dead_lettered_at_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    store = EventStore(tmp_path / "e.db")
    clock = VirtualClock(time.time())
    out = Outbox(store, [sub(receiver.url)], {"grid": b"wrong"}, TZ, clock)
    cases = CaseService(store, CasesConfig(), TZ, clock, enqueue=out.enqueue)
    case = cases.on_event(store_event(store, "ev1", clock()))
    assert case is not None
    cases.act(case.case_id, Action.ACCEPT, "op1")
    assert out.deliver_due().dead == 1 and receiver.rejected == 1 and not receiver.effects


def _child(db: Path, url: str, n: int, crash_after: int = 0) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tests.outbox_child", str(db), url, str(n)]
    if crash_after:
        args += ["--crash-after-send", str(crash_after)]
    return subprocess.Popen(args, cwd=REPO, stderr=subprocess.PIPE)


def test_killed_again_and_again_nothing_lost_nothing_applied_twice(
    receiver: Receiver, tmp_path: Path
) -> None:
    n = 25  # cases; each pushes accept + dispatch
    db = tmp_path / "e.db"
    rng = random.Random(7)
    kills = crashes = 0
    for _ in range(60):
        crash_after = rng.choice([0, 1, 2, 3])
        proc = _child(db, receiver.url, n, crash_after)
        try:
            rc = proc.wait(timeout=rng.uniform(0.3, 1.5)) if not crash_after else proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # anywhere: mid-transaction, mid-POST, …
            proc.wait(10)
            kills += 1
            continue
        if rc == 9:
            crashes += 1
            continue
        assert rc == 0, proc.stderr.read() if proc.stderr else b""
        if not crash_after:
            break
    # (no child need finish inside its random kill time: on a loaded machine none started
    # fast enough, and the clean run below finishes the work whatever the speed)
    assert kills > 0 and crashes > 0
    proc = _child(db, receiver.url, n)  # one clean run to the end
    assert proc.wait(60) == 0
    store = EventStore(db)
    with store.reader() as conn:
        pushed = conn.execute(
            "SELECT COUNT(*) FROM case_history WHERE action IN ('accept', 'dispatch')"
        ).fetchone()[0]
        cases = conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
        keys = {r[0] for r in conn.execute("SELECT idempotency_key FROM outbox")}
        states = dict(conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY 1").fetchall())
    assert cases == n and pushed == 2 * n  # every case exactly once, every transition once
    assert states == {"delivered": 2 * n}
    assert set(receiver.effects) == keys  # nothing lost, nothing invented
    assert receiver.received > len(keys)  # re-sends happened and were absorbed by the key
