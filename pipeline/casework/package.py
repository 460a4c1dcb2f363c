"""Evidence packages: export a case with hashes and a custody log; verify one later.

A package is a directory (zipped by whoever transfers it) with

* ``original/`` — the evidence clip and snapshots byte for byte as recorded (``full`` only;
  their SHA-256 is checked against the store before copying, so an altered file on disk is
  refused rather than packaged),
* ``derived/annotated.mp4`` — the clip re-encoded with the event's geometry (zone, boxes,
  blocked area, 高空抛物 trajectory) drawn in; in ``shared`` packages faces and plates are
  pixelated in every frame and in every snapshot (``pipeline.casework.privacy``),
* ``report.json`` — the case (with its full lifecycle history) and the reports of its events,
* ``custody.jsonl`` — one line per custody act (recorded, derived, masked, exported) with
  actor, time, purpose, and hashes,
* ``manifest.json`` — every other file with size and SHA-256, plus who exported it and why;
  with a signing key, ``manifest.sig`` is an HMAC-SHA256 of the manifest bytes.

``verify_package`` recomputes every hash and names each altered, missing or unlisted file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.casework.cases import Case, CaseService, case_json
from pipeline.casework.privacy import PrivacyMasker, redact_plate_text
from pipeline.errors import PipelineError
from pipeline.evidence.labels import iso
from pipeline.evidence.storage import (
    EvidenceStorage,
    StorageError,
    check_relpath,
    copy_to,
    hash_file,
)
from pipeline.evidence.writer import PREVIEW
from pipeline.ingest.display import StreamDisplay
from pipeline.ingest.media import encode_h264
from pipeline.store.repository import EventStore

PACKAGE_FORMAT = "gridsight.evidence-package/1"
_PLATE_TYPES = ("illegal_parking_motor", "illegal_parking_non_motor", "fire_lane_occupation")


class PackageError(PipelineError):
    pass


def sha256_file(path: Path) -> str:
    return hash_file(path)[1]


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    manifest_sha256: str
    files: int
    masked_regions: int


def _overlay(report: dict[str, Any]) -> Callable[[NDArray[np.uint8]], None]:
    """Draws the event's geometry (from the report, all coordinates normalised)."""
    det = report.get("detection", {})
    polys: list[tuple[list[list[float]], tuple[int, int, int]]] = []
    if zone := det.get("zone"):
        polys.append((zone["polygon_norm"], (0, 215, 255)))
    for key in ("footprint", "changed"):
        polys.extend(
            (poly, (60, 20, 220)) for poly in (det.get(key) or {}).get("polygons_norm", [])
        )
    boxes = [o["bbox_norm"] for o in det.get("objects", []) if "bbox_norm" in o]
    track = [(p["x_norm"], p["y_norm"]) for p in det.get("trajectory", [])]

    def draw(img: NDArray[np.uint8]) -> None:
        h, w = img.shape[:2]
        thick = max(1, round(w / 640))
        for poly, color in polys:
            pts = np.array([[x * w, y * h] for x, y in poly], np.int32)
            cv2.polylines(img, [pts], True, color, thick)
        for b in boxes:
            cv2.rectangle(img, (int(b[0] * w), int(b[1] * h)), (int(b[2] * w), int(b[3] * h)),
                          (0, 0, 255), thick)  # fmt: skip
        if len(track) > 1:
            pts = np.array([[x * w, y * h] for x, y in track], np.int32)
            cv2.polylines(img, [pts], False, (0, 0, 255), thick)

    return draw


def _frames(clip: Path) -> tuple[Iterator[NDArray[np.uint8]], Fraction]:
    container = av.open(str(clip))
    stream = container.streams.video[0]
    fps = stream.average_rate or Fraction(25)

    def gen() -> Iterator[NDArray[np.uint8]]:
        shown = StreamDisplay(stream)
        try:
            for frame in container.decode(stream):
                yield shown(frame).bgr(frame)  # as the overlays were drawn
        finally:
            container.close()

    return gen(), Fraction(fps)


