"""Mutated evidence packages through ``verify``: every change is named (the changed file, or
the manifest when the manifest or its signature changed), and nothing makes it crash."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, strategies as st

from pipeline.casework.cases import CaseService
from pipeline.casework.package import Exporter, verify_package
from pipeline.config import CasesConfig
from pipeline.evidence.report import EvidenceItem
from pipeline.evidence.storage import LocalStorage
from pipeline.ingest.media import encode_h264
from pipeline.rules.parking import ParkingDetails
from pipeline.store.repository import EventStore
from pipeline.types import Event, EventState, EventType

KEY = b"fuzz-signing-key"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (full) package of a generated parking case, signed."""
    root = tmp_path_factory.mktemp("pkg")
    store = EventStore(root / "gridsight.db")
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(6)]
    (root / "ev").mkdir()
    clip = encode_h264(root / "ev" / "clip.mp4", iter(frames), fps=6, gop=6)
    data = clip.read_bytes()
    item = EvidenceItem("e1-clip", "clip", "video_clip", "original", "ev/clip.mp4",
                        "video/mp4", len(data), hashlib.sha256(data).hexdigest(), 0.0)  # fmt: skip
    now = time.time()
    details = ParkingDetails("fire_lane", "car", "motor", (0.6, 0.5, 0.9, 0.6),
                             (0.6, 0.5, 0.9, 0.6), 300, 300, 180, 0.8, 10, (1,))  # fmt: skip
    ev = Event("e1", EventType.FIRE_LANE_OCCUPATION, EventState.STARTED, "cam1", "lane",
               "parking", now - 300, now, now, None, 0.8, details)  # fmt: skip
    store.upsert_event(ev, "urgent", {"report_id": "e1"}, None, None, now, evidence=[item])
    tz = ZoneInfo("Asia/Shanghai")
    cases = CaseService(store, CasesConfig(), tz, time.time)
    row = store.get_event("e1")
    assert row is not None
    case = cases.on_event(row)
    assert case is not None
    out = root / "package"
    Exporter(store, LocalStorage(root), cases, tz, time.time, signing_key=KEY).export(
        case.case_id, out, actor="fuzz", purpose="property test", shared=False
    )
    assert verify_package(out, KEY).authenticated
    return out


def _files(p: Path) -> list[str]:
    return sorted(f.relative_to(p).as_posix() for f in p.rglob("*") if f.is_file())


@st.composite
def mutations(draw: st.DrawFn, files: list[str]) -> tuple[str, str, object]:
    kind = draw(st.sampled_from(["flip", "truncate", "delete", "add", "symlink", "manifest"]))
    target = draw(st.sampled_from(files))
    if kind == "add":
        name = draw(st.sampled_from(["notes.txt", "original/x.mp4", "derived/.hidden", "a b.jpg"]))
        return kind, name, draw(st.binary(max_size=64))
    if kind == "manifest":
        field = draw(st.sampled_from(["path", "sha256", "size", "format", "signed", "extra"]))
        value = draw(st.sampled_from(["../x", "/etc/passwd", "", "0" * 64, -1, True, None,
                                      "report.json", "original", 1e9]))  # fmt: skip
        return kind, field, value
    return kind, target, draw(st.integers(0, 10**6))


def _apply(p: Path, m: tuple[str, str, object], outside: Path) -> None:
    kind, target, arg = m
    f = p / target
    if kind in ("flip", "truncate", "delete", "symlink") and not f.is_file():
        return  # deleted or replaced by an earlier change
    if kind == "flip":
        data = bytearray(f.read_bytes())
        limit = min(64, len(data)) if target == "manifest.sig" else len(data)  # hex digits
        if not limit:
            return
        i = int(str(arg)) % limit
        data[i] = {0x30: 0x31}.get(data[i], 0x30) if target == "manifest.sig" else data[i] ^ 0x5A
        f.write_bytes(bytes(data))
    elif kind == "truncate":
        whole = f.read_bytes()
        # the signature's trailing newline is not part of it: cut inside the hex digits
        keep = min(len(whole), 64) if target == "manifest.sig" else len(whole)
        f.write_bytes(whole[: int(str(arg)) % max(1, keep)])
    elif kind == "delete":
        f.unlink()
    elif kind == "add":
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(arg if isinstance(arg, bytes) else b"")
    elif kind == "symlink":
        f.unlink()
        f.symlink_to(outside)
    else:
        m_path = p / "manifest.json"
        try:
            manifest = json.loads(m_path.read_bytes())
            entries = manifest["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return  # already destroyed by an earlier change
        if target in ("format", "signed"):
            manifest[target] = arg
        elif target == "extra":
            entries.append({"path": arg, "size": 1, "sha256": "0" * 64})
        else:
            entries[0][target] = arg
        m_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2))


def _listed(p: Path) -> set[str]:
    try:
        return {str(e["path"]) for e in json.loads((p / "manifest.json").read_bytes())["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _state(p: Path) -> dict[str, bytes | str]:
    return {f.relative_to(p).as_posix(): ("symlink" if f.is_symlink() else f.read_bytes())
            for f in p.rglob("*") if f.is_file() or f.is_symlink()}  # fmt: skip


def test_every_change_is_named(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    files = _files(pristine)
    outside = tmp_path_factory.mktemp("outside") / "x"
    outside.write_bytes(b"outside the package")

    @given(st.lists(mutations(files), min_size=1, max_size=3))
    def check(ms: list[tuple[str, str, object]]) -> None:
        p = tmp_path_factory.mktemp("mut") / "package"
        shutil.copytree(pristine, p)
        before = _state(p)
        for m in ms:
            _apply(p, m, outside)
        after = _state(p)
        changed = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
        result = verify_package(p, KEY)
        if not changed:
            assert result.ok
            return
        assert not result.ok
        said = "\n".join(result.problems)
        if changed & {"manifest.json", "manifest.sig"}:
            assert "manifest" in said, said  # the manifest cannot vouch for the rest now
            if "manifest.json" in changed and "signature does not match" not in said:
                return  # unreadable: nothing else can be named
        listed = _listed(p)
        for f in changed - {"manifest.json", "manifest.sig"}:
            if f in after or f in listed or f in ("custody.jsonl", "report.json"):
                assert f in said, (f, said)
            # else: deleted, and its entry rewritten by the same hand; the signature names that

    check()
