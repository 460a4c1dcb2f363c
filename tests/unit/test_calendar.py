"""China's official calendar into [cases.calendar]: weekday holidays and worked weekend days
of a year, merged into cameras.toml; a year the package does not know is a clear error."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.ops.cli import main

pytest.importorskip("chinese_calendar")


def test_a_year_is_merged_and_other_years_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text(
        "# the integrator's notes stay\n[cases.calendar]\nholidays = [2020-01-01]\n",
        encoding="utf-8",
    )
    assert main(["calendar", "2026", "--config", str(path)]) == 0
    cal = load_config(path).cases.calendar
    assert date(2020, 1, 1) in cal.holidays  # another year's date kept
    assert date(2026, 10, 1) in cal.holidays  # 国庆节, a Thursday
    assert date(2026, 10, 10) in cal.extra_workdays  # 调休: Saturday worked
    assert date(2026, 10, 3) not in cal.holidays  # a Saturday: not worked anyway
    assert all(d.weekday() >= 5 for d in cal.extra_workdays)
    assert path.read_text(encoding="utf-8").startswith("# the integrator's notes stay")
    assert (tmp_path / "cameras.toml.bak").is_file()
    assert "调休" in capsys.readouterr().out


def test_an_unpublished_year_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cameras.toml"
    path.write_text("", encoding="utf-8")
    assert main(["calendar", "2099", "--config", str(path)]) == 1
    assert "no schedule for 2099" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == ""  # nothing written