class Exporter:
    def __init__(
        self,
        store: EventStore,
        storage: EvidenceStorage,
        cases: CaseService,
        tz: ZoneInfo,
        clock: Callable[[], float],
        *,
        masker: PrivacyMasker | None = None,
        signing_key: bytes | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.cases = cases
        self.tz = tz
        self.clock = clock
        self._masker = masker
        self.signing_key = signing_key

    @property
    def masker(self) -> PrivacyMasker:
        if self._masker is None:  # loaded on first shared export only
            self._masker = PrivacyMasker()
        return self._masker

    def export(
        self,
        case_id: str,
        out: Path,
        *,
        actor: str,
        purpose: str,
        shared: bool,
        keep_plates: bool = False,
    ) -> ExportResult:
        """Write the package directory ``out`` (must not exist).

        ``keep_plates``: a shared copy for an enforcement recipient of a parking case (交警,
        城管) keeps plates readable; faces are masked regardless.
        """
        if not purpose.strip():
            raise PackageError("an export needs a purpose (recorded in the custody log)")
        case = self.cases.get(case_id)
        if keep_plates and case.event_type not in _PLATE_TYPES:
            raise PackageError(f"plates stay masked for {case.event_type} cases")
        if out.exists():
            raise PackageError(f"{out} already exists")
        tmp = out.with_name(f".{out.name}.partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        fetched = out.with_name(f".{out.name}.fetch")  # copies of files not on a local disk
        try:
            return self._export(case, out, tmp, fetched, actor, purpose, shared, keep_plates)
        finally:
            shutil.rmtree(fetched, ignore_errors=True)

    def _local(self, rel: str, fetched: Path) -> Path | None:
        """A local file of stored evidence, fetched from an object store if need be."""
        path = self.storage.local_path(rel)
        if path is not None:
            return path
        dst = fetched / check_relpath(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:  # one request: a missing object fails the read itself
            copy_to(self.storage, rel, dst)
        except StorageError:
            dst.unlink(missing_ok=True)
            return None
        return dst

    def _export(
        self, case: Case, out: Path, tmp: Path, fetched: Path, actor: str, purpose: str,
        shared: bool, keep_plates: bool,
    ) -> ExportResult:  # fmt: skip
        case_id = case.case_id
        (tmp / "derived").mkdir(parents=True)
        now = self.clock()
        custody: list[dict[str, Any]] = []
        reports = []
        masked = 0
        plates = not keep_plates
        for event_id in self.cases.events_of(case_id):
            row = self.store.get_event(event_id)
            if row is None:
                continue
            # plates masked in the pictures are not spelled out in the text either
            reports.append(redact_plate_text(row.report) if shared and plates else row.report)
            for name, rel, digest in self.store.evidence_for(event_id):
                if name == PREVIEW:
                    continue  # the viewer's H.264 copy: the package re-encodes the clip itself
                src = self._local(rel, fetched)
                if src is None:
                    raise PackageError(
                        f"evidence {event_id}/{name} missing in {self.storage.describe()} ({rel})"
                    )
                actual = sha256_file(src)
                if actual != digest:
                    raise PackageError(
                        f"evidence {event_id}/{name} altered on disk: sha256 {actual} ≠ "
                        f"recorded {digest}; not exported"
                    )
                custody.append({"act": "recorded", "file": rel, "sha256": digest,
                                "event_id": event_id})  # fmt: skip
                stem = f"{event_id}-{name}"
                if not shared:
                    dst = tmp / "original" / f"{stem}{src.suffix}"
                    dst.parent.mkdir(exist_ok=True)
                    shutil.copyfile(src, dst)
                if name == "clip":
                    dst = tmp / "derived" / f"{stem}-annotated.mp4"
                    masked += self._annotated(src, dst, row.report, shared, plates)
                    custody.append({"act": "derived", "file": _rel(tmp, dst), "from": rel,
                                    "how": "re-encoded with event geometry drawn"
                                    + ("; faces/plates pixelated" if shared else "")})  # fmt: skip
                elif shared and src.suffix == ".jpg":
                    img = _read(src)
                    regions = self.masker.find(img, plates=plates)
                    masked += len(regions)
                    dst = tmp / "derived" / f"{stem}-masked.jpg"
                    cv2.imwrite(str(dst), PrivacyMasker.apply(img, regions))
                    custody.append({"act": "masked", "file": _rel(tmp, dst), "from": rel,
                                    "regions": len(regions)})  # fmt: skip
        if case.after_relpath:
            masked += self._after(case, tmp, fetched, shared, plates, custody)
        report = {
            "case": case_json(case, self.cases.history(case_id), self.tz)
            | {"camera_id": case.camera_id, "zone_id": case.zone_id,
               "event_type": case.event_type},
            "reports": reports,
        }  # fmt: skip
        (tmp / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
        custody.append({"act": "exported", "actor": actor, "purpose": purpose,
                        "kind": "shared" if shared else "full"})  # fmt: skip
        for entry in custody:
            entry.setdefault("at", iso(now, self.tz))
        (tmp / "custody.jsonl").write_text(
            "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in custody)
        )
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {
            "format": PACKAGE_FORMAT,
            "case_id": case_id,
            "kind": "shared" if shared else "full",
            "created_at": iso(now, self.tz),
            "created_by": actor,
            "purpose": purpose,
            # lets ``verify`` without the key notice a deleted manifest.sig
            "signed": bool(self.signing_key),
            "files": [
                {
                    "path": _rel(tmp, p),
                    "size": p.stat().st_size,
                    "sha256": sha256_file(p),
                    "role": p.relative_to(tmp).parts[0]
                    if len(p.relative_to(tmp).parts) > 1
                    else "metadata",
                }
                for p in files
            ],
        }
        data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
        (tmp / "manifest.json").write_bytes(data)
        if self.signing_key:
            sig = hmac.new(self.signing_key, data, hashlib.sha256).hexdigest()
            (tmp / "manifest.sig").write_text(sig + "\n")
        _restrict(tmp)
        tmp.rename(out)
        return ExportResult(out, hashlib.sha256(data).hexdigest(), len(files), masked)

    def _after(
        self, case: Case, tmp: Path, fetched: Path, shared: bool, plates: bool,
        custody: list[dict[str, Any]],
    ) -> int:  # fmt: skip
        """The re-check picture, checked against its recorded hash like every other file."""
        rel = str(case.after_relpath)
        src = self._local(rel, fetched)
        if src is None:
            raise PackageError(f"after picture of {case.case_id} missing in "
                               f"{self.storage.describe()} ({rel})")  # fmt: skip
        actual = sha256_file(src)
        if case.after_sha256 is None or actual != case.after_sha256:
            raise PackageError(
                f"after picture of {case.case_id} altered on disk: sha256 {actual} ≠ recorded "
                f"{case.after_sha256}; not exported"
            )
        custody.append({"act": "recorded", "file": rel, "sha256": actual,
                        "case_id": case.case_id, "what": "after picture (自动核查)"})  # fmt: skip
        dst = tmp / ("derived" if shared else "original") / "after.jpg"
        dst.parent.mkdir(exist_ok=True)
        if not shared:
            shutil.copyfile(src, dst)
            return 0
        img = _read(src)
        regions = self.masker.find(img, plates=plates)
        cv2.imwrite(str(dst), PrivacyMasker.apply(img, regions))
        custody.append({"act": "masked", "file": _rel(tmp, dst), "from": rel,
                        "regions": len(regions)})  # fmt: skip
        return len(regions)

    def _annotated(
        self, clip: Path, dst: Path, report: dict[str, Any], shared: bool, plates: bool
    ) -> int:
        frames, fps = _frames(clip)
        draw = _overlay(report)
        count = 0

        def gen() -> Iterator[NDArray[np.uint8]]:
            nonlocal count
            for img in frames:
                if shared:
                    regions = self.masker.find(img, plates=plates)
                    count += len(regions)
                    img = PrivacyMasker.apply(img, regions)
                else:
                    img = img.copy()
                draw(img)
                yield img

        encode_h264(dst, gen(), fps=fps, gop=max(1, round(float(fps) * 2)), crf=23)
        return count


def _read(path: Path) -> NDArray[np.uint8]:
    img = cv2.imread(str(path))
    if img is None:
        raise PackageError(f"cannot read image {path}")
    return np.asarray(img, np.uint8)


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def _restrict(root: Path) -> None:
    """A package shows residents' faces (full) or at least their street: owner and group only,
    whatever the process umask."""
    root.chmod(0o750)
    for p in root.rglob("*"):
        p.chmod(0o750 if p.is_dir() else 0o640)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool  # every listed file present and intact, nothing unlisted, manifest well formed
    problems: tuple[str, ...]
    checked: int
    # how the manifest itself was authenticated: "signature" (HMAC key), "manifest_sha256"
    # (the hash recorded at export, e.g. in the audit log), or "unchecked"
    authenticity: str = "unchecked"
    warnings: tuple[str, ...] = ()

    @property
    def authenticated(self) -> bool:
        return self.ok and self.authenticity != "unchecked"


_SIG = "manifest.sig"
_MANIFEST = "manifest.json"
_HEX64 = frozenset("0123456789abcdef")
_REQUIRED = ("custody.jsonl", "report.json")


def _entry_problem(e: object, i: int) -> str | None:
    """Why manifest entry ``i`` is malformed or points outside the package, or None."""
    if not isinstance(e, dict):
        return f"manifest.json: files[{i}] is not an object"
    path, digest, size = e.get("path"), e.get("sha256"), e.get("size")
    if not isinstance(path, str) or not path:
        return f"manifest.json: files[{i}].path is not a non-empty string"
    parts = path.split("/")
    if (path.startswith("/") or "\\" in path or ":" in parts[0]
            or any(p in ("", ".", "..") for p in parts)):  # fmt: skip
        return f"{path!r}: path leaves the package or is not a plain relative path"
    if path in (_MANIFEST, _SIG):
        return f"{path!r}: the manifest cannot list itself or its signature"
    if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX64:
        return f"{path}: manifest sha256 is not 64 lowercase hex digits"
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        return f"{path}: manifest size is not a whole number of bytes"
    return None


def _walk(root: Path) -> tuple[list[str], list[str]]:
    """(regular files, symlinks and other non-regular entries) as package-relative paths;
    symlinks are reported, never followed."""
    files: list[str] = []
    odd: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            p = base / name
            rel = _rel(root, p)
            if p.is_symlink():
                odd.append(rel)
            elif name in filenames:
                (files if p.is_file() else odd).append(rel)
        dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]
    return files, odd


def verify_package(
    path: Path, signing_key: bytes | None = None, manifest_sha256: str | None = None
) -> VerifyResult:
    """Recompute every hash; name altered, missing, unlisted, out-of-package and symlinked
    files; check the manifest's signature (with the key) or its recorded hash.

    Without either, the files are checked against the manifest but the manifest itself is
    not authenticated: someone who rewrote both would pass, so ``authenticity`` says so."""
    if not path.is_dir() or path.is_symlink():
        return VerifyResult(False, (f"{path}: not a package directory",), 0)
    manifest_path = path / _MANIFEST
    if manifest_path.is_symlink() or not manifest_path.is_file():
        return VerifyResult(False, (f"{manifest_path}: no manifest (or not a regular file)",), 0)
    data = manifest_path.read_bytes()
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        return VerifyResult(False, (f"manifest.json unreadable: {exc}",), 0)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return VerifyResult(False, ("manifest.json: no list of files",), 0)
    problems: list[str] = []
    warnings: list[str] = []
    if manifest.get("format") != PACKAGE_FORMAT:
        problems.append(f"manifest.json: format {manifest.get('format')!r} is not "
                        f"{PACKAGE_FORMAT!r}")  # fmt: skip
    authenticity = "unchecked"
    sig_path = path / _SIG
    has_sig = sig_path.is_file() and not sig_path.is_symlink()
    claims = manifest.get("signed")
    if claims is True and not has_sig:
        problems.append("manifest.sig: missing, but the manifest says the package was signed")
    elif claims is False and has_sig:
        problems.append("manifest.sig: present, but the manifest says the package was unsigned")
    if signing_key is not None:
        want = hmac.new(signing_key, data, hashlib.sha256).hexdigest()
        if not has_sig:
            problems.append("manifest.sig: missing (package was not signed)")
        elif not hmac.compare_digest(sig_path.read_bytes().strip(), want.encode()):
            problems.append("manifest.json: signature does not match (manifest altered)")
        else:
            authenticity = "signature"
    if manifest_sha256 is not None:
        if hashlib.sha256(data).hexdigest() != manifest_sha256.strip().lower():
            problems.append("manifest.json: sha256 differs from the one recorded at export")
        elif authenticity == "unchecked":
            authenticity = "manifest_sha256"
    if authenticity == "unchecked":
        warnings.append(
            "the manifest itself is not authenticated (no signing key, no recorded manifest "
            "sha256): a package rewritten together with its manifest would pass"
        )
    files, odd = _walk(path)
    problems.extend(f"{rel}: symlink or special file (not allowed in a package)" for rel in odd)
    on_disk = set(files)
    listed: set[str] = set()
    entries: list[dict[str, Any]] = manifest["files"]
    for i, e in enumerate(entries):
        bad = _entry_problem(e, i)
        if bad is not None:
            problems.append(bad)
            continue
        rel = str(e["path"])
        if rel in listed:
            problems.append(f"{rel}: listed twice")
            continue
        listed.add(rel)
        if rel not in on_disk:
            if rel not in odd:
                problems.append(f"{rel}: missing")
            continue
        size, digest = hash_file(path / rel)
        if digest != e["sha256"]:
            problems.append(f"{rel}: altered (sha256 differs from the manifest)")
        elif e.get("size") is not None and size != e["size"]:
            problems.append(f"{rel}: size {size} differs from the manifest's {e['size']}")
    problems.extend(f"{rel}: not in the manifest" for rel in sorted(on_disk - listed)
                    if rel not in (_MANIFEST, _SIG))  # fmt: skip
    problems.extend(f"{rel}: not listed, but every package has one" for rel in _REQUIRED
                    if rel not in listed)  # fmt: skip
    return VerifyResult(not problems, tuple(problems), len(entries), authenticity,
                        tuple(warnings))  # fmt: skip
