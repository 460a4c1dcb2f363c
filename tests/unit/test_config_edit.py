"""The zone editor's file side: validated like `gridsight check`, written atomically, every
comment and untouched line kept, nothing written when the change is refused."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.ops.config_edit import CameraFileEditor
from tests.conftest import REPO


@pytest.fixture
def editor(tmp_path: Path) -> CameraFileEditor:
    path = tmp_path / "cameras.toml"
    shutil.copy(REPO / "cameras.toml", path)
    return CameraFileEditor(path)


def test_save_changes_only_the_edited_lines(editor: CameraFileEditor) -> None:
    before = editor.path.read_text(encoding="utf-8")
    geo = editor.camera_geometry("demo_street")
    assert [z["id"] for z in geo["zones"]] == ["fire_lane_east", "pavement_west"]
    geo["zones"][0]["polygon"][0] = [0.3, 0.7]
    saved = editor.save("demo_street", geo)
    after = editor.path.read_text(encoding="utf-8")
    assert saved.changed_fields == ("zones",)
    assert saved.backup is not None and saved.backup.read_text(encoding="utf-8") == before
    diff = [
        line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]  # fmt: skip
    # the moved point; tomlkit also rewrites the untouched zone's 0.60 as 0.6 and drops one
    # blank line after the replaced tables
    assert "-  polygon = [[0.28, 0.72], [0.99, 0.66], [0.99, 0.99], [0.33, 0.99]]" in diff
    assert "+  polygon = [[0.3, 0.7], [0.99, 0.66], [0.99, 0.99], [0.33, 0.99]]" in diff
    assert len(diff) <= 5, diff
    assert "# Check it with:   gridsight check cameras.toml" in after
    assert saved.camera.zones[0].polygon[0] == (0.3, 0.7)
    # unchanged geometry: nothing written, no backup
    again = editor.save("demo_street", editor.camera_geometry("demo_street"))
    assert again.changed_fields == () and again.backup is None


def test_refused_change_names_the_field_and_writes_nothing(editor: CameraFileEditor) -> None:
    before = editor.path.read_bytes()
    crossing = {"id": "x", "kind": "walkway", "polygon": [[0, 0], [1, 1], [0, 1], [1, 0]]}
    geo = editor.camera_geometry("demo_street")
    with pytest.raises(ConfigError) as err:
        editor.save("demo_street", {"zones": [*geo["zones"], crossing]})
    (issue,) = err.value.issues
    assert issue.location == "camera 'demo_street' (cameras[0]) → zones[2].polygon"
    assert "edges must not cross" in issue.message
    # removing a zone a rule still names is caught as `gridsight check` would
    with pytest.raises(ConfigError) as err:
        editor.save("demo_street", {"zones": geo["zones"][1:]})
    assert "unknown zone 'fire_lane_east'" in err.value.issues[0].message
    with pytest.raises(ConfigError) as err:
        editor.save("no_such_cam", geo)
    assert err.value.issues[0].location == "camera 'no_such_cam'"
    with pytest.raises(ConfigError) as err:
        editor.save("demo_street", {"url": "rtsp://elsewhere/"})
    assert "not editable here" in err.value.issues[0].message
    assert editor.path.read_bytes() == before
    assert not editor.path.with_name("cameras.toml.bak").exists()


def test_facade_and_rim_round_trip(editor: CameraFileEditor) -> None:
    geo = editor.camera_geometry("demo_street")
    zones = [
        *geo["zones"],
        {"id": "bins", "kind": "bin_area", "polygon": [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]],
         "rim": [[0.1, 0.12], [0.2, 0.12]]},
        {"id": "wall", "kind": "facade", "polygon": [[0.4, 0.0], [0.9, 0.0], [0.9, 0.6], [0.4, 0.6]]},
    ]  # fmt: skip
    facade = {"id": "b3", "building": "3", "zone": "wall", "top_floor": 6, "columns": ["A", "B"],
              "corners": [[0.45, 0.02], [0.85, 0.02], [0.85, 0.55], [0.45, 0.55]]}  # fmt: skip
    saved = editor.save("demo_street", {"zones": zones, "facades": [facade]})
    assert set(saved.changed_fields) == {"zones", "facades"}
    cam = saved.camera
    assert cam.zones[2].rim == [(0.1, 0.12), (0.2, 0.12)]
    assert cam.facades[0].top_floor == 6 and cam.facades[0].columns == ["A", "B"]
    assert editor.camera_geometry("demo_street")["facades"][0]["building"] == "3"
    # a façade pointing at a zone that is not a façade zone is refused
    bad = facade | {"zone": "bins"}
    with pytest.raises(ConfigError):
        editor.validate("demo_street", {"zones": zones, "facades": [bad]})


def test_demo_gets_its_own_editable_copy(tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.ops.demo.run import demo_config

    path = demo_config(tmp_path, "rtsp://127.0.0.1:18554/street")
    cfg = load_config(path)
    assert cfg.cameras[0].url == "rtsp://127.0.0.1:18554/street"
    assert cfg.model.path == (REPO / "models" / "yolox_nano.onnx").resolve()
    # the plate reader's models too (the copy lives elsewhere; relative paths found nothing)
    for model in (cfg.model.plate_detector, cfg.model.plate_colour, cfg.model.bins_classifier):
        assert model.is_absolute() and model.parent == (REPO / "models").resolve()
    assert cfg.model.plate_detector.exists() and cfg.model.plate_colour.exists()
    editor = CameraFileEditor(path)
    geo = editor.camera_geometry("demo_street")
    geo["zones"][1]["name"] = "西侧人行道（改）"
    assert editor.save("demo_street", geo).changed_fields == ("zones",)
    assert "西侧人行道（改）" not in (REPO / "cameras.toml").read_text(encoding="utf-8")
