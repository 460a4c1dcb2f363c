from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import (
    check_runtime_requirements,
    load_config,
    parse_config,
    redact_url,
    resolve_url,
    validate_gb28181_id,
)
from pipeline.errors import ConfigError
from tests.conftest import REPO, camera_dict


def issues_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    return [str(i) for i in err.value.issues]


def test_bundled_cameras_toml_is_valid() -> None:
    cfg = load_config(REPO / "cameras.toml")
    assert [c.id for c in cfg.cameras] == ["demo_street"]
    assert cfg.model.path.is_absolute() and cfg.model.path.is_file()


def test_unknown_key_names_camera_and_field() -> None:
    cam = camera_dict(id="gate_east")
    cam["zones"][0]["colour"] = "red"
    (msg,) = issues_of({"cameras": [cam]})
    assert "camera 'gate_east'" in msg
    assert "zones[0].colour" in msg
    assert "Extra inputs are not permitted" in msg


def test_every_problem_is_reported_at_once() -> None:
    bad_poly = camera_dict(id="a")
    bad_poly["zones"][0]["polygon"] = [[0.1, 0.1], [1.4, 0.1], [0.5, 0.9]]
    bad_rule = camera_dict(id="b")
    bad_rule["rules"][0]["zones"] = ["nope"]
    bad_gb = camera_dict(id="c", gb28181_device_id="1234")
    msgs = issues_of({"cameras": [bad_poly, bad_rule, bad_gb]})
    assert len(msgs) == 3
    assert any("camera 'a'" in m and "outside 0-1" in m for m in msgs)
    assert any("camera 'b'" in m and "unknown zone 'nope'" in m for m in msgs)
    assert any("camera 'c'" in m and "20 digits" in m for m in msgs)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["zones"].append(dict(c["zones"][0])), "duplicate id 'lane'"),
        (
            lambda c: c["zones"][0].update(
                polygon=[[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
            ),
            "not simple",
        ),
        (lambda c: c["zones"][0].update(kind="walkway"), "no zone of kind fire_lane, no_parking"),
        (lambda c: c["rules"][0].update(min_dwell_s=-1), "greater than 0"),
        (lambda c: c["rules"][0].update(analyzer="lasers"), "does not match any of the expected"),
        (lambda c: c.update(url="rtsp://admin:hunter2@10.0.0.1/s"), "literal password"),
        (lambda c: c.update(url="http://10.0.0.1/s"), "unsupported scheme"),
        (lambda c: c.update(loop=True, url="rtsp://10.0.0.1/s"), "only files can loop"),
        (lambda c: c.update(id="Bad Id"), "should match pattern"),
        (lambda c: c.update(display_aspect="4/3"), "display_aspect: String should match"),
        (lambda c: c.update(display_aspect="9:1"), "'9:1' is not a picture shape"),
    ],
)
def test_camera_field_errors(mutate: Any, expected: str) -> None:
    cam = camera_dict()
    mutate(cam)
    msgs = issues_of({"cameras": [cam]})
    assert any(expected in m and "(cameras[0])" in m for m in msgs), msgs


def test_keyframe_decoding_is_refused_for_a_rule_that_follows_motion() -> None:
    """高空抛物 needs every frame: a camera forced to keyframes would be silently blind."""
    wall = {"id": "wall", "kind": "facade", "polygon": [[0.3, 0], [0.7, 0], [0.7, 1], [0.3, 1]]}
    facade = {"id": "b1", "building": "1", "zone": "wall", "top_floor": 6, "columns": ["A"],
              "corners": [[0.3, 0.1], [0.7, 0.1], [0.7, 0.9], [0.3, 0.9]]}  # fmt: skip
    cam = camera_dict(zones=[wall], facades=[facade], rules=[{"analyzer": "throwing"}])
    assert parse_config({"cameras": [cam | {"decode": "sampled"}]}).cameras[0].decode == "sampled"
    (msg,) = issues_of({"cameras": [cam | {"decode": "keyframes"}]})
    assert "(cameras[0])" in msg and "decode: 'keyframes'" in msg and "rules[0]" in msg
    parking = camera_dict(decode="keyframes")  # one frame a GOP is all parking needs
    assert parse_config({"cameras": [parking]}).cameras[0].decode == "keyframes"


def test_rule_zone_of_wrong_kind() -> None:
    cam = camera_dict()
    cam["zones"].append({"id": "walk", "kind": "walkway", "polygon": [[0, 0], [1, 0], [1, 1]]})
    cam["rules"][0]["zones"] = ["walk"]
    (msg,) = issues_of({"cameras": [cam]})
    assert "zone 'walk' is walkway" in msg


