"""Issue 23, findings 9, 10, 12, 13: dangerous or malformed values in cameras.toml are refused
with an error naming the field, and ``gridsight check`` never shows a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.config import parse_config
from pipeline.errors import ConfigError
from pipeline.ops.cli import main
from tests.conftest import camera_dict


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    return "\n".join(f"{i.location}: {i.message}" for i in exc.value.issues)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"retention": {"by_type": {"high_altitude_throwing": -5}}}, "high_altitude_throwing"),
        ({"retention": {"by_type": {"bin_overflow": float("nan")}}}, "bin_overflow"),
        ({"retention": {"default_days": 0}}, "default_days"),
        ({"cases": {"sla": [{"event_type": "*", "respond_min": 1e12}]}}, "respond_min"),
        ({"cases": {"sla": [{"event_type": "*", "review_min": float("inf")}]}}, "review_min"),
        ({"ingest": {"open_timeout_s": float("inf")}}, "open_timeout_s"),
        ({"cameras": [camera_dict(rules=[{"analyzer": "illegal_parking",
                                          "min_dwell_s": float("inf")}])]}, "min_dwell_s"),
        ({"cameras": [camera_dict(rules=[{"analyzer": "illegal_parking",
                                          "cooldown_s": float("inf")}])]}, "cooldown_s"),
    ],
)  # fmt: skip
def test_9_unbounded_and_non_finite_values_are_refused(raw: dict[str, Any], field: str) -> None:
    assert field in problems(raw)


def test_12_only_ascii_digits_are_digits() -> None:
    text = problems({"site": {"community_code": "１２３４５６７８９０１２"}})
    assert "community_code" in text
    dev = "３３０１０６" + "0" * 14
    assert "gb28181_device_id" in problems({"cameras": [camera_dict(gb28181_device_id=dev)]})


def test_13_no_literal_credentials_in_urls() -> None:
    text = problems({"cameras": [camera_dict(url="rtsp://10.0.0.2/live?user=a&password=hunter2")]})
    assert "url" in text and "'password'" in text
    ok = parse_config({"cameras": [camera_dict(url="rtsp://10.0.0.2/live?password=${CAM_PW}")]})
    assert ok.cameras[0].url.endswith("${CAM_PW}")
    for url in ("https://u:p@platform.example/cb", "https://platform.example/cb?token=abc"):
        sub = {"id": "grid", "url": url, "secret_env": "GRID_SECRET"}
        assert "url" in problems({"subscribers": [sub]}), url


def test_a_camera_cannot_take_a_directory_of_the_evidence_root() -> None:
    assert "reserved" in problems({"cameras": [camera_dict(id="exports")]})


def test_10_check_never_shows_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_tz = tmp_path / "tz.toml"
    long_tz.write_text(f'[site]\ntimezone = "{"A" * 300}"\n', encoding="utf-8")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[site]\nname = "社区"\n'.encode("gb18030"))
    surrogate = tmp_path / "s.toml"
    surrogate.write_text('[site]\nname = "\\ud800"\n', encoding="utf-8")  # TOML refuses it
    for path, says in ((long_tz, "time zone"), (latin, "not UTF-8"), (surrogate, "TOML")):
        assert main(["check", "--no-env", str(path)]) == 1
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
