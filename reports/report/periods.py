"""Reporting periods: which dates a report covers, and the period it is compared with.

All functions are pure. "Today" is always passed in (or derived from an injected clock in the
report's time zone), so tests and ``--as-of`` move time without patching anything.

Decisions (also in the README):
- weekly = the last complete Monday-Sunday week before the week that contains ``as_of``;
- monthly = the calendar month before the month that contains ``as_of``;
- custom = ``start``..``end`` inclusive.
- The previous period ends the day before the period starts. For weekly and custom periods it has
  the same length; for monthly periods it is the previous calendar month (October is compared with
  September, not with "the 31 days before"), which is what a reader of a monthly report expects.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from reports.errors import PeriodError

Clock = Callable[[], datetime]
"""Returns the current instant as an aware datetime (UTC is fine)."""

MAX_CUSTOM_DAYS = 366 * 5


class PeriodKind(enum.StrEnum):
    """How a period was chosen."""

    WEEKLY = "weekly"
    MONTHLY = "monthly"
    CUSTOM = "custom"


@dataclass(frozen=True, order=True)
class Period:
    """An inclusive range of calendar days in the report's time zone."""

    start: date
    end: date
    kind: PeriodKind = PeriodKind.CUSTOM

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PeriodError(
                f"the period ends ({self.end.isoformat()}) before it starts "
                f"({self.start.isoformat()})"
            )

    @property
    def days(self) -> int:
        """Number of calendar days in the period."""
        return (self.end - self.start).days + 1

    def dates(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def previous(self) -> Period:
        """The period this one is compared with (see the module docstring)."""
        if self.kind is PeriodKind.MONTHLY:
            last = self.start - timedelta(days=1)
            return Period(last.replace(day=1), last, PeriodKind.MONTHLY)
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end, self.kind)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def key(self) -> str:
        """A stable file-name friendly key, e.g. ``2026-11-09_2026-11-15``."""
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


def weekly(as_of: date) -> Period:
    """The Monday-Sunday week before the week that contains ``as_of``."""
    this_monday = as_of - timedelta(days=as_of.weekday())
    start = this_monday - timedelta(days=7)
    return Period(start, start + timedelta(days=6), PeriodKind.WEEKLY)


def monthly(as_of: date) -> Period:
    """The calendar month before the month that contains ``as_of``."""
    end = as_of.replace(day=1) - timedelta(days=1)
    return Period(end.replace(day=1), end, PeriodKind.MONTHLY)


def custom(start: date, end: date) -> Period:
    """An explicit inclusive range, bounded to a sane length."""
    period = Period(start, end, PeriodKind.CUSTOM)
    if period.days > MAX_CUSTOM_DAYS:
        raise PeriodError(
            f"the period {period.key} is {period.days} days long; the limit is {MAX_CUSTOM_DAYS}"
        )
    return period


def for_kind(kind: str | PeriodKind, as_of: date) -> Period:
    """The weekly or monthly period as if today were ``as_of``."""
    kind = PeriodKind(kind)
    if kind is PeriodKind.WEEKLY:
        return weekly(as_of)
    if kind is PeriodKind.MONTHLY:
        return monthly(as_of)
    raise PeriodError("a custom period needs explicit start and end dates")


def today(clock: Clock, timezone: str) -> date:
    """The current calendar date in ``timezone`` according to ``clock``."""
    return local_date(clock(), timezone)


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date of ``instant`` in ``timezone``."""
    if instant.tzinfo is None:
        raise PeriodError("a naive datetime has no time zone; pass an aware one")
    return instant.astimezone(ZoneInfo(timezone)).date()


def parse_date(text: str, *, what: str = "date") -> date:
    """Parse an ISO date (YYYY-MM-DD) with a one-line error naming ``what``."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{what}: {text!r} is not a date in the form YYYY-MM-DD") from None
