"""Small-group suppression: no count of 1 to k-1 learners is shown for a course (pure).

``k`` is the report's ``min_group_size`` (10 by default, at least 5 when configured; 0 here
means "off", the pure functions' neutral default). The rules, as education statistics apply them:

- a per-course count from 1 to k-1 prints as ``<k``; 0 stays 0 (an empty course is no group);
- a change between two counts is left out when either count is suppressed (it would give the
  other one away), and a percentage change on a base under k is left out;
- complementary suppression: where the cells of a published total have exactly one suppressed
  cell, the smallest other non-zero cell is suppressed too, so the total minus the shown cells
  does not reveal it (per-course enrollments add up to the Enrollments figure; a day's
  per-course enrollments add up to that day's figure);
- an average over fewer than k learners is not shown.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from reports.report.model import CourseEnrollments, ReportData
from reports.report.periods import Period

K = TypeVar("K", bound=Hashable)

USERS, PREVIOUS, ENROLLMENTS, UNENROLLMENTS = "users", "previous_users", "enrollments", (
    "unenrollments"
)


def is_small(value: int | None, k: int) -> bool:
    """Whether ``value`` is a group too small to show (1 to k-1)."""
    return value is not None and 0 < value < k


def complementary(cells: Iterable[tuple[K, int | None]], k: int) -> frozenset[K]:
    """The cells to suppress among the cells of one published total.

    The small ones; and when exactly one is small, also the smallest other non-zero cell.
    """
    items = [(key, value) for key, value in cells]
    hidden = {key for key, value in items if is_small(value, k)}
    if len(hidden) == 1:
        others = [(value, str(key), key) for key, value in items
                  if key not in hidden and value is not None and value > 0]
        if others:
            hidden.add(min(others, key=lambda item: (item[0], item[1]))[2])
    return frozenset(hidden)


@dataclass(frozen=True)
class Suppression:
    """Which per-course cells a report hides, and how it prints them."""

    k: int = 0
    cells: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    """(course_id, column) cells hidden by complementary suppression (beyond the small ones)."""

    @property
    def active(self) -> bool:
        """Whether anything can be suppressed at all."""
        return self.k > 0

    @property
    def label(self) -> str:
        """How a suppressed count prints: ``<10``."""
        return f"<{self.k}"

    def hides(self, value: int | None, course_id: str = "", column: str = "") -> bool:
        """Whether this cell is suppressed."""
        return is_small(value, self.k) or (course_id, column) in self.cells

    def hides_change(self, now: int | None, before: int | None, course_id: str = "") -> bool:
        """Whether a change between two of a course's counts must be left out."""
        return self.hides(now, course_id, USERS) or self.hides(before, course_id, PREVIOUS)

    def small_base(self, base: int | None) -> bool:
        """Whether a percentage on this base must be left out."""
        return is_small(base, self.k)


NO_SUPPRESSION = Suppression()


def plan(data: ReportData, k: int) -> Suppression:
    """The complementary cells of a report's per-course enrollment sums (k = 0: none)."""
    if k <= 0:
        return NO_SUPPRESSION
    cells: set[tuple[str, str]] = set()
    for column, unenroll in ((ENROLLMENTS, False), (UNENROLLMENTS, True)):
        sums = [(s.course_id, _period_sum(s, data.period, unenroll)) for s in data.enrollments]
        cells |= {(course_id, column) for course_id in complementary(sums, k)}
    return Suppression(k, frozenset(cells))


def _period_sum(series: CourseEnrollments, period: Period, unenroll: bool) -> int | None:
    values = (series.unenrollments if unenroll else series.enrollments).values
    known = [v for d, v in values if v is not None and d in period]
    return sum(known) if known else None


def daily_cells(
    rows: Sequence[tuple[str, str, int | None, int | None]], k: int
) -> frozenset[tuple[int, int]]:
    """(row index, column 2 or 3) cells of the per-day, per-course CSV to suppress.

    ``rows`` are (date, course_id, enrollments, unenrollments); each day's cells of a column add
    up to that day's published figure, so each day is one group for complementary suppression.
    """
    if k <= 0:
        return frozenset()
    by_day: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_day.setdefault(row[0], []).append(index)
    hidden: set[tuple[int, int]] = set()
    for indexes in by_day.values():
        for column in (2, 3):
            cells = [((i, column), rows[i][column]) for i in indexes]
            hidden |= complementary(cells, k)  # type: ignore[arg-type]
    return frozenset(hidden)
