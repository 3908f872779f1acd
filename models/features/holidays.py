"""US federal holidays and the distance of a date to the nearest one.

Computed from the rules (fixed dates and nth weekdays) rather than a table, so that
serving knows any year and no dependency is needed. Dates are the holidays
themselves, not the observed weekdays: travel peaks around the day itself.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import numpy as np

# (month, weekday Mon=0, n): the n-th such weekday of the month; n = -1 is the last one.
NTH_WEEKDAY_HOLIDAYS = (
    (1, 0, 3),   # Martin Luther King Jr. Day
    (2, 0, 3),   # Washington's Birthday
    (5, 0, -1),  # Memorial Day
    (9, 0, 1),   # Labor Day
    (10, 0, 2),  # Columbus Day
    (11, 3, 4),  # Thanksgiving
)
FIXED_HOLIDAYS = ((1, 1), (7, 4), (11, 11), (12, 25))


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def us_holidays(year: int) -> list[date]:
    """The ten federal holidays of ``year``, sorted."""
    days = [date(year, m, d) for m, d in FIXED_HOLIDAYS]
    days += [_nth_weekday(year, m, wd, n) for m, wd, n in NTH_WEEKDAY_HOLIDAYS]
    return sorted(days)


def days_to_nearest_holiday(days: np.ndarray) -> np.ndarray:
    """|days| to the nearest holiday for an array of ``datetime64[D]`` dates (NaT -> -1)."""
    days = np.asarray(days, dtype="datetime64[D]")
    result = np.full(days.shape, -1, dtype=np.int64)
    valid = ~np.isnat(days)
    if not valid.any():
        return result
    years = days[valid].astype("datetime64[Y]").astype(int) + 1970
    table = _holiday_ordinals(int(years.min()) - 1, int(years.max()) + 1)
    ordinal = days[valid].astype(np.int64)
    right = np.clip(np.searchsorted(table, ordinal), 1, len(table) - 1)
    result[valid] = np.minimum(np.abs(ordinal - table[right - 1]), np.abs(table[right] - ordinal))
    return result


@lru_cache(maxsize=64)
def _holiday_ordinals(first_year: int, last_year: int) -> np.ndarray:
    """The holidays of ``first_year..last_year`` as sorted day numbers, read-only.

    Cached because serving encodes a few rows per call, all in the same years, and
    building the table from the rules costs more than the rest of the encoding.
    """
    table = np.array([h for y in range(first_year, last_year + 1) for h in us_holidays(y)],
                     dtype="datetime64[D]").astype(np.int64)
    table.flags.writeable = False
    return table
