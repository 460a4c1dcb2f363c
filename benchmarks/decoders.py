"""Decoding on each hardware video engine this FFmpeg build has, against the CPU, as a camera
decodes (issue 26: accelerators opt-in, measured, with a measured fallback to the CPU).

For the CPU and every device type of ``av.codec.hwaccel.hwdevices_available()``, a camera's
source (``StreamSource`` with ``[ingest] hwaccel`` set to that device) reads the throughput
benchmark's 1080p25 4 Mbit/s street clip (60 s, 2 s GOP) as fast as it can, in the two ways
cameras decode: keyframes only (parking, vending, bins) and every frame with two a second
converted (``sampled``; 高空抛物 decodes every frame too). A row gives the CPU seconds per
decoded frame (every thread of this process), the wall time, where the camera says it decoded
(its health's ``decoder``), and whether it delivered the CPU's frames: the same count and
times, and how far their pixels are (mean absolute difference of 160 × 90 thumbnails: a
hardware decoder may round differently).

A device the machine lacks (no GPU, no driver, a container started without the device) is
refused when the camera starts and the camera decodes on the CPU: its row measures that
fallback, which must cost what plain CPU decoding costs. Devices take turns, three rounds,
medians, after an unrecorded warm-up pass.

    .venv/bin/python benchmarks/decoders.py      # results/decoders.json, ~3 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import av
import av.codec.hwaccel
import cv2
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result
from benchmarks.throughput import bench_clip
from pipeline.ingest.health import HealthTracker
from pipeline.ingest.packet_ring import PacketRing
from pipeline.ingest.source import SourceSettings, StreamSource
from pipeline.types import DecodeMode, Frame

NAME = "decoders"
MODES = (DecodeMode.KEYFRAMES, DecodeMode.SAMPLED)


def decode(clip: Path, mode: DecodeMode, device: str | None) -> dict[str, Any]:
    """One pass of a camera's source over ``clip``: CPU, wall, decoder, frames delivered."""
    thumbs: list[tuple[float, NDArray[np.uint8]]] = []

    def sink(f: Frame) -> bool:
        thumbs.append((f.pts_s, np.asarray(cv2.resize(f.image, (160, 90)), np.uint8)))
        return True

    settings = SourceSettings(
        camera_id="bench", url=str(clip), redacted_url=clip.name, decode_mode=mode,
        realtime=False, start_time_s=0.0, sample_fps=2.0, hwaccel=device,
    )  # fmt: skip
    health = HealthTracker("bench", mode, time.time, 5.0)
    src = StreamSource(settings, PacketRing("bench", 30.0), sink, health, threading.Event())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    src.run()  # a file that does not loop: returns at its end
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    snap = health.snapshot()
    return {"cpu_s": cpu, "wall_s": wall, "decoded": snap.frames_decoded,
            "decoder": snap.decoder, "thumbs": thumbs}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    clip = bench_clip("typical")
    devices: list[str | None] = [None, *av.codec.hwaccel.hwdevices_available()]
    runs: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    decode(clip, DecodeMode.KEYFRAMES, None)  # warm-up: the first pass pays for the imports
    for _ in range(args.rounds):
        for mode in MODES:
            for dev in devices:
                runs.setdefault((mode.value, dev), []).append(decode(clip, mode, dev))
    rows = []
    for mode in MODES:
        ref = runs[(mode.value, None)]
        ref_cpu = statistics.median(r["cpu_s"] / r["decoded"] for r in ref)
        for dev in devices:
            rs = runs[(mode.value, dev)]
            last, base = rs[-1], ref[-1]
            same_times = [t for t, _ in last["thumbs"]] == [t for t, _ in base["thumbs"]]
            diffs = [
                float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
                for (_, a), (_, b) in zip(last["thumbs"], base["thumbs"], strict=False)
            ]
            cpu = statistics.median(r["cpu_s"] / r["decoded"] for r in rs)
            rows.append({
                "mode": mode.value, "hwaccel": dev, "decoder": last["decoder"],
                "frames_decoded": last["decoded"], "frames_delivered": len(last["thumbs"]),
                "cpu_ms_per_decoded_frame": round(1000 * cpu, 3),
                "cpu_vs_plain_cpu": round(cpu / ref_cpu, 3),
                "wall_s_median": round(statistics.median(r["wall_s"] for r in rs), 2),
                "same_frames_as_cpu": same_times and len(last["thumbs"]) == len(base["thumbs"]),
                "thumb_mean_abs_diff_max": round(max(diffs, default=0.0), 3),
            })  # fmt: skip
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    path = write_result(NAME, {
        "method": __doc__, "clip": f"{clip.name} (benchmarks/throughput.py bench_clip)",
        "pyav": av.__version__, "hwdevices_in_build": devices[1:], "rounds": args.rounds,
        "rows": rows,
    })  # fmt: skip
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
