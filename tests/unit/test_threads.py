"""Threads carry their stage's name to the OS, where top -H, ps -L and the throughput
benchmark's per-stage CPU find it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipeline import threads


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="names via Linux /proc only")
def test_a_started_thread_is_named_for_the_os() -> None:
    seen: list[str] = []

    def body() -> None:
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    t = threads.start("gridsight-src-gate_east_entrance", body)
    t.join(5)
    assert t.name == "gridsight-src-gate_east_entrance" and t.daemon
    assert seen == ["src-gate_east_e"]  # the OS keeps 15 bytes


def test_an_os_name_is_cut_between_characters() -> None:
    short = threads.os_name("gridsight-src-东门入口摄像头")
    assert short == "src-东门入"  # 13 bytes: a fourth character would make 16


def test_the_project_starts_its_threads_through_one_place() -> None:
    """A thread started elsewhere keeps the interpreter's name in the OS and is missed by
    per-stage CPU accounting (``benchmarks/throughput.py``)."""
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for d in ("pipeline", "api")
        for p in sorted((root / d).rglob("*.py"))
        if p.name != "threads.py" and "threading.Thread(" in p.read_text(encoding="utf-8")
    ]
    assert offenders == [], f"start threads with pipeline.threads.start: {offenders}"
