"""Cron expressions as a crontab user means them, on APScheduler 3 triggers.

Two differences from APScheduler's own reading are corrected here:
- weekday numbers follow crontab (0 or 7 = Sunday, 1 = Monday); APScheduler 3 counts Monday as 0,
  so ``from_crontab("0 7 * * 1")`` alone would fire on Tuesdays;
- a wall-clock time fires once on the night clocks go back (APScheduler fires it twice).
When both day-of-month and day-of-week are restricted, a fire needs both (APScheduler's AND),
unlike classic cron's OR; the README says so.
"""

from __future__ import annotations

from datetime import datetime

from apscheduler.triggers.cron import CronTrigger


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


def trigger(schedule: str, timezone: str) -> CronTrigger:
    """The trigger of a 5-field crontab ``schedule`` in ``timezone``; ValueError if invalid."""
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"{schedule!r} is not a 5-field cron expression")
    fields[4] = cron_day_of_week(fields[4])
    result: CronTrigger = WallClockCronTrigger.from_crontab(" ".join(fields), timezone=timezone)
    return result
