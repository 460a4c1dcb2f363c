"""Privacy masking on real face/plate images; evidence packages: export, verify, tamper."""

from __future__ import annotations

import hashlib
import json
import stat
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.casework.cases import CaseService
from pipeline.casework.package import Exporter, PackageError, verify_package
from pipeline.casework.privacy import PrivacyMasker
from pipeline.config import CasesConfig
from pipeline.evidence.report import EvidenceItem
from pipeline.evidence.storage import LocalStorage, atomic_write
from pipeline.ingest.media import encode_h264
from pipeline.ops.cli import main
from pipeline.rules.parking import ParkingDetails
from pipeline.store.repository import EventStore
from pipeline.types import Event, EventState, EventType
from tests.conftest import REPO
from tests.media import read_bgr

IMAGES = REPO.parent / "shared" / "models" / "images"
TZ = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.skipif(
    not (IMAGES / "bus.jpg").is_file(), reason="../shared/models/images not present"
)


@pytest.fixture(scope="module")
def masker() -> PrivacyMasker:
    return PrivacyMasker()


def _img(name: str) -> NDArray[np.uint8]:
    return read_bgr(IMAGES / name)


def test_faces_are_found_and_masked_beyond_detection(masker: PrivacyMasker) -> None:
    bus = _img("bus.jpg")
    faces = masker.faces(bus)
    assert len(faces) == 2 and all(f.score > 0.8 for f in faces)  # the two pedestrians
    masked = masker.mask(bus)
    assert masker.faces(masked) == []  # nothing recognisable is left to find
    assert np.array_equal(bus, _img("bus.jpg"))  # the original is untouched
    f = faces[0]
    before = bus[f.y1 : f.y2, f.x1 : f.x2].astype(float)
    after = masked[f.y1 : f.y2, f.x1 : f.x2].astype(float)
    assert after.std() < before.std()  # detail removed (mosaic)
    assert np.array_equal(masked[:50, :50], bus[:50, :50])  # the rest is left alone


def test_plates_are_found_and_masked(masker: PrivacyMasker) -> None:
    car = _img("hyperlpr_test_img.jpg")
    [plate] = masker.plates(car)
    assert abs(plate.x1 - 1752) < 25 and abs(plate.y1 - 747) < 25  # the green NEV plate
    masked = masker.mask(car)
    assert masker.plates(masked) == []
    assert masker.plates(_img("hyperlpr_1.jpg"))  # a double-layer yellow plate too
    no_plates = masker.mask(car, plates=False)  # enforcement copy: plate stays readable
    assert masker.plates(no_plates)


def _case_with_evidence(tmp: Path) -> tuple[EventStore, CaseService, str]:
    store = EventStore(tmp / "gridsight.db")
    (tmp / "ev").mkdir()
    bus = np.asarray(cv2.resize(_img("bus.jpg"), (554, 740))[:736, :552], np.uint8)
    frames = [np.roll(bus, k, axis=1) for k in range(12)]
    clip = encode_h264(tmp / "ev" / "clip.mp4", iter(frames), fps=6, gop=6)
    snap = tmp / "ev" / "alert.jpg"
    atomic_write(snap, cv2.imencode(".jpg", bus)[1].tobytes())
    # the viewer's copy an H.265 camera's clip gets (here of an H.264 one): never exported
    preview = tmp / "ev" / "clip-preview.mp4"
    preview.write_bytes(clip.read_bytes())
    items = []
    for name, path, kind, mt in (("clip", clip, "video_clip", "video/mp4"),
                                 ("clip_preview", preview, "video_clip", "video/mp4"),
                                 ("alert", snap, "annotated_image", "image/jpeg")):  # fmt: skip
        data = path.read_bytes()
        items.append(EvidenceItem(f"ev1-{name}", name, kind, "original", f"ev/{path.name}", mt,
                                  len(data), hashlib.sha256(data).hexdigest(), 0.0))  # fmt: skip
    details = ParkingDetails("fire_lane", "car", "motor", (0.6, 0.5, 0.9, 0.6),
                             (0.6, 0.5, 0.9, 0.6), 300, 300, 180, 0.8, 10, (1,))  # fmt: skip
    now = time.time()
    ev = Event("ev1", EventType.FIRE_LANE_OCCUPATION, EventState.STARTED, "cam1", "lane",
               "parking", now - 300, now, now, None, 0.8, details)  # fmt: skip
    report = {"report_id": "ev1", "detection": {
        "zone": {"polygon_norm": [[0.1, 0.6], [0.9, 0.6], [0.9, 0.95], [0.1, 0.95]]},
        "objects": [{"label": "car", "bbox_norm": [0.6, 0.5, 0.9, 0.6],
                     "plate": {"text": "苏ED51712", "confidence": 0.99}}]}}  # fmt: skip
    store.upsert_event(ev, "urgent", report, None, None, now, evidence=items)
    cases = CaseService(store, CasesConfig(), TZ, time.time)
    row = store.get_event("ev1")
    assert row is not None
    case = cases.on_event(row)
    assert case is not None
    return store, cases, case.case_id


