"""Evidence retention: delete media of finished cases after their type's retention period.

Evidence of an open case is never deleted, whatever its age. Media of a case go
``RetentionConfig.by_type[event_type]`` (else ``default_days``) days after the case was closed
or rejected; detections that never became cases (camera outages) go that long after they
ended. The event rows and reports stay (they are small and are the record that something was
there); each deletion is written to the audit log with the hashes of what was deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import RESERVED_DIRS, RetentionConfig
from pipeline.evidence.storage import EvidenceStorage, hash_file
from pipeline.store import retention as rows
from pipeline.store.repository import EventStore


@dataclass(frozen=True, slots=True)
class Expired:
    event_id: str
    event_type: str
    case_id: str | None
    files: tuple[tuple[str, str], ...]  # (relpath, sha256)
    since: float = 0.0  # when its retention started (case closed, or event ended)


def finished(store: EventStore) -> list[tuple[str, str, str | None, float]]:
    """(event, type, case, since) of every event whose media may go at all: its case is
    closed or rejected, or it never had one; oldest first. Open cases are never listed."""
    out: list[tuple[str, str, str | None, float]] = []
    for event_id, etype, case_id, state, closed_at, last in rows.unpurged_events(store):
        if case_id is not None:
            if state not in ("closed", "rejected") or closed_at is None:
                continue  # open case: its evidence stays
            out.append((event_id, etype, case_id, float(closed_at)))
        else:
            out.append((event_id, etype, None, last))
    return sorted(out, key=lambda e: (e[3], e[0]))


def expired(store: EventStore, policy: RetentionConfig, now: float) -> list[Expired]:
    return [
        Expired(event_id, etype, case_id, rows.evidence_files(store, event_id), since)
        for event_id, etype, case_id, since in finished(store)
        if since + policy.by_type.get(etype, policy.default_days) * 86400.0 <= now
    ]


@dataclass(frozen=True, slots=True)
class RetentionRun:
    expired_events: int
    pressure_events: int  # purged early because the disk was short of space
    files: int


class RetentionJob:
    """Retention inside ``gridsight run`` (the case worker calls it): the policy every
    ``run_every_min``, and, when ``min_free_gb`` is set and the evidence volume has less free
    space, the oldest finished cases' media early until it has (exempt types excepted)."""

    def __init__(
        self, store: EventStore, storage: EvidenceStorage, policy: RetentionConfig,
        free_bytes: Callable[[], int | None],
    ) -> None:  # fmt: skip
        self.store = store
        self.storage = storage
        self.policy = policy
        self.free_bytes = free_bytes  # None: cannot tell (object storage)
        self._next = 0.0

    def due(self, now: float) -> bool:
        return self.policy.run_every_min > 0 and now >= self._next

    def run(self, now: float) -> RetentionRun:
        self._next = now + self.policy.run_every_min * 60.0
        items = expired(self.store, self.policy, now)
        files = purge(self.store, self.storage, items, now)
        early = 0
        if self.policy.min_free_gb is not None:
            want = self.policy.min_free_gb * 1e9
            exempt = set(self.policy.pressure_exempt)
            for event_id, etype, case_id, since in finished(self.store):
                free = self.free_bytes()
                if free is None or free >= want:
                    break
                if etype in exempt:
                    continue
                item = Expired(event_id, etype, case_id, rows.evidence_files(self.store, event_id),
                               since)  # fmt: skip
                files += purge(self.store, self.storage, [item], now, reason="disk_pressure")
                early += 1
        return RetentionRun(len(items), early, files)


def purge(
    store: EventStore, storage: EvidenceStorage, items: list[Expired], now: float,
    reason: str = "retention_period",
) -> int:  # fmt: skip
    """Delete the files of ``items``; mark the events purged and audit each. Returns files."""
    deleted = 0
    for item in items:
        for rel, _ in item.files:
            deleted += storage.delete(rel)
        rows.mark_purged(store, item.event_id, now, {"case_id": item.case_id, "files": item.files,
                                                     "reason": reason})  # fmt: skip
    return deleted


def sweep_unindexed(store: EventStore, root: Path, camera_ids: Sequence[str], now: float) -> int:
    """Delete files under ``root/<camera>/`` that no event indexes: clips and snapshots (and
    their ``.tmp`` partials) written by a process killed before it committed their rows.

    Nothing can ever find, serve or expire such a file, yet it shows the scene; each deletion
    is audited with its hash. Call before this process writes for these cameras: a camera's
    directory has one writer, the process that runs the camera. Returns the files deleted.
    """
    deleted = 0
    for camera_id in camera_ids:
        base = root / camera_id
        if camera_id in RESERVED_DIRS or not base.is_dir():
            continue
        indexed = rows.indexed_files(store, camera_id)
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_dir() or rel in indexed:
                continue
            digest = hash_file(path)[1] if path.is_file() and not path.is_symlink() else None
            path.unlink()
            deleted += 1
            detail = {"sha256": digest, "reason": "not indexed (left by a killed run)"}
            rows.audit_sweep(store, now, rel, detail)
    return deleted
