"""Live view cost and latency: one 1080p25 4 Mbit/s camera (the throughput benchmark's generated
street stream, read at real-time pace by the same ``StreamSource`` a live camera uses) watched
by 0, 1, 4 and 16 viewers through ``Runtime.live_view`` (the remux the API streams; the HTTP
layer itself is not measured), in one process.

* CPU: process CPU over ``SECONDS`` with that many viewers, minus the same with none; per
  viewer, the difference over the viewers (one remux is shared; each viewer adds a copy).
* Latency: for each fragment a viewer receives, the wall time it arrived minus the wall time
  its newest frame was demuxed (frames are stamped with the wall clock by the source; the
  fragment's newest frame is found from its ``tfdt`` and ``trun`` boxes). The browser adds its
  own buffering on top (MSE plays from the newest ~0.3 s).
* The same street as H.265 (2.5 Mbit/s), watched by 0, 1 and 4 viewers: browsers' MSE does not
  play H.265 everywhere, so its viewers get one H.264 copy (decoded, ≤ 960 wide, encoded with
  x264 ultrafast), shared by all of them.

    .venv/bin/python benchmarks/live_view.py
"""

from __future__ import annotations

import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import CACHE, delivery_form, percentile, transcode, write_result
from benchmarks.throughput import bench_clip

SECONDS = 20.0
VIEWERS = (0, 1, 4, 16)
HEVC_VIEWERS = (0, 1, 4)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, list[bytes]]:
    """Child boxes (payloads) by type."""
    end = len(data) if end is None else end
    out: dict[bytes, list[bytes]] = {}
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        head = 8
        if size == 1:
            size = struct.unpack(">Q", data[i + 8 : i + 16])[0]
            head = 16
        if size < head:
            break
        out.setdefault(kind, []).append(data[i + head : i + size])
        i += size
    return out


def timescale(init: bytes) -> int:
    moov = boxes(init)[b"moov"][0]
    mdia = boxes(boxes(moov)[b"trak"][0])[b"mdia"][0]
    mdhd = boxes(mdia)[b"mdhd"][0]
    version = mdhd[0]
    return int(struct.unpack(">I", mdhd[20:24] if version == 1 else mdhd[12:16])[0])


def newest_frame_ticks(fragment: bytes, default_duration: int) -> int:
    """Decode time (media ticks) of the last sample of a moof+mdat fragment."""
    traf = boxes(boxes(fragment)[b"moof"][0])[b"traf"][0]
    parts = boxes(traf)
    tfdt = parts[b"tfdt"][0]
    base = struct.unpack(">Q" if tfdt[0] == 1 else ">I", tfdt[4:12] if tfdt[0] == 1 else tfdt[4:8])[
        0
    ]
    tfhd = parts[b"tfhd"][0]
    flags = int.from_bytes(tfhd[1:4], "big")
    pos = 8  # version+flags, track id
    pos += 8 if flags & 0x1 else 0  # base data offset
    pos += 4 if flags & 0x2 else 0  # sample description index
    duration = struct.unpack(">I", tfhd[pos : pos + 4])[0] if flags & 0x8 else default_duration
    trun = parts[b"trun"][0]
    tflags = int.from_bytes(trun[1:4], "big")
    count = struct.unpack(">I", trun[4:8])[0]
    pos = 8 + (4 if tflags & 0x1 else 0) + (4 if tflags & 0x4 else 0)
    durations = []
    for _ in range(count):
        d = duration
        if tflags & 0x100:
            d = struct.unpack(">I", trun[pos : pos + 4])[0]
        pos += 4 * sum(bool(tflags & f) for f in (0x100, 0x200, 0x400, 0x800))
        durations.append(d)
    return int(base) + sum(durations[:-1])


def trial(runtime: Any, n: int) -> dict[str, Any]:
    latencies: list[float] = []
    streams = []
    ring = runtime.cameras["cam000"].ring
    # media tick 0 of the shared remux: the keyframe its tap starts at, the latest held now
    origin = latest_keyframe_time(ring)
    for _ in range(n):
        live = runtime.live_view("cam000")
        assert live is not None, "no live stream"
        streams.append(live[1])
    stop = threading.Event()

    def watch(stream: Any, record: bool) -> None:
        try:
            scale = timescale(next(stream))
            for frag in stream:
                now = time.time()
                if record:
                    latencies.append(now - (origin + newest_frame_ticks(frag, 0) / scale))
                if stop.is_set():
                    break
        finally:
            stream.close()  # as the API does when a viewer leaves

    threads = [threading.Thread(target=watch, args=(s, i == 0), daemon=True)
               for i, s in enumerate(streams)]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(2.0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(SECONDS)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    stop.set()
    for t in threads:
        t.join(5)
    time.sleep(1.0)
    steady = latencies[2:]  # the first fragments carry the pre-join backlog
    return {
        "viewers": n,
        "cpu_cores": round(cpu / wall, 4),
        "fragments": len(latencies),
        "latency_s_p50": round(percentile(steady, 0.5) or 0.0, 3) if steady else None,
        "latency_s_p95": round(percentile(steady, 0.95) or 0.0, 3) if steady else None,
        "still_watching_after_close": runtime.live.watching(),
    }


def latest_keyframe_time(ring: Any) -> float:
    """The frame time (wall clock) of the latest keyframe the ring holds: where a tap starts."""
    with ring._lock:  # benchmark introspection only
        keys = [p.time_s for p in ring._packets if p.is_keyframe]
    return float(keys[-1])


def measure(clip: Path, viewers: tuple[int, ...]) -> list[dict[str, Any]]:
    from pipeline.config import parse_config
    from pipeline.ops.compose import pipeline

    root = Path(tempfile.mkdtemp(prefix="gs-live-"))
    cfg = parse_config({
        "cameras": [{"id": "cam000", "name": "live", "url": str(clip), "loop": True,
                     "realtime": True, "decode": "keyframes"}],
        "evidence": {"root": str(root)},
    })  # fmt: skip
    running = pipeline(cfg)
    running.start()
    time.sleep(6.0)
    runs = [trial(running.runtime, n) for n in viewers]
    running.stop(timeout=20)
    base = runs[0]["cpu_cores"]
    for r in runs[1:]:
        r["cpu_cores_over_none"] = round(r["cpu_cores"] - base, 4)
        r["cpu_cores_per_viewer"] = round((r["cpu_cores"] - base) / r["viewers"], 4)
        print(r, flush=True)
    return runs


def main() -> int:
    from pipeline.runtime import tune_process

    tune_process()
    clip = bench_clip("typical")
    runs = measure(clip, VIEWERS)
    # The same street as H.265 (most cameras sold in China): its viewers get an H.264 copy,
    # one decode and encode shared by all of them.
    hevc = CACHE / f"{clip.stem}_hevc.mp4"
    if not hevc.exists():
        form = delivery_form(codec="libx265", options={
            "preset": "ultrafast", "b": "2500k", "maxrate": "2500k", "bufsize": "2500k",
            "x265-params": "keyint=50:log-level=error:pools=1:frame-threads=1"})  # fmt: skip
        transcode(clip, hevc, form)
    hevc_runs = measure(hevc, HEVC_VIEWERS)
    result = {"method": __doc__, "stream": str(clip.name), "seconds": SECONDS, "trials": runs,
              "hevc_stream": hevc.name, "hevc_trials": hevc_runs}  # fmt: skip
    path = write_result("live_view", result)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
