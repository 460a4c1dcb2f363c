"""Threads named where the operating system shows them (``top -H``, ``ps -L``, py-spy,
``/proc/<pid>/task/*/comm``): which camera's decoding or which stage spends a node's CPU, and
what ``benchmarks/throughput.py`` sums per stage across worker processes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

_PREFIX = "gridsight-"
_OS_NAME_BYTES = 15  # Linux keeps 15 bytes of a thread's name


def os_name(name: str) -> str:
    """The short name the OS gets for thread ``name`` ("gridsight-src-gate_east" →
    "src-gate_east", cut to 15 bytes)."""
    return name.removeprefix(_PREFIX).encode()[:_OS_NAME_BYTES].decode("utf-8", "ignore")


def start(name: str, target: Callable[[], None]) -> threading.Thread:
    """A started daemon thread running ``target``, named ``name`` in Python and (on Linux,
    best effort) for the OS."""

    def run() -> None:
        try:
            comm = Path(f"/proc/self/task/{threading.get_native_id()}/comm")
            comm.write_text(os_name(name), encoding="utf-8")
        except OSError:
            pass  # not Linux, or /proc not mounted: only the Python name then
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
