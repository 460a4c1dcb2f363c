"""cameras.toml edited on disk while running: valid camera changes are applied live (only the
changed cameras), an invalid file changes nothing, other sections wait for a restart."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import tomlkit

from pipeline.config import CameraConfig, load_config
from pipeline.ops.watch import ConfigWatcher
from pipeline.types import CameraChanges
from tests.conftest import camera_dict


def _write(path: Path, raw: dict[str, object], bump: int) -> None:
    path.write_text(tomlkit.dumps(raw), encoding="utf-8")
    t = path.stat().st_mtime + bump  # a new mtime even within the file system's resolution
    os.utime(path, (t, t))


def test_camera_edits_apply_live_and_bad_files_change_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cameras.toml"
    raw: dict[str, object] = {"cameras": [camera_dict(id="cam1"), camera_dict(id="cam2")]}
    _write(path, raw, 0)
    applied: list[list[CameraConfig]] = []
    running = {c.id: c for c in load_config(path).cameras}

    def apply(cameras: list[CameraConfig]) -> CameraChanges:
        applied.append(cameras)
        changes = CameraChanges.between(dict(running), {c.id: c for c in cameras})
        running.clear()
        running.update({c.id: c for c in cameras})
        return changes

    watcher = ConfigWatcher(path, load_config(path), apply)
    assert watcher.check() is None and applied == []  # nothing changed yet

    moved = camera_dict(id="cam2")
    moved["zones"][0]["polygon"] = [[0.1, 0.5], [0.9, 0.5], [0.9, 0.95], [0.1, 0.95]]
    _write(path, {"cameras": [camera_dict(id="cam1"), moved]}, 2)
    changes = watcher.check()
    assert changes is not None and list(changes.updated) == ["cam2"] and not changes.added

    broken = camera_dict(id="cam2")
    broken["zones"][0]["polygon"] = [[0.1, 0.5], [2.0, 0.5], [0.9, 0.95]]  # outside 0-1
    _write(path, {"cameras": [camera_dict(id="cam1"), broken]}, 4)
    with caplog.at_level(logging.ERROR):
        assert watcher.check() is None
    assert len(applied) == 1 and "does not validate" in caplog.text
    assert running["cam2"].zones[0].polygon[0] == (0.1, 0.5)  # still the last good one

    _write(path, {"api": {"port": 8123}, "cameras": [camera_dict(id="cam1"), moved]}, 6)
    with caplog.at_level(logging.WARNING):
        changes = watcher.check()
    assert changes is not None and not (changes.added or changes.removed or changes.updated)
    assert "apply at the next restart" in caplog.text
