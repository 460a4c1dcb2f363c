"""高空抛物: the two real throws of the development clips as other cameras would deliver them.

Footage this project has not seen comes from other cameras, recorders and exports: H.265,
1440p or D1, 25 or 12.5 fps, full-range ("JPEG") YUV, Matroska or MPEG-TS with an audio track,
recorder timestamps that jitter, a starved 384 kbit/s stream. Each of the development clips'
real throws (``throwing/bharath_office1.mp4``: floor 3 of an office, alerted 8.11 s at its own
encoding; ``throwing/hamonitorsentry_video_2.mp4``: a tower, alerted 1.20 s) is re-encoded in
each form with PyAV and replayed through the analyzer with the clip's calibration (relative
corners, so the same clicks at any size), and scored: an event alerted within the throw's span
plus 2 s, with the office's floor. Other events are counted as extra.

The re-encodes are of the clips' decoded frames (already compressed once), so this measures
what each delivery form changes, not the camera's own quality. D1 (704 × 576) is the 16:9
picture stretched to 11:9 as a recorder's D1 channel delivers it: pixels not square, so the
pinhole fit of the calibration fails (the analyzer says so and tests falls in the façade plane
only); ``d1_704x576_sar_16_11`` is the same channel signalling its sample aspect ratio, which
the analyzer applies (square pixels again), and ``d1_704x576_declared_16_9`` the unsignalling
channel with ``display_aspect = "16:9"`` in its camera's entry. CIF (352 × 288) is a
sub-stream: the tower's object is then about one pixel. ``phone_*``: the clip as a phone held
upright stores it, the picture turned a quarter (or three quarters) with a display matrix that
turns it back.

    .venv/bin/python benchmarks/throwing_formats.py        # ~13 min on 2 cores

Results go to ``benchmarks/results/throwing_formats.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED, delivery_form, publish, transcode
from benchmarks.throwing_synth import _replay
from pipeline.config import aspect_fraction
from tests.scenes.facade_3d import CLIPS, Clip, camera_entry

CLIPS_DIR = SHARED / "data" / "throwing"
LATE_S = 2.0  # an alert this long after the object landed is still this throw's


FORMS: dict[str, dict[str, Any] | None] = {
    "as_given": None,
    "h264_crf23": delivery_form(),
    "hevc_crf26": delivery_form(codec="libx265", options={
        "crf": "26", "x265-params": "keyint=50:log-level=error:pools=1:frame-threads=1"}),
    "1440p": delivery_form(size=(2560, 1440)),
    "d1_704x576_stretched": delivery_form(size=(704, 576)),
    "d1_704x576_sar_16_11": delivery_form(size=(704, 576), sar=Fraction(16, 11)),
    "d1_704x576_declared_16_9": delivery_form(size=(704, 576),
                                              camera={"display_aspect": "16:9"}),
    "phone_upright_rotated_90": delivery_form(turns=1),
    "phone_rotated_270": delivery_form(turns=3),
    "pole_sway_1px": delivery_form(shake_px=1.0),
    "pole_sway_3px": delivery_form(shake_px=3.0),
    "cif_352x288": delivery_form(size=(352, 288)),
    "25fps": delivery_form(fps=25.0),
    "15fps": delivery_form(fps=15.0),
    "12.5fps": delivery_form(fps=12.5),
    "full_range_yuvj420p": delivery_form(full_range=True),
    "matroska_with_audio": delivery_form(audio=True, ext=".mkv"),
    "mpeg_ts": delivery_form(ext=".ts"),
    "timestamps_jitter_8ms": delivery_form(jitter_s=0.008),
    "h264_384kbps": delivery_form(options={"b": "384k", "maxrate": "384k", "bufsize": "768k",
                                   "g": "50"}),
}  # fmt: skip


def score(clip: Clip, reports: list[dict[str, Any]]) -> dict[str, Any]:
    t0, t1 = clip.real_throw["span_s"]
    events = []
    for r in reports:
        top = (r["detection"]["source_estimate"]["candidates"] or [None])[0] or {}
        fit = r["detection"]["fit"]
        events.append({"alerted_s": round(r["video_offsets_s"]["alerted"], 2),
                       "floor": top.get("floor"), "column": top.get("window_column"),
                       "camera_fit": "3d" if "rms_px" in fit else "plane"})  # fmt: skip
    hits = [e for e in events if t0 <= e["alerted_s"] <= t1 + LATE_S]
    floor = clip.real_throw.get("floor")
    return {
        "found": bool(hits),
        "floor_right": None if floor is None else bool(hits) and hits[0]["floor"] == floor,
        "alerted_s": hits[0]["alerted_s"] if hits else None,
        "extra_events": len(events) - min(1, len(hits)),
        "events": events,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--forms", default=",".join(FORMS), help="comma-separated, of: "
                   + ", ".join(FORMS))  # fmt: skip
    args = p.parse_args()
    if not CLIPS_DIR.is_dir():
        print(f"skipped: {CLIPS_DIR} not found (the development clips live beside the checkout)")
        return 0
    work = Path(tempfile.mkdtemp(prefix="gs-formats-"))
    rows: list[dict[str, Any]] = []
    try:
        for name in args.forms.split(","):
            form = FORMS[name]
            for clip in CLIPS:
                src = CLIPS_DIR / clip.file
                if form is None:
                    path = src
                    with av.open(str(src)) as c:
                        w, h = c.streams.video[0].width, c.streams.video[0].height
                else:
                    path = work / f"{clip.name}-{name}{form['ext']}"
                    w, h = transcode(src, path, form)
                camera = camera_entry(clip, str(path), w, h) | (form or {}).get("camera", {})
                if "display_aspect" in camera:  # clicked on the picture as it is then shown
                    shape = aspect_fraction(camera["display_aspect"])
                    camera["facades"][0]["image_size"] = [round(h * shape), h]
                reports = _replay(path, camera, work)[0]
                rows.append({"form": name, "clip": clip.file, "size": [w, h],
                             **score(clip, reports)})  # fmt: skip
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
                if path != src:
                    path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    office = [r for r in rows if r["clip"] == CLIPS[0].file]
    summary = {
        "throws_found": f"{sum(r['found'] for r in rows)}/{len(rows)}",
        "office_floor_right": f"{sum(r['floor_right'] is True for r in office)}/{len(office)}",
        "extra_events": sum(r["extra_events"] for r in rows),
        "missed": [f"{r['form']}: {r['clip']}" for r in rows if not r["found"]],
    }
    return publish("throwing_formats", __doc__, summary, rows=rows)


if __name__ == "__main__":
    sys.exit(main())