def _faces_in_first_frame(masker: PrivacyMasker, clip: Path) -> int:
    with av.open(str(clip)) as c:
        frame = np.asarray(next(c.decode(video=0)).to_ndarray(format="bgr24"), np.uint8)
    return len(masker.faces(frame))


def test_export_verify_and_tamper(
    tmp_path: Path, masker: PrivacyMasker, capsys: pytest.CaptureFixture[str]
) -> None:
    store, cases, case_id = _case_with_evidence(tmp_path)
    key = b"site-signing-key"
    exp = Exporter(
        store, LocalStorage(tmp_path), cases, TZ, time.time, masker=masker, signing_key=key
    )
    full = exp.export(case_id, tmp_path / "pkg-full", actor="analyst1", purpose="交警移交",
                      shared=False)  # fmt: skip
    shared = exp.export(case_id, tmp_path / "pkg-shared", actor="analyst1", purpose="物业通报",
                        shared=True)  # fmt: skip
    # the original clip is byte-identical; the shared package has no originals, only masks
    orig = (tmp_path / "pkg-full" / "original" / "ev1-clip.mp4").read_bytes()
    assert orig == (tmp_path / "ev" / "clip.mp4").read_bytes()
    assert not (tmp_path / "pkg-shared" / "original").exists()
    assert shared.masked_regions >= 12 * 2  # two faces in each of 12 frames, at least
    # the plate read stays in the full package's report and is not spelled out in the shared one
    assert "苏ED51712" in (tmp_path / "pkg-full" / "report.json").read_text()
    shared_report = json.loads((tmp_path / "pkg-shared" / "report.json").read_text())
    assert shared_report["reports"][0]["detection"]["objects"][0]["plate"] == {"redacted": True}
    assert "苏ED51712" not in (tmp_path / "pkg-shared" / "report.json").read_text()
    assert (
        _faces_in_first_frame(masker, tmp_path / "pkg-full" / "derived" / "ev1-clip-annotated.mp4")
        == 2
    )
    assert (
        _faces_in_first_frame(
            masker, tmp_path / "pkg-shared" / "derived" / "ev1-clip-annotated.mp4"
        )
        == 0
    )
    masked_snap = read_bgr(tmp_path / "pkg-shared" / "derived" / "ev1-alert-masked.jpg")
    assert masker.faces(masked_snap) == []
    custody = [
        json.loads(x) for x in (tmp_path / "pkg-shared" / "custody.jsonl").read_text().splitlines()
    ]
    assert custody[-1] | {"at": None} == {"act": "exported", "actor": "analyst1",
                                          "purpose": "物业通报", "kind": "shared", "at": None}  # fmt: skip
    report = json.loads((tmp_path / "pkg-full" / "report.json").read_text())
    assert report["case"]["history"][0]["action"] == "detect"
    for pkg in ("pkg-full", "pkg-shared"):
        result = verify_package(tmp_path / pkg, key)
        assert result.ok and result.checked >= 4, result.problems
    assert full.files == 5  # original clip + snapshot, annotated clip, report, custody

    # tampering is named file by file
    p = tmp_path / "pkg-full"
    clip = p / "derived" / "ev1-clip-annotated.mp4"
    clip.write_bytes(clip.read_bytes()[:-1] + b"\x00")
    (p / "original" / "ev1-alert.jpg").unlink()
    (p / "notes.txt").write_text("added later")
    problems = verify_package(p, key).problems
    assert main(["verify", str(p)]) == 1  # the CLI (unsigned check) names the same files
    err = capsys.readouterr().err
    assert "derived/ev1-clip-annotated.mp4: altered" in err and "notes.txt" in err
    assert set(problems) == {
        "derived/ev1-clip-annotated.mp4: altered (sha256 differs from the manifest)",
        "original/ev1-alert.jpg: missing",
        "notes.txt: not in the manifest",
    }
    m = tmp_path / "pkg-shared" / "manifest.json"
    m.write_text(m.read_text().replace("物业通报", "something else"))
    assert verify_package(tmp_path / "pkg-shared", key).problems == (
        "manifest.json: signature does not match (manifest altered)",
    )


