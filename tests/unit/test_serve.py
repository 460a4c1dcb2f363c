"""``gridsight run --workers 1`` and ``gridsight demo`` run the pipeline in their own process,
with no coordinator to replace it: when an essential thread dies the command ends non-zero, so
that the service manager restarts it, instead of serving while nothing is analysed."""

from __future__ import annotations

import signal
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.ops import serve


class _Running:
    """What ``serve.run`` needs of a started pipeline."""

    def __init__(self) -> None:
        self.runtime = SimpleNamespace(faulted=threading.Event(), fault=None, reconfigure=None)
        self.site = SimpleNamespace(cfg=None)
        self.stopped = False

    def start(self) -> None:
        self.runtime.fault = "analysis: IndexError: list index out of range"
        threading.Timer(0.1, self.runtime.faulted.set).start()

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture(autouse=True)
def _keep_signal_handlers() -> Any:  # serve.run installs its own
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_fault_ends_the_command_non_zero_after_a_clean_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.runtime.tune_process", lambda: None)
    running = _Running()
    assert serve.run(running, "127.0.0.1", 0, api=False) == 70  # type: ignore[arg-type]
    assert running.stopped
