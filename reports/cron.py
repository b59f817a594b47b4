"""Cron expressions as a crontab user means them, on APScheduler 3 triggers.

Two differences from APScheduler's own reading are corrected here:
- weekday numbers follow crontab (0 or 7 = Sunday, 1 = Monday); APScheduler 3 counts Monday as 0,
  so ``from_crontab("0 7 * * 1")`` alone would fire on Tuesdays;
- a wall-clock time fires once on the night clocks go back (APScheduler fires it twice).
- when both day-of-month and day-of-week are restricted (neither field starts with ``*``), a day
  matches if EITHER matches, as in crontab (``0 7 1 * 1`` = the 1st of every month and every
  Monday); APScheduler alone would need both. Two triggers joined by an ``OrTrigger`` do it.
A schedule that can never fire (``0 8 31 2 *``, the 31st of February) is refused.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger


class NeverFiresError(ValueError):
    """A valid cron expression that no date matches (the message says why, whole)."""


class WallClockCronTrigger(CronTrigger):  # type: ignore[misc]
    """A cron trigger that fires once per wall-clock time, also when DST repeats an hour.

    APScheduler 3 fires a 02:30 schedule twice on the night clocks go back (02:30 CEST and
    02:30 CET); a report schedule means the wall-clock time, so the repeat is skipped.
    """

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        nxt: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        if nxt is not None and previous_fire_time is not None:
            zone = self.timezone
            if nxt.astimezone(zone).replace(tzinfo=None) == previous_fire_time.astimezone(
                zone
            ).replace(tzinfo=None):
                nxt = super().get_next_fire_time(nxt, nxt)
        return nxt


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_day_of_week(text: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) in APScheduler's terms (names).

    APScheduler 3 numbers weekdays from Monday = 0, so ``from_crontab("0 7 * * 1")`` would fire
    on Tuesdays; numbers are translated to names, ranges and steps expanded, names kept.
    """
    if text in ("*", "?"):
        return "*"
    days: list[int] = []
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            lo, hi = _day_number(a), _day_number(b)
            if hi == 0 and lo > 0:  # "5-7" or "5-0": up to Sunday
                hi = 7
        else:
            lo = _day_number(base)
            hi = 6 if step_text else lo
        if step < 1 or hi < lo:
            raise ValueError(f"invalid weekday field {text!r}")
        days += [d % 7 for d in range(lo, hi + 1, step)]
    return ",".join(_DAY_NAMES[d] for d in sorted(set(days)))


def _day_number(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)  # 7 (Sunday) is kept for ranges such as 5-7
    if token[:3] in _DAY_NAMES:
        return _DAY_NAMES.index(token[:3])
    raise ValueError(f"invalid weekday {token!r}")


def trigger(schedule: str, timezone: str) -> BaseTrigger:
    """The trigger of a 5-field crontab ``schedule`` in ``timezone``; ValueError if invalid.

    With both day fields restricted it is crontab's OR: one trigger for the days of the month,
    one for the weekdays, firing at whichever comes first.
    """
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"{schedule!r} is not a 5-field cron expression")
    minute, hour, dom, month, dow = fields
    weekdays = cron_day_of_week(dow)
    if dom.startswith("*") or dow.startswith("*"):
        # crontab: a field starting with "*" does not restrict, the other one alone decides
        _check_fires(schedule, dom, month)
        return _cron(minute, hour, dom, month, weekdays, timezone)
    by_day = _cron(minute, hour, dom, month, "*", timezone)
    by_weekday = _cron(minute, hour, "*", month, weekdays, timezone)
    return OrTrigger([by_day, by_weekday])


def _cron(minute: str, hour: str, dom: str, month: str, dow: str, timezone: str) -> CronTrigger:
    result: CronTrigger = WallClockCronTrigger(
        minute=minute, hour=hour, day=dom, month=month, day_of_week=dow, timezone=timezone
    )
    return result


def _check_fires(schedule: str, dom: str, month: str) -> None:
    if not _ever_fires(dom, month):
        raise NeverFiresError(
            f"{schedule!r} never fires: no month has that day (day {dom}, month {month})"
        )


@lru_cache(maxsize=256)
def _ever_fires(dom: str, month: str) -> bool:
    """Whether some day of a leap year (so 29 February counts) matches both day fields."""
    probe: Any = CronTrigger(day=dom, month=month, timezone="UTC")
    day_field = next(f for f in probe.fields if f.name == "day")
    month_field = next(f for f in probe.fields if f.name == "month")
    d = date(2028, 1, 1)
    while d.year == 2028:
        if month_field.get_next_value(d) == d.month and day_field.get_next_value(d) == d.day:
            return True
        d += timedelta(days=1)
    return False
