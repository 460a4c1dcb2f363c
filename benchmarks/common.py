"""Helpers shared by benchmark scripts: machine facts, commit, result files, cached media."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
RESULTS = REPO / "benchmarks" / "results"
CACHE = Path(os.environ.get("GRIDSIGHT_BENCH_CACHE", "/tmp/gridsight-bench"))
# gate.still_decode_interval_s of the benchmarks' still-scene decoding A/B (pipeline.ingest.still)
STILL_DECODE_S = 6.0
# one-sided 95 % upper limit of a Poisson mean, by observed count (0, 1, 2, ... events)
POISSON_95 = (2.996, 4.744, 6.296, 7.754, 9.154, 10.513, 11.842, 13.148)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import av
    import onnxruntime

    return {
        "hostname": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "av": av.__version__,
        "ffmpeg": ".".join(map(str, av.ffmpeg_version_info))
        if hasattr(av, "ffmpeg_version_info")
        else None,
        "onnxruntime": onnxruntime.__version__,
    }


def commit() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            # a benchmark writing its own result file does not make the code it ran dirty
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":(exclude)benchmarks/results"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    tmp.replace(path)
    return path


def publish(name: str, method: str | None, summary: dict[str, Any], **rest: Any) -> int:
    """Write ``benchmarks/results/<name>.json`` (method, summary, the rest), print the summary
    and where it went; a benchmark's exit status."""
    path = write_result(name, {"method": method, "summary": summary, **rest})
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"written {path}")
    return 0


def commit_tree(rev: str, parent: Path) -> Path:
    """``rev``'s pipeline, benchmarks and tests extracted into ``parent``/gridsight, with
    ../shared beside it as here: another commit's code to run in a fresh process."""
    tree = parent / "gridsight"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "pipeline", "benchmarks", "tests"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (parent / "shared").symlink_to(SHARED.resolve())
    return tree


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def delivery_form(
    *, codec: str = "libx264", size: tuple[int, int] | None = None, fps: float | None = None,
    full_range: bool = False, audio: bool = False, ext: str = ".mp4", jitter_s: float = 0.0,
    options: dict[str, str] | None = None, turns: int = 0, sar: Fraction | None = None,
    shake_px: float = 0.0, camera: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """How a camera or recorder delivers footage, for ``transcode``: ``turns`` stores the
    picture turned clockwise by that many quarter turns, with a display matrix that turns it
    back (a phone held upright); ``sar`` signals non-square pixels (a recorder's D1 channel);
    ``shake_px`` moves the picture as a camera on a pole in wind does (``PoleSway``: a smooth
    random sway of that many pixels' standard deviation); ``camera`` holds what the
    integrator writes for such a camera in ``cameras.toml`` (e.g. ``display_aspect``)."""
    return {"codec": codec, "size": size, "fps": fps, "full_range": full_range, "audio": audio,
            "ext": ext, "jitter_s": jitter_s, "turns": turns, "sar": sar, "shake_px": shake_px,
            "camera": camera or {},
            # one encoder thread: x264's rate control over parallel frames depends on thread
            # timing (the 384 kbit/s tower throw was found in one encode, missed in the next)
            "options": {"threads": "1", **(options or {"crf": "23", "g": "50"})}}  # fmt: skip


def transcode(src: Path, dst: Path, form: dict[str, Any], seed: int = 1) -> tuple[int, int]:
    """``src`` re-encoded as ``form`` says; the picture's size as displayed (upright, in
    square pixels)."""
    import av
    import numpy as np

    from tests.media import PoleSway

    rng = np.random.default_rng(seed)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        src_fps = float(vs.average_rate or 30)
        fps: float = form["fps"] or src_fps
        out_v = out.add_stream(form["codec"], rate=Fraction(fps).limit_denominator(1001))
        w, h = form["size"] or (vs.width, vs.height)
        turns = form.get("turns", 0) % 4
        stored = (h, w) if turns % 2 else (w, h)
        pix = "yuvj420p" if form["full_range"] else "yuv420p"
        out_v.width, out_v.height = stored
        out_v.pix_fmt = pix
        if turns:
            out_v.set_display_rotation(90 * turns)
        if form.get("sar"):
            out_v.codec_context.sample_aspect_ratio = form["sar"]
        out_v.options = form["options"]
        tick = 1000 if form["ext"] == ".mkv" else 90000  # Matroska keeps milliseconds
        out_v.time_base = Fraction(1, tick)
        out_a = out.add_stream("aac", rate=16000) if form["audio"] else None
        kept = 0
        sway = PoleSway(form.get("shake_px", 0.0), src_fps, seed)
        for i, frame in enumerate(inp.decode(vs)):
            if i / src_fps + 1e-9 < kept / fps:
                continue  # a camera at a lower rate: the nearest frame at or after its tick
            rgb = sway(np.asarray(frame.to_ndarray(format="rgb24"), np.uint8))
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf = vf.reformat(width=w, height=h, format=pix)
            if turns:
                rgb = np.ascontiguousarray(
                    np.rot90(vf.to_ndarray(format="rgb24"), -turns), np.uint8
                )
                vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix)
            t = kept / fps + (rng.uniform(-1, 1) * form["jitter_s"] if kept else 0.0)
            vf.pts, vf.time_base = round(t * tick), out_v.time_base
            out.mux(out_v.encode(vf))
            if out_a is not None:  # silence, as long as the frame
                n = round(16000 / fps)
                af = av.AudioFrame.from_ndarray(np.zeros((1, n), np.float32), format="fltp",
                                                layout="mono")  # fmt: skip
                af.sample_rate = 16000
                out.mux(out_a.encode(af))
            kept += 1
        out.mux(out_v.encode(None))
        if out_a is not None:
            out.mux(out_a.encode(None))
    return round(w * (form.get("sar") or 1)), h
