"""SLA clocks: continuous time and working time (工作时) with holidays and 调休 days.

Local tables set limits in working hours ("4 工作时", "1 工作日 = 8 工作时") for non-urgent
types; urgent ones run continuously. Written here rather than taken from a business-calendar
library because the rules are small and specific (periods per day, holidays, and weekend days
that are worked instead, 调休), and because every deadline must be reproducible from the
policy alone. All times are epoch seconds; days are taken in the site's time zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.config import WEEKDAYS, WorkCalendar

_MAX_DAYS = 3660  # a deadline more than ten years of working days away is a policy error


class SlaClock:
    """Adds and measures SLA time for one clock kind (continuous or working_hours)."""

    def __init__(self, kind: str, calendar: WorkCalendar, tz: ZoneInfo) -> None:
        self.kind = kind
        self.calendar = calendar
        self.tz = tz
        self._workdays = {WEEKDAYS.index(d) for d in calendar.workdays}
        self._holidays = set(calendar.holidays)
        self._extra = set(calendar.extra_workdays)

    def is_workday(self, d: date) -> bool:
        if d in self._extra:
            return True
        return d.weekday() in self._workdays and d not in self._holidays

    def _periods(self, start: float) -> Iterator[tuple[float, float]]:
        """Working periods (epoch start, end) from the day of ``start`` onwards."""
        day = datetime.fromtimestamp(start, self.tz).date()
        for _ in range(_MAX_DAYS):
            if self.is_workday(day):
                for p in self.calendar.periods:
                    a = datetime.combine(day, p.start, self.tz).timestamp()
                    b = datetime.combine(day, p.end, self.tz).timestamp()
                    if b > start:
                        yield max(a, start), b
            day += timedelta(days=1)
        raise ValueError("no working time within ten years: check the calendar")

    def add(self, start: float, seconds: float) -> float:
        """The moment ``seconds`` of clock time after ``start``."""
        if self.kind == "continuous":
            return start + seconds
        left = seconds
        for a, b in self._periods(start):
            if b - a >= left:
                return a + left
            left -= b - a
        raise AssertionError("unreachable")

    def between(self, start: float, end: float) -> float:
        """Clock seconds elapsed from ``start`` to ``end`` (0 if end ≤ start)."""
        if end <= start:
            return 0.0
        if self.kind == "continuous":
            return end - start
        total = 0.0
        for a, b in self._periods(start):
            if a >= end:
                break
            total += min(b, end) - a
        return total
