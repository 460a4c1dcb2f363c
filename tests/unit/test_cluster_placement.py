"""Placement of cameras on cluster workers (pure functions, no Ray): sticky assignment, and
rebalancing by the fewest moves that narrow the load spread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.config import CameraConfig, parse_config
from pipeline.ops.cluster import assign, rebalance
from tests.conftest import camera_dict


def cams(costs: dict[str, float]) -> tuple[list[CameraConfig], dict[str, float]]:
    cfg = parse_config({"cameras": [camera_dict(id=c) for c in costs]})
    return list(cfg.cameras), costs


def test_assign_is_sticky_and_places_new_cameras_heaviest_first() -> None:
    cameras, cost = cams({"a": 3.0, "b": 1.0, "c": 1.0, "d": 2.0})
    placed = assign(cameras, ["w1", "w2"], {}, lambda c: cost[c.id])
    assert placed == {"a": "w1", "d": "w2", "b": "w2", "c": "w1"}  # 4 + 3
    # w1 is replaced by w3: only its cameras move, the survivor keeps its own
    again = assign(cameras, ["w2", "w3"], placed, lambda c: cost[c.id])
    assert {k: v for k, v in again.items() if placed[k] == "w2"} == {"d": "w2", "b": "w2"}
    assert (again["a"], again["c"]) == ("w3", "w2")  # 3 + 0 → 3 + 3, then the tie by name


def test_rebalance_onto_a_new_worker_moves_as_few_cameras_as_narrow_the_spread() -> None:
    cameras, cost = cams({f"c{i}": 1.0 for i in range(6)})
    placed = {f"c{i}": "w1" if i < 3 else "w2" for i in range(6)}
    after = rebalance(cameras, ["w1", "w2", "w3"], placed, lambda c: cost[c.id], max_moves=10)
    moved = {k for k in placed if after[k] != placed[k]}
    assert len(moved) == 2  # 3/3/0 → 2/2/2
    assert sorted(list(after.values()).count(w) for w in ("w1", "w2", "w3")) == [2, 2, 2]


def test_rebalance_never_moves_a_camera_that_would_only_swap_the_heavy_worker() -> None:
    cameras, cost = cams({"big": 5.0, "s1": 1.0, "s2": 1.0})
    placed = {"big": "w1", "s1": "w2", "s2": "w2"}
    # gap 3: moving "big" (5) would make w2 the heavy one by 7; nothing smaller sits on w1
    assert rebalance(cameras, ["w1", "w2"], placed, lambda c: cost[c.id], 10) == placed


def test_rebalance_respects_the_move_budget() -> None:
    cameras, cost = cams({f"c{i}": 1.0 for i in range(8)})
    placed = dict.fromkeys(cost, "w1")
    after = rebalance(cameras, ["w1", "w2"], placed, lambda c: cost[c.id], max_moves=1)
    assert sum(after[k] != placed[k] for k in placed) == 1


def test_gridsight_run_starts_one_worker_per_usable_core_at_most_one_per_camera(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipeline.ops.cli import run_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    no_quota = tmp_path / "cpu.max"
    no_quota.write_text("max 100000\n")
    five = parse_config({"cameras": [camera_dict(id=f"c{i}") for i in range(5)]})
    assert run_workers(five, None, no_quota) == 4  # default: one per core this process may use
    assert run_workers(five, None, tmp_path / "absent") == 4  # no cgroup v2 here
    assert run_workers(five, 1, no_quota) == 1  # everything in this process (small sites)
    assert run_workers(five, 8, no_quota) == 5  # never an idle worker
    two = parse_config({"cameras": [camera_dict(id="a"), camera_dict(id="b", enabled=False)]})
    assert run_workers(two, None, no_quota) == 1  # one enabled camera: no worker processes
    quota = tmp_path / "quota"
    quota.write_text("250000 100000\n")  # a container limited to 2.5 CPUs
    assert run_workers(five, None, quota) == 3


def test_a_node_plan_counts_each_worker_process_memory_before_its_cameras() -> None:
    from pipeline.ops.capacity import CameraCost, CostModel, NodeSpec, cameras_per_node, plan

    street = CameraCost(cores=0.03, memory_mb=30.0)
    roomy = NodeSpec(cores=32, memory_gb=64.0, utilisation=0.8)
    assert cameras_per_node(street, roomy) == 853  # by CPU: 32 x 0.8 / 0.03
    # 12 GB: 80 % of it less 32 workers x 220 MB leaves room for 93 cameras, not 327
    tight = NodeSpec(cores=32, memory_gb=12.0, utilisation=0.8)
    assert cameras_per_node(street, tight) == 93
    [line] = plan({"keyframes": 1000}, CostModel({"keyframes": street}, "test"), roomy)
    assert (line.per_node, line.nodes) == (853, 2)
    assert line.memory_gb == round((1000 * 30 + 2 * 32 * 220) / 1024, 1)  # workers included
