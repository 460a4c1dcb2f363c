"""A local RTSP server (GStreamer gst-rtsp-server) for demos and integration tests.

Run it with Debian's interpreter, which has the GObject bindings (PyGObject is not on PyPI
in a form that finds the system's GStreamer typelibs)::

    /usr/bin/python3 pipeline/ops/tools/rtsp_server.py --port 8554 \\
        --mount /cam1=test:640x360@10:20 --mount /demo=file:/path/demo.h264@25

Mount sources:

* ``test:WxH@FPS:GOP``: a live, generated H.264 stream (videotestsrc → x264enc). The picture
  carries a running clock, so every frame differs. ``…:GOP:h265`` encodes H.265 (x265enc)
  instead, ``…:GOP:bf2`` (either codec) with 2 B-frames between reference pictures, as many
  cameras and recorders send.
* ``file:PATH@FPS``: an H.264 Annex-B elementary stream, split into access units and pushed
  into an ``appsrc`` at FPS with running-time timestamps, looping forever; no re-encoding.

Clients may use TCP or UDP transport. The server prints ``READY <port>`` once it listens and
binds to 127.0.0.1 only. It must not import anything from the gridsight package.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def access_units(data: bytes) -> list[bytes]:
    """Split an H.264 Annex-B stream into access units (one coded picture each).

    A new unit starts at an AUD/SPS/PPS/SEI after a picture's slices, or at a slice whose
    first_mb_in_slice is 0 (the first bit of the slice header is 1).
    """
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", data)]
    nals = []
    for i, pos in enumerate(starts):
        begin = pos - 1 if pos > 0 and data[pos - 1] == 0 else pos
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        if i + 1 < len(starts) and data[end - 1] == 0:
            end -= 1
        nals.append((begin, end, data[pos + 3] & 0x1F, data[pos + 4] if pos + 4 < len(data) else 0))
    units: list[bytes] = []
    unit_start, seen_slice = 0, False
    for begin, _end, kind, first in nals:
        is_slice = 1 <= kind <= 5
        boundary = seen_slice and ((kind in (6, 7, 8, 9)) or (is_slice and first & 0x80))
        if boundary:
            units.append(data[unit_start:begin])
            unit_start, seen_slice = begin, False
        seen_slice = seen_slice or is_slice
    units.append(data[unit_start:])
    return [u for u in units if u]


class LoopingFile:
    """Feeds a looping H.264 file into an appsrc at its frame rate, timestamped on push."""

    def __init__(self, path: str, fps: int) -> None:
        with open(path, "rb") as fh:
            self.units = access_units(fh.read())
        self.fps = fps
        self.index = 0
        self.timer = 0

    def on_configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        src = media.get_element().get_by_name("src")
        self.index = 0
        self.timer = GLib.timeout_add(max(1, round(1000 / self.fps)), self._push, src)

    def _push(self, src: Gst.Element) -> bool:
        unit = self.units[self.index % len(self.units)]
        self.index += 1
        buf = Gst.Buffer.new_wrapped(unit)
        buf.duration = Gst.SECOND // self.fps
        if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
            self.timer = 0
            return False  # media torn down (last client left): stop this timer
        return True


def launch_line(source: str) -> tuple[str, LoopingFile | None]:
    test = re.fullmatch(r"test:(\d+)x(\d+)@(\d+):(\d+)(:h265)?(?::bf(\d+))?", source)
    if test:
        w, h, fps, gop, h265, bf = test.groups()
        if h265:
            # B-frames need x265's lookahead; zerolatency turns both off
            opts = f"bframes={bf}:rc-lookahead={int(bf) + 1}" if bf else ""
            tune = "" if bf else "tune=zerolatency "
            enc = (f"x265enc {tune}speed-preset=ultrafast key-int-max={gop} "
                   f'option-string="{opts}" ! video/x-h265,profile=main ! rtph265pay')  # fmt: skip
        elif bf:
            enc = (f"x264enc speed-preset=ultrafast key-int-max={gop} bframes={bf} "
                   f"b-adapt=false rc-lookahead={int(bf) + 1} sync-lookahead=0 ! "
                   f"video/x-h264,profile=main ! rtph264pay")  # fmt: skip
        else:
            enc = (f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} "
                   f"bframes=0 ! video/x-h264,profile=baseline ! rtph264pay")  # fmt: skip
        return (
            f"( videotestsrc is-live=true pattern=smpte ! "
            f"video/x-raw,width={w},height={h},framerate={fps}/1 ! "
            f'clockoverlay halignment=left valignment=top font-desc="Sans 16" ! '
            f"videoconvert ! {enc} name=pay0 pt=96 config-interval=1 )"
        ), None
    file = re.fullmatch(r"file:(.+)@(\d+)", source)
    if file:
        path, fps = file.groups()
        feeder = LoopingFile(path, int(fps))
        return (
            "( appsrc name=src is-live=true do-timestamp=true format=time "
            "caps=video/x-h264,stream-format=byte-stream,alignment=au ! "
            "h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        ), feeder
    raise SystemExit(f"bad source {source!r}: use test:WxH@FPS:GOP[:h265][:bfN] or file:PATH@FPS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--mount", action="append", required=True, help="/path=SOURCE (repeatable)")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    feeders: list[LoopingFile] = []
    for spec in args.mount:
        path, _, source = spec.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        line, feeder = launch_line(source)
        factory.set_launch(line)
        factory.set_shared(True)  # default transports: UDP, UDP multicast and TCP
        if feeder is not None:
            factory.connect("media-configure", feeder.on_configure)
            feeders.append(feeder)
        mounts.add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