def test_duplicate_camera_ids() -> None:
    msgs = issues_of({"cameras": [camera_dict(), camera_dict()]})
    assert any("duplicate id 'cam1'" in m for m in msgs)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("34020000001320000101", True),
        ("33010601001320000017", True),
        ("3402000000132000010", False),  # 19 digits
        ("99020000001320000101", False),  # no province 99
        ("34020000001050000101", False),  # type code 050 < 111
        ("3402000000132000010a", False),
    ],
)
def test_gb28181_ids(value: str, ok: bool) -> None:
    if ok:
        assert validate_gb28181_id(value) == value
    else:
        with pytest.raises(ValueError):
            validate_gb28181_id(value)


def test_placeholders_resolved_from_env_and_never_shown() -> None:
    cfg = parse_config(
        {"cameras": [camera_dict(url="rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.9:554/s?token=x")]}
    )
    cam = cfg.cameras[0]
    url = resolve_url(cam, {"CAM_USER": "admin", "CAM_PASS": "s3cret"})
    assert url == "rtsp://admin:s3cret@10.0.0.9:554/s?token=x"
    assert cam.redacted_url == "rtsp://***@10.0.0.9:554/s"
    assert "s3cret" not in repr(cam) and "token" not in repr(cam)
    assert redact_url(url) == "rtsp://***@10.0.0.9:554/s"
    with pytest.raises(ConfigError) as err:
        resolve_url(cam, {"CAM_USER": "admin"})
    assert "camera 'cam1' → url" in str(err.value) and "CAM_PASS" in str(err.value)


def test_runtime_requirements_collect_missing_env_file_and_model(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "cameras": [
                camera_dict(id="a", url="rtsp://${NOPE_USER}:${NOPE_PASS}@h/s"),
                camera_dict(id="b", url=str(tmp_path / "missing.mp4")),
            ],
            "model": {"path": str(tmp_path / "none.onnx")},
        }
    )
    with pytest.raises(ConfigError) as err:
        check_runtime_requirements(cfg, env={})
    text = str(err.value)
    assert "camera 'a' → url" in text and "NOPE_USER" in text
    assert "camera 'b' → url" in text and "missing.mp4" in text
    assert "model.path" in text


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "cams.toml").write_text(
        '[evidence]\nroot = "out"\n[[cameras]]\nid = "x"\nname = "x"\nurl = "clip.mp4"\n'
    )
    cfg = load_config(tmp_path / "cams.toml")
    assert cfg.evidence.root == tmp_path / "out"
    assert cfg.cameras[0].url == str(tmp_path / "clip.mp4")


def test_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[cameras]\nid = 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "not valid TOML" in str(err.value)


def test_check_command_prints_all_errors_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "cams.toml"
    path.write_text(
        """
[[cameras]]
id = "gate_east"
name = "东门"
url = "rtsp://10.0.0.1/s"
gb28181_channel_id = "123"
  [[cameras.zones]]
  id = "z"
  kind = "fire_lane"
  polygon = [[0, 0], [2, 0], [1, 1]]
  [[cameras.rules]]
  analyzer = "illegal_parking"
  min_dwell_s = 0
"""
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.ops.cli", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 1
    err = proc.stderr
    assert "3 problem(s)" in err
    assert "camera 'gate_east' (cameras[0]) → gb28181_channel_id" in err
    assert "camera 'gate_east' (cameras[0]) → zones[0].polygon" in err
    assert "camera 'gate_east' (cameras[0]) → rules[0].min_dwell_s" in err


def test_check_command_accepts_bundled_config() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.ops.cli", "check", "cameras.toml"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo_street" in proc.stdout


def test_check_takes_the_config_as_every_other_command_does(tmp_path: Path) -> None:
    """`gridsight check --config X` (as run, replay, serve… take it) and `check X` are one
    command; two different files are refused rather than one silently checked."""
    for argv in (["check", "--config", "cameras.toml"], ["check", "cameras.toml"]):
        proc = subprocess.run([sys.executable, "-m", "pipeline.ops.cli", *argv],
                              capture_output=True, text=True, cwd=REPO)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "cameras.toml: OK" in proc.stdout
    other = tmp_path / "other.toml"
    other.write_text((REPO / "cameras.toml").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.ops.cli", "check", "cameras.toml", "--config", str(other)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "two configurations" in proc.stdout
