"""China's public holidays and 调休 working days for the SLA working-hours clock, from the
maintained ``chinesecalendar`` package (the State Council's yearly schedule), written into
``[cases.calendar]`` of ``cameras.toml`` so that the file alone still decides every deadline.

Holidays that fall on a weekend are left out (a weekend is not worked anyway); 调休 days are
the weekend days that are worked instead."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import tomlkit
from tomlkit.items import Table

from pipeline.config import parse_config
from pipeline.errors import ConfigError, ConfigIssue
from pipeline.evidence.storage import atomic_write


def official_days(year: int) -> tuple[list[date], list[date]]:
    """(weekday holidays, worked weekend days) of ``year``; ConfigError if unknown."""
    try:
        import chinese_calendar
    except ImportError:
        raise ConfigError([ConfigIssue("calendar", "needs chinesecalendar: pip install -e "
                                       "'.[calendar]'")]) from None  # fmt: skip
    days = [date(year, 1, 1) + timedelta(days=i) for i in range(366)]
    days = [d for d in days if d.year == year]
    try:
        holidays = [d for d in days if d.weekday() < 5 and chinese_calendar.is_holiday(d)]
        worked = [d for d in days if d.weekday() >= 5 and chinese_calendar.is_workday(d)]
    except NotImplementedError:
        known = getattr(chinese_calendar, "__version__", "?")
        raise ConfigError([ConfigIssue(
            "calendar", f"chinesecalendar {known} has no schedule for {year} yet (the State "
            "Council publishes next year's in November/December; update the package)",
        )]) from None  # fmt: skip
    return holidays, worked


def write_calendar(path: Path, year: int) -> tuple[int, int]:
    """Merge ``year``'s days into ``[cases.calendar]`` (other years' dates kept; comments and
    the rest of the file untouched); returns (holidays, worked days) added."""
    holidays, worked = official_days(year)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    cases = doc.setdefault("cases", tomlkit.table())
    calendar = cases.setdefault("calendar", tomlkit.table())
    assert isinstance(calendar, Table)
    added = []
    for key, new in (("holidays", holidays), ("extra_workdays", worked)):
        kept = [d for d in calendar.get(key, []) if d.year != year]
        merged = sorted({*kept, *new})
        arr = tomlkit.array()
        arr.extend(merged)
        arr.multiline(True)
        calendar[key] = arr
        added.append(len(new))
    # the result must still be a valid file, checked as `gridsight check` would
    parse_config(doc.unwrap(), base_dir=path.parent.resolve())
    atomic_write(path.with_name(path.name + ".bak"), path.read_bytes())
    atomic_write(path, tomlkit.dumps(doc).encode("utf-8"))
    return added[0], added[1]