def test_export_refuses_evidence_altered_on_disk(tmp_path: Path, masker: PrivacyMasker) -> None:
    store, cases, case_id = _case_with_evidence(tmp_path)
    (tmp_path / "ev" / "alert.jpg").write_bytes(b"not the recorded picture")
    exp = Exporter(store, LocalStorage(tmp_path), cases, TZ, time.time, masker=masker)
    with pytest.raises(PackageError, match="altered on disk"):
        exp.export(case_id, tmp_path / "pkg", actor="a", purpose="p", shared=False)
    assert not (tmp_path / "pkg").exists()


# -- issue 23, findings 6 and 7 ---------------------------------------------------------------


def _with_after(tmp: Path, store: EventStore, case_id: str) -> Path:
    after = tmp / "cases" / case_id / "after-1.jpg"
    after.parent.mkdir(parents=True)
    _, digest = atomic_write(after, cv2.imencode(".jpg", _img("bus.jpg"))[1].tobytes())
    with store.transaction() as db:
        db.execute("UPDATE cases SET after_relpath = ?, after_sha256 = ? WHERE case_id = ?",
                   (f"cases/{case_id}/after-1.jpg", digest, case_id))  # fmt: skip
    return after


def test_6_after_picture_is_hash_checked_and_in_the_custody_log(
    tmp_path: Path, masker: PrivacyMasker
) -> None:
    store, cases, case_id = _case_with_evidence(tmp_path)
    after = _with_after(tmp_path, store, case_id)
    exp = Exporter(store, LocalStorage(tmp_path), cases, TZ, time.time, masker=masker)
    exp.export(case_id, tmp_path / "pkg", actor="a", purpose="p", shared=True)
    custody = [json.loads(x) for x in (tmp_path / "pkg" / "custody.jsonl").read_text().splitlines()]
    acts = {(c["act"], c["file"]) for c in custody if "file" in c}
    assert ("recorded", f"cases/{case_id}/after-1.jpg") in acts
    assert ("masked", "derived/after.jpg") in acts
    modes = {stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "pkg").rglob("*") if f.is_file()}
    assert modes == {0o640}  # finding 15: owner and group only, whatever the umask
    after.write_bytes(after.read_bytes()[:-10])  # altered after the re-check
    with pytest.raises(PackageError, match=r"after picture .* altered on disk"):
        exp.export(case_id, tmp_path / "pkg2", actor="a", purpose="p", shared=False)
    assert not (tmp_path / "pkg2").exists()


