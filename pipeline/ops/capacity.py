"""Per-camera cost model and capacity plan: how many cameras fit on a node, how many nodes a
city needs. Costs are measured by ``benchmarks/throughput.py`` on a known machine, which also
writes them into the package (``camera_costs.json`` beside this module): the running system
never reads ``benchmarks/``. The plan scales costs by a node's core count and keeps headroom
for bursts (events, reconnect storms).

Used by the cluster coordinator (shard sizing) and by ``benchmarks/capacity.py`` (the plan for
19,000 cameras).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import CameraConfig

# Written by benchmarks/throughput.py from its results; shipped with the package.
PACKAGED_COSTS = Path(__file__).resolve().parent / "camera_costs.json"

# Measured on the 2-core reference VM (benchmarks/results/throughput*.json); used when no
# result file is at hand.
DEFAULT_COST = {
    # keyframe decoding + change-gated detection + analyzers (parking measured; vending and
    # bins run on the same keyframes and detector pass, their analyzers cost < 1 ms a look)
    "keyframes": (0.0321, 27.0),
    "throwing": (0.2665, 29.1),  # every frame decoded + motion at 1/2 scale + tracker
}


@dataclass(frozen=True, slots=True)
class CameraCost:
    cores: float
    memory_mb: float


@dataclass(frozen=True, slots=True)
class CostModel:
    """Per-camera cores and memory by camera profile, on the reference machine."""

    profiles: Mapping[str, CameraCost]
    source: str

    @classmethod
    def from_results(cls, results: Path) -> CostModel:
        profiles = {k: CameraCost(*v) for k, v in DEFAULT_COST.items()}
        used = []
        for name, key, cpu_key, mem_key in (
            ("throughput.json", "keyframes", "cpu_per_camera", "rss_mb_per_camera"),
            ("throughput_throwing.json", "throwing", "cpu_per_throwing_camera",
             "rss_mb_per_throwing_camera"),
        ):  # fmt: skip
            path = results / name
            if not path.is_file():
                continue
            doc = json.loads(path.read_text(encoding="utf-8"))
            summary = doc["summary"]
            block = summary.get("at_max", summary)
            # Where capacity is bounded by event latency rather than CPU, a camera occupies
            # the share of the machine that the bound leaves it, not the CPU it was seen using.
            cpu = block.get("cores_per_camera_effective") or block.get(cpu_key)
            mem = block.get(mem_key)
            if cpu and mem:
                profiles[key] = CameraCost(float(cpu), float(mem))
                used.append(f"{name}@{doc.get('commit', '?')[:10]}")
        return cls(profiles, ", ".join(used) or "built-in defaults")

    @classmethod
    def packaged(cls, path: Path = PACKAGED_COSTS) -> CostModel:
        """The costs shipped with the package (built-in defaults if the file is missing)."""
        if not path.is_file():
            return cls({k: CameraCost(*v) for k, v in DEFAULT_COST.items()}, "built-in defaults")
        doc = json.loads(path.read_text(encoding="utf-8"))
        profiles = {k: CameraCost(float(v["cores"]), float(v["memory_mb"]))
                    for k, v in doc["profiles"].items()}  # fmt: skip
        return cls(profiles, str(doc["source"]))

    def write(self, path: Path = PACKAGED_COSTS) -> None:
        profiles = {k: {"cores": c.cores, "memory_mb": c.memory_mb}
                    for k, c in self.profiles.items()}  # fmt: skip
        doc = {"source": self.source, "profiles": profiles}
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def profile(self, camera: CameraConfig) -> str:
        from pipeline.rules.registry import kind_of_rule

        # the costliest profile among the camera's rules (a façade camera decodes every frame)
        profiles = {kind_of_rule(r).profile for r in camera.rules}
        return "throwing" if "throwing" in profiles else "keyframes"

    def cost(self, camera: CameraConfig) -> CameraCost:
        return self.profiles[self.profile(camera)]


@dataclass(frozen=True, slots=True)
class NodeSpec:
    cores: int = 32
    memory_gb: float = 64.0
    # share of the cores planned for cameras: the rest absorbs evidence writing bursts,
    # reconnect storms and the API
    utilisation: float = 0.5
    # per-core speed relative to the reference VM's cores (1.0 = same)
    core_speed: float = 1.0
    # usable RTSP ingress: half of a 10 GbE port (every packet is received even when only
    # keyframes are decoded; evidence clips are cut from those packets)
    nic_mbps: float = 5000.0
    # memory of one worker process before its cameras (Python, OpenCV, PyAV, onnxruntime and
    # the models; one worker per core): ~213 MB per worker in benchmarks/throughput.py's
    # trials with two workers (rss with models loaded, less the benchmark's own process)
    worker_mb: float = 220.0


def cameras_per_node(cost: CameraCost, node: NodeSpec, bitrate_mbps: float = 4.0) -> int:
    by_cpu = node.cores * node.utilisation * node.core_speed / cost.cores
    by_mem = (node.memory_gb * 1024 * 0.8 - node.cores * node.worker_mb) / cost.memory_mb
    by_net = node.nic_mbps / bitrate_mbps
    return max(0, math.floor(min(by_cpu, by_mem, by_net)))


@dataclass(frozen=True, slots=True)
class PlanLine:
    profile: str
    cameras: int
    per_node: int
    nodes: int
    cores: float
    memory_gb: float
    ingress_mbps: float


def plan(
    mix: Mapping[str, int], model: CostModel, node: NodeSpec, bitrate_mbps: float = 4.0
) -> list[PlanLine]:
    """Nodes per camera profile (profiles are not mixed on a node: a façade camera costs
    ~8 street cameras, and separate pools keep one profile's bursts off the other)."""
    lines = []
    for profile, n in mix.items():
        cost = model.profiles[profile]
        per = cameras_per_node(cost, node, bitrate_mbps)
        nodes = math.ceil(n / per) if per else 0
        lines.append(
            PlanLine(
                profile, n, per, nodes, round(n * cost.cores / node.core_speed, 1),
                round((n * cost.memory_mb + nodes * node.cores * node.worker_mb) / 1024, 1),
                round(n * bitrate_mbps, 1),
            )
        )  # fmt: skip
    return lines
