"""The table under the daily enrollments chart: the chart's numbers, compact.

A Monday-to-Sunday week is one table of seven day columns (rows: enrollments, unenrollments). A
longer period (a month) is a week-by-day grid: one column per weekday, two rows per calendar week
(headed by the week's dates), empty cells before the first and after the last day. Longer than
``MAX_WEEKS`` weeks, no table is made (the figures are in ``daily_enrollments.csv``).

Cells are formatted here (the report's locale); a day without data shows a dash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from reports.report import fmt
from reports.report.analysis import DailyPoint

MAX_WEEKS = 6
MISSING = "\u2013"


@dataclass(frozen=True)
class GridCell:
    """One day's figure; ``text`` is empty outside the period."""

    text: str
    missing: bool = False


@dataclass(frozen=True)
class GridWeek:
    """One calendar week of the grid: its label and seven cells per measure."""

    label: str
    enrollments: tuple[GridCell, ...]
    unenrollments: tuple[GridCell, ...]


@dataclass(frozen=True)
class DayGrid:
    """The table: column headers (seven days or weekdays) and its weeks."""

    single_week: bool
    """True: one week, the columns name each day and the rows need no week label."""
    columns: tuple[str, ...]
    weeks: tuple[GridWeek, ...]


def _cell(value: int | None, locale: str) -> GridCell:
    return GridCell(MISSING, True) if value is None else GridCell(fmt.integer(value, locale))


def day_grid(points: Sequence[DailyPoint], locale: str = "en") -> DayGrid | None:
    """The grid of ``points`` (consecutive days), or None when there is nothing or too much."""
    if not points:
        return None
    first, last = points[0].day, points[-1].day
    monday = first - timedelta(days=first.weekday())
    weeks_count = (last - monday).days // 7 + 1
    if weeks_count > MAX_WEEKS:
        return None
    by_day = {p.day: p for p in points}
    blank = GridCell("")
    weeks = []
    for w in range(weeks_count):
        days = [monday + timedelta(days=7 * w + i) for i in range(7)]
        inside = [d for d in days if d in by_day]
        enroll = tuple(_cell(by_day[d].enrollments, locale) if d in by_day else blank
                       for d in days)
        unenroll = tuple(_cell(by_day[d].unenrollments, locale) if d in by_day else blank
                         for d in days)
        label = fmt.period_label_days(inside[0], inside[-1], locale)
        weeks.append(GridWeek(label, enroll, unenroll))
    if weeks_count == 1 and len(points) == 7:
        return DayGrid(True, tuple(fmt.weekday_day(p.day, locale) for p in points), tuple(weeks))
    columns = tuple(fmt.weekday_short(monday + timedelta(days=i), locale) for i in range(7))
    return DayGrid(False, columns, tuple(weeks))
