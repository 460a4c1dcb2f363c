"""Rule schedules: the weekly hours during which a rule is enforced, in the site's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.config_base import WEEKDAYS, ScheduleWindow


class Schedule:
    """Answers "is the rule enforced at frame time t?" for a list of weekly windows.

    An empty list means always enforced. A window whose ``end`` is not after its ``start``
    runs over midnight and belongs to the day on which it starts (``fri 22:00-06:00`` covers
    Friday night until Saturday 06:00).
    """

    def __init__(self, windows: Sequence[ScheduleWindow], timezone: str) -> None:
        self._windows = tuple(windows)
        self._tz = ZoneInfo(timezone)

    @property
    def always(self) -> bool:
        return not self._windows

    def active(self, time_s: float) -> bool:
        if not self._windows:
            return True
        local = datetime.fromtimestamp(time_s, tz=self._tz)
        today = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        now = local.time()
        for w in self._windows:
            if w.end > w.start:
                if today in w.days and w.start <= now < w.end:
                    return True
            else:  # spans midnight (or the whole day when start == end)
                if today in w.days and now >= w.start:
                    return True
                if yesterday in w.days and now < w.end:
                    return True
        return False