def _package(tmp: Path, files: dict[str, bytes], key: bytes | None = None,
             manifest: dict[str, object] | None = None) -> Path:  # fmt: skip
    """A package made by hand: the verifier must judge what it is given, not what we export.
    Every package has a custody log and a report; ``manifest`` lists whatever else it likes."""
    p = tmp / "pkg"
    p.mkdir()
    base = {"custody.jsonl": b"", "report.json": b"{}"}
    files = {**base, **files}
    entries = [{"path": rel, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
               for rel, d in files.items()]  # fmt: skip
    if manifest is not None:
        listed = {e["path"] for e in manifest["files"]}  # type: ignore[attr-defined]
        manifest = {
            **manifest,
            "files": [
                *manifest["files"],  # type: ignore[misc]
                *(e for e in entries if e["path"] not in listed),
            ],
        }
    for rel, data in files.items():
        (p / rel).parent.mkdir(parents=True, exist_ok=True)
        (p / rel).write_bytes(data)
    body = manifest or {"format": "gridsight.evidence-package/1", "signed": key is not None,
                        "files": entries}  # fmt: skip
    data = json.dumps(body).encode()
    (p / "manifest.json").write_bytes(data)
    if key is not None:
        import hmac

        (p / "manifest.sig").write_text(hmac.new(key, data, hashlib.sha256).hexdigest())
    return p


def test_7_verify_without_key_does_not_vouch_for_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRIDSIGHT_SIGNING_KEY", raising=False)
    p = _package(tmp_path, {}, key=b"k")
    m = p / "manifest.json"
    digest = hashlib.sha256(m.read_bytes()).hexdigest()
    assert main(["verify", str(p), "--manifest-sha256", digest]) == 0
    # rewritten together with its file: intact against itself, but not vouched for
    forged = b'{"x": 1}'
    (p / "report.json").write_bytes(forged)
    body = json.loads(m.read_bytes())
    body["files"] = [{"path": "custody.jsonl", "size": 0, "sha256": hashlib.sha256().hexdigest()},
                     {"path": "report.json", "size": len(forged),
                      "sha256": hashlib.sha256(forged).hexdigest()}]  # fmt: skip
    m.write_text(json.dumps(body))
    assert main(["verify", str(p)]) == 3
    assert "not authenticated" in capsys.readouterr().err
    assert main(["verify", str(p), "--manifest-sha256", digest]) == 1
    assert verify_package(p, b"k").problems == (
        "manifest.json: signature does not match (manifest altered)",
    )
    (p / "manifest.sig").unlink()  # the manifest says it was signed: noticed without the key
    assert "manifest.sig: missing, but the manifest says" in verify_package(p).problems[0]


def test_7_verify_refuses_paths_outside_and_symlinks(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.txt"
    secret.write_bytes(b"not part of any package")
    h = hashlib.sha256(secret.read_bytes()).hexdigest()
    key = b"k"
    p = _package(tmp_path, {}, key=key, manifest={
        "format": "gridsight.evidence-package/1", "signed": True,
        "files": [{"path": "../elsewhere.txt", "size": 23, "sha256": h},
                  {"path": str(secret), "size": 23, "sha256": h},
                  {"path": "report.json", "size": 2, "sha256": hashlib.sha256(b"{}").hexdigest()}]})  # fmt: skip
    problems = verify_package(p, key).problems
    assert any("'../elsewhere.txt': path leaves the package" in x for x in problems)
    assert any(f"{str(secret)!r}: path leaves the package" in x for x in problems)
    q = tmp_path / "q"
    q.mkdir()
    (q / "clip.mp4").symlink_to(secret)
    signed = _package(q, {}, key=key, manifest={
        "format": "gridsight.evidence-package/1", "signed": True,
        "files": [{"path": "clip.mp4", "size": 23, "sha256": h}]})  # fmt: skip
    (signed / "clip.mp4").symlink_to(secret)
    result = verify_package(signed, key)
    assert not result.ok and result.problems == (
        "clip.mp4: symlink or special file (not allowed in a package)",
    )


@pytest.mark.parametrize(
    "manifest",
    [b"[1, 2]", b'{"files": {"a": 1}}', b'{"files": [1]}', b'{"files": [{"path": "a"}]}',
     b'{"files": [{"path": 5, "sha256": "x"}]}', b"\xff\xfe not json", b'{"files": null}',
     b'{"files": [{"path": "a", "sha256": "' + b"0" * 64 + b'", "size": "big"}]}'],
)  # fmt: skip
def test_7_malformed_manifests_are_named_not_crashed_on(tmp_path: Path, manifest: bytes) -> None:
    p = tmp_path / "pkg"
    p.mkdir()
    (p / "manifest.json").write_bytes(manifest)
    result = verify_package(p, b"k")
    assert not result.ok and result.problems
    assert main(["verify", str(p)]) == 1
