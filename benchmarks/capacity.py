"""Capacity plan for N cameras from measured per-camera cost, checked by a simulated run.

The cost per camera profile (street cameras on keyframes: parking/vending/bins; façade cameras
at full frame rate: 高空抛物) comes from benchmarks/results/throughput*.json. The plan packs each
profile onto nodes at a utilisation cap and adds memory and RTSP ingress bandwidth.

The check (``--simulate``): the same cost model predicts how many cameras of a given mix this
machine sustains; that mix is then run for real (looping 1080p25 files at real-time pace, all
analyzers, evidence writing; one process as ``gridsight run --workers 1``, or with
``--processes P`` a coordinator and P worker processes as the default ``gridsight run``) at
100 %, 85 %, 70 % and 55 % of the prediction, stopping at the first that sustains real time:
the plan's utilisation cap must not exceed that share.

    .venv/bin/python benchmarks/capacity.py --cameras 19000 --simulate
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, write_result
from pipeline.ops.capacity import CostModel, NodeSpec, cameras_per_node, plan

# The target city: 19,000 feeds over 1,689 grids. Mix (stated, not measured): most feeds watch
# streets and compound lanes (parking, vending and bins rules share one keyframe decode); about
# one in ten watches a residential façade for 高空抛物.
FACADE_SHARE = 0.10
GRIDS = 1689


def simulate(
    model: CostModel, facade_cams: int, seconds: float, processes: int = 1
) -> dict[str, Any]:
    """Run the predicted mix on this machine at 100 %, then less until it sustains; with
    ``processes`` > 1 as ``gridsight run`` runs it (a coordinator, one worker per core)."""
    from benchmarks.throughput import trial_subprocess

    cores = os.cpu_count() or 1
    here = NodeSpec(cores=cores, memory_gb=16, utilisation=1.0)
    budget = cores * here.utilisation - facade_cams * model.profiles["throwing"].cores
    street = max(0, math.floor(budget / model.profiles["keyframes"].cores))
    runs = []
    # from the full prediction down: the first mix that sustains real time says how much of
    # the additive model's capacity holds when profiles share one machine
    for factor in (1.0, 0.85, 0.7, 0.55):
        n_street = round(street * factor)
        # with processes > 1: the default `gridsight run`, its coordinator placing the mix
        # on one worker per core by the packaged costs
        r = trial_subprocess(f"mixed{facade_cams}", facade_cams + n_street, seconds, 8.0,
                             "typical", processes)  # fmt: skip
        r |= {"factor": factor, "street_cameras": n_street, "facade_cameras": facade_cams,
              "processes": processes,
              "layout": "coordinator + workers" if processes > 1 else "one process"}  # fmt: skip
        print(f"  simulate x{factor}: {facade_cams} façade + {n_street} street → "
              f"sustained={r['sustained']} min_fps={r.get('min_camera_fps_in')} "
              f"cpu={r.get('cpu_cores_used')}", flush=True)  # fmt: skip
        runs.append(r)
        if r["sustained"]:
            break
    held = next((r["factor"] for r in runs if r["sustained"]), None)
    return {
        "predicted": {"facade_cameras": facade_cams, "street_cameras": street, "cores": cores},
        "runs": runs,
        "sustained_share_of_prediction": held,
        "note": "plan utilisation must stay at or below this share of the cores",
    }


def markdown(lines: list[Any], node: NodeSpec, n: int, model: CostModel) -> str:
    total_nodes = sum(x.nodes for x in lines)
    out = [
        "| profile | cameras | per node | nodes | cores used | memory GB | RTSP ingress Mbit/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    out += [
        f"| {x.profile} | {x.cameras} | {x.per_node} | {x.nodes} | {x.cores} | {x.memory_gb} | "
        f"{x.ingress_mbps} |"
        for x in lines
    ]
    per_grid = n / GRIDS
    out += [
        "",
        f"Total: **{total_nodes} nodes** of {node.cores} cores / {node.memory_gb:.0f} GB at "
        f"{node.utilisation:.0%} planned utilisation (costs: {model.source}).",
        f"Ingress per grid (≈{per_grid:.1f} cameras at 4 Mbit/s): {per_grid * 4:.0f} Mbit/s; "
        f"per node: ≤ {max(x.per_node for x in lines) * 4} Mbit/s.",
    ]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cameras", type=int, default=19000)
    p.add_argument("--facade-share", type=float, default=FACADE_SHARE)
    p.add_argument("--node-cores", type=int, default=32)
    p.add_argument("--node-memory-gb", type=float, default=64.0)
    # nodes run one pipeline worker per core (`gridsight run --cluster <cores>`), where the mixed
    # check sustained 100 % of the prediction; 80 % keeps headroom for bursts (one process
    # per node sustained only 55 %: plan at 0.5 for that layout)
    p.add_argument("--utilisation", type=float, default=0.8)
    p.add_argument("--simulate", action="store_true", help="check the model with a real run")
    p.add_argument(
        "--reuse-simulation", action="store_true",
        help="keep the check from the last results/capacity.json (re-plan only)",
    )  # fmt: skip
    p.add_argument("--facade-cameras", type=int, default=2, help="façade cameras in the check")
    p.add_argument("--seconds", type=float, default=25.0)
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run the check as this many pipeline processes (one per core)",
    )
    args = p.parse_args()

    model = CostModel.from_results(RESULTS)
    node = NodeSpec(args.node_cores, args.node_memory_gb, args.utilisation)
    facade = round(args.cameras * args.facade_share)
    mix = {"keyframes": args.cameras - facade, "throwing": facade}
    lines = plan(mix, model, node)
    table = markdown(lines, node, args.cameras, model)
    print(table)
    payload: dict[str, Any] = {
        "method": __doc__,
        "cost_model": {k: asdict(v) for k, v in model.profiles.items()} | {"source": model.source},
        "node": asdict(node),
        "mix": mix,
        "plan": [asdict(x) for x in lines],
        "per_node": {k: cameras_per_node(v, node) for k, v in model.profiles.items()},
        "markdown": table,
    }
    # one check per process layout: one process ("simulation"), one per core
    # ("simulation_processes"); the layout not run now is kept from the last result
    key = "simulation" if args.processes == 1 else "simulation_processes"
    if args.simulate:
        payload[key] = simulate(model, args.facade_cameras, args.seconds, args.processes)
    if (args.simulate or args.reuse_simulation) and (RESULTS / "capacity.json").is_file():
        last = json.loads((RESULTS / "capacity.json").read_text(encoding="utf-8"))
        for k in ("simulation", "simulation_processes"):
            if k in last and k not in payload:
                payload[k] = last[k] | {
                    "from_commit": last[k].get("from_commit", last.get("commit"))
                }
    path = write_result("capacity", payload)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
