"""When a report fires, and what each fire sends: the period completed before that day.

A report's ``schedule`` is a crontab line read in the report's ``timezone``; these functions walk
its fire instants (across DST changes) and turn one into a ``RunRequest``'s (as_of, period).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from reports import cron
from reports.config import ReportConfig
from reports.report.periods import Period, for_kind, local_date

# Enough fire times to cover 52 periods of an every-minute schedule is not a sane config; this
# bounds the work of one look-back instead.
MAX_FIRE_TIMES = 200_000


@dataclass(frozen=True)
class RunRequest:
    """One scheduled send: which report, for which fire instant, as of which day."""

    report: str
    fire_time: datetime
    as_of: date
    period: Period
    reason: str = "scheduled"  # "scheduled", "catch-up", "recheck" (held) or "stale"
    provisional: bool = False
    """Send despite the freshness gate, marked provisional (``send --provisional``)."""


def trigger_for(report: ReportConfig) -> BaseTrigger:
    """The cron trigger of a report, in the report's time zone (crontab weekday numbering and
    day-of-month OR day-of-week)."""
    return cron.trigger(report.schedule, report.timezone)


def fire_times(report: ReportConfig, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every fire instant in ``[start, end]``, in order (aware, in the report's zone)."""
    trigger = trigger_for(report)
    zone = ZoneInfo(report.timezone)
    t = trigger.get_next_fire_time(None, start)
    for _ in range(MAX_FIRE_TIMES):
        if t is None or t > end:
            return
        # APScheduler labels a time in the skipped DST hour with the old offset; converting
        # shows the real wall-clock time of that instant (02:30 "CET" -> 03:30 CEST).
        yield t.astimezone(UTC).astimezone(zone)
        t = trigger.get_next_fire_time(t, t)


def next_fire_time(report: ReportConfig, now: datetime) -> datetime | None:
    """The first fire instant strictly after ``now``."""
    for t in fire_times(report, now + timedelta(microseconds=1), now + timedelta(days=3660)):
        return t
    return None


def last_fire_time(report: ReportConfig, now: datetime) -> datetime | None:
    """The latest fire instant at or before ``now`` (looking back at most ~5 years)."""
    for window in (2, 40, 400, 1830):
        found = None
        for t in fire_times(report, now - timedelta(days=window), now):
            found = t
        if found is not None:
            return found
    return None


def period_for_fire(report: ReportConfig, fire_time: datetime) -> tuple[date, Period]:
    """(as_of, period) a fire at ``fire_time`` sends: the period completed before that day."""
    as_of = local_date(fire_time, report.timezone)
    return as_of, for_kind(report.period, as_of)


def hold_until(report: ReportConfig, period: Period) -> datetime | None:
    """When the scheduler stops looking again at ``period`` held: the report's next fire time
    after the fire that sends it (the first one after the period's end whose period it is)."""
    zone = ZoneInfo(report.timezone)
    start = datetime.combine(period.end + timedelta(days=1), time(), zone)
    for t in fire_times(report, start, start + timedelta(days=40)):
        if period_for_fire(report, t)[1] == period:
            return next_fire_time(report, t)
    return None
