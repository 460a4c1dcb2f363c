"""A pipeline-side process for the outbox crash tests: opens cases and delivers their updates.

    python -m tests.outbox_child DB URL N [--crash-after-send K]

It is idempotent across restarts (cases are keyed by their event ids), so the test can kill it
at any moment and start it again until it exits 0. ``--crash-after-send K`` makes it die
right after the K-th successful POST, before the row is marked delivered: the worst moment.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from zoneinfo import ZoneInfo

from pipeline.casework.cases import Action, CaseService, CaseState
from pipeline.casework.outbox import Outbox
from pipeline.config import CasesConfig, Subscriber
from pipeline.rules.parking import ParkingDetails
from pipeline.store.repository import EventStore
from pipeline.types import Event, EventState, EventType

SECRET = b"test-secret"
TZ = ZoneInfo("Asia/Shanghai")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("db")
    p.add_argument("url")
    p.add_argument("n", type=int)
    p.add_argument("--crash-after-send", type=int, default=0)
    args = p.parse_args()
    store = EventStore(__import__("pathlib").Path(args.db))
    sub = Subscriber(id="grid", url=args.url, secret_env="GRID_SECRET", max_attempts=1000)
    sent = 0

    def on_sent(_row: object) -> None:
        nonlocal sent
        sent += 1
        if args.crash_after_send and sent >= args.crash_after_send:
            os._exit(9)  # no cleanup, like SIGKILL

    outbox = Outbox(store, [sub], {"grid": SECRET}, TZ, time.time, on_sent=on_sent)
    cases = CaseService(store, CasesConfig(), TZ, time.time, enqueue=outbox.enqueue,
                        new_id=lambda: f"case-{time.monotonic_ns()}")  # fmt: skip
    details = ParkingDetails("fire_lane", "car", "motor", (0.1, 0.1, 0.2, 0.2),
                             (0.1, 0.1, 0.2, 0.2), 300, 300, 180, 0.8, 10, (1,))  # fmt: skip
    for i in range(args.n):
        now = time.time()
        ev = Event(f"ev{i}", EventType.FIRE_LANE_OCCUPATION, EventState.STARTED, "cam1",
                   f"zone{i}", "parking", now - 300, now, now, None, 0.8, details)  # fmt: skip
        if store.get_event(ev.event_id) is None:
            store.upsert_event(ev, "urgent", {"report_id": ev.event_id}, None, None, now)
        row = store.get_event(ev.event_id)
        assert row is not None
        case = cases.on_event(row)
        assert case is not None
        if case.state == CaseState.PENDING_REVIEW:
            case = cases.act(case.case_id, Action.ACCEPT, "op1")
        if case.state == CaseState.REPORTED:
            cases.act(case.case_id, Action.DISPATCH, "op1")
        outbox.deliver_due()
    while outbox.counts().get("pending", 0):
        outbox.deliver_due()
        time.sleep(0.01)
    return 0


if __name__ == "__main__":
    sys.exit(main())
