"""Casework beside a running pipeline: stored events become cases through one subscription,
and one thread runs SLA sweeps, automatic re-checks and outbox delivery once a second, and
evidence retention when it is due."""

from __future__ import annotations

import logging
import threading

from pipeline import threads
from pipeline.casework.cases import CaseService
from pipeline.casework.outbox import Outbox
from pipeline.casework.retention import RetentionJob
from pipeline.store.repository import EventRow

logger = logging.getLogger(__name__)


class CaseWorker:
    def __init__(
        self, cases: CaseService, outbox: Outbox, every_s: float = 1.0,
        retention: RetentionJob | None = None,
    ) -> None:  # fmt: skip
        self.cases = cases
        self.outbox = outbox
        self.every_s = every_s
        self.retention = retention
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_stored(self, row: EventRow) -> None:
        """The runtime's subscription: runs on the evidence writer's thread."""
        try:
            self.cases.on_event(row)
        except Exception:  # a case problem must not stop evidence writing
            logger.exception("case update failed for event %s", row.event_id)

    def start(self) -> None:
        self._thread = threads.start("gridsight-cases", self._run)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.step()
            except Exception:  # keep the loop: the next second may succeed (disk, network)
                logger.exception("case worker iteration failed")

    def step(self) -> None:
        """One round: SLA clocks, deliveries, and retention if it is due."""
        self.cases.tick()
        self.outbox.deliver_due()
        now = self.cases.clock()
        if self.retention is not None and self.retention.due(now):
            done = self.retention.run(now)
            if done.files:
                logger.info("retention: %d event(s) past their period, %d purged early for "
                            "disk space, %d file(s) deleted", done.expired_events,
                            done.pressure_events, done.files)  # fmt: skip
