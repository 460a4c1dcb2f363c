"""Edit one camera's geometry in ``cameras.toml`` (the web zone editor's back end).

The integrator draws zones, façade grids and bin rims in the browser; this module puts them into
the file the integrator also edits by hand. ``tomlkit`` keeps every comment, key order and the
formatting of everything not touched, so a UI save produces a small, reviewable diff.

A change is validated exactly as ``gridsight check`` validates the whole file (the whole
document is parsed again, so cross-references such as a rule naming a zone that the edit
removed are caught), and written atomically with the previous file kept as
``cameras.toml.bak``: a failed or rejected save leaves the file as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table
from tomlkit.toml_document import TOMLDocument

from pipeline.config import AppConfig, CameraConfig, parse_config
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.evidence.storage import atomic_write

# Fields of a camera the geometry editor may replace; everything else is the file's business.
GEOMETRY_FIELDS = ("zones", "facades")


@dataclass(frozen=True, slots=True)
class SavedEdit:
    config: AppConfig  # the whole file, validated, paths resolved
    camera: CameraConfig
    backup: Path | None
    changed_fields: tuple[str, ...]


class CameraFileEditor:
    """Serialises edits of one ``cameras.toml`` (the API may serve several editors at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> TOMLDocument:
        try:
            return tomlkit.parse(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                [ConfigIssue(str(self.path), f"cannot read: {exc.strerror}")]
            ) from None
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigError([ConfigIssue(str(self.path), f"not valid TOML: {exc}")]) from None

    def camera_geometry(self, camera_id: str) -> dict[str, Any]:
        """The camera's zones and façades as written in the file (relative coordinates)."""
        return _geometry(_camera_table(self.read(), camera_id))

    def validate(self, camera_id: str, geometry: Mapping[str, Any]) -> AppConfig:
        """The whole file with this camera's geometry replaced, validated; nothing written.

        Raises:
            ConfigError: every problem, located as ``camera 'id' → zones[1].polygon``.
        """
        doc = self.read()
        _replace_geometry(doc, camera_id, geometry)
        return parse_config(doc.unwrap(), base_dir=self.path.parent.resolve())

    def save(self, camera_id: str, geometry: Mapping[str, Any]) -> SavedEdit:
        """Validate, then atomically replace the file (previous version kept as ``.bak``)."""
        with self._lock:
            doc = self.read()
            before = _geometry(_camera_table(doc, camera_id))
            _replace_geometry(doc, camera_id, geometry)
            cfg = parse_config(doc.unwrap(), base_dir=self.path.parent.resolve())
            camera = next(c for c in cfg.cameras if c.id == camera_id)
            after = _geometry(_camera_table(doc, camera_id))
            changed = tuple(f for f in GEOMETRY_FIELDS if before[f] != after[f])
            if not changed:
                return SavedEdit(cfg, camera, None, ())
            backup = self.path.with_name(self.path.name + ".bak")
            atomic_write(backup, self.path.read_bytes())
            atomic_write(self.path, tomlkit.dumps(doc).encode("utf-8"))
            return SavedEdit(cfg, camera, backup, changed)


def _camera_table(doc: TOMLDocument, camera_id: str) -> Table:
    cams = doc.get("cameras")
    if isinstance(cams, AoT | list):
        for table in cams:
            if isinstance(table, Table) and table.get("id") == camera_id:
                return table
    raise ConfigError([ConfigIssue(f"camera {camera_id!r}", "no such camera in the file")])


def _geometry(table: Table) -> dict[str, Any]:
    return {f: _plain(table.get(f, [])) for f in GEOMETRY_FIELDS}


def _replace_geometry(doc: TOMLDocument, camera_id: str, geometry: Mapping[str, Any]) -> None:
    unknown = sorted(set(geometry) - set(GEOMETRY_FIELDS))
    if unknown:
        raise ConfigError(
            [
                ConfigIssue(
                    f"camera {camera_id!r} → {k}",
                    f"not editable here (only {', '.join(GEOMETRY_FIELDS)})",
                )
                for k in unknown
            ]
        )
    table = _camera_table(doc, camera_id)
    for key in GEOMETRY_FIELDS:
        if key not in geometry:
            continue
        items = geometry[key]
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise ConfigError([ConfigIssue(f"camera {camera_id!r} → {key}", "must be a list")])
        if not items:
            if key in table:
                del table[key]
            continue
        aot = tomlkit.aot()
        for item in items:
            if not isinstance(item, Mapping):
                raise ConfigError(
                    [ConfigIssue(f"camera {camera_id!r} → {key}", "entries must be tables")]
                )
            t = tomlkit.table()
            for k, v in item.items():
                if v is not None:
                    t.add(k, _toml_value(v))
            t.indent(2)  # the style of the bundled file: nested tables indented
            aot.append(t)
        table[key] = aot


def _toml_value(v: Any) -> Any:
    # points as inline arrays of [x, y], rounded: 4 decimals is 0.2 px on a 1920-px frame
    if isinstance(v, list | tuple):
        arr = tomlkit.array()
        arr.extend(_toml_value(x) for x in v)
        return arr
    if isinstance(v, float):
        return round(v, 4)
    return v


def _plain(v: Any) -> Any:
    return v.unwrap() if hasattr(v, "unwrap") else v
