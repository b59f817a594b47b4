"""Catch-up after downtime: which periods a report sends on start because their fire passed.

Pure: the clock reading and the ledger question (``is_done``) are passed in;
``ledger_done_check`` is the daemon's default answer to that question.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from reports.config import Config, ReportConfig
from reports.report.periods import Period
from reports.schedule.firetimes import RunRequest, fire_times, period_for_fire

DoneCheck = Callable[[ReportConfig, Period], bool]
"""Whether a report's period has a completed delivery to all its recipients."""


def ledger_done_check(config: Config) -> tuple[DoneCheck, Callable[[], None]]:
    """The default DoneCheck (ask the ledger in the state database) and its close function."""
    from reports.state.ledger import Ledger

    ledger = Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)

    def done(report: ReportConfig, period: Period) -> bool:
        return ledger.period_done(report.name, period, list(report.recipients))

    return done, ledger.close


@dataclass(frozen=True)
class CatchUpPlan:
    """What a report sends on start for periods whose fire time passed while we were down."""

    report: str
    policy: str
    due: tuple[RunRequest, ...]
    skipped: tuple[RunRequest, ...] = ()


def _lookback(report: ReportConfig, periods: int) -> timedelta:
    per = 7 if report.period == "weekly" else 31
    return timedelta(days=per * (periods + 1) + 2)


def _first_fires(report: ReportConfig, now: datetime) -> dict[Period, tuple[datetime, date]]:
    """The periods the catch-up looks at, with the earliest fire time (and as_of) of each."""
    horizon = 1 if report.catch_up == "latest" else report.catch_up_max_periods
    first_fire: dict[Period, tuple[datetime, date]] = {}
    for t in fire_times(report, now - _lookback(report, horizon), now):
        as_of, period = period_for_fire(report, t)
        first_fire.setdefault(period, (t, as_of))
    return {p: first_fire[p] for p in sorted(first_fire)[-horizon:]}


def in_reach(report: ReportConfig, now: datetime) -> set[Period]:
    """The periods a start at ``now`` would send if they are not done (none for ``none``)."""
    return set() if report.catch_up == "none" else set(_first_fires(report, now))


def plan_catch_up(
    report: ReportConfig, now: datetime, is_done: Callable[[Period], bool]
) -> CatchUpPlan:
    """Periods with a past fire time and no completed delivery, oldest first, per the policy.

    ``latest`` considers only the most recent fire time's period, ``all`` the last
    ``catch_up_max_periods`` periods, ``none`` sends nothing (the pending ones are ``skipped``).
    """
    first_fire = _first_fires(report, now)
    pending = tuple(
        RunRequest(report.name, first_fire[p][0], first_fire[p][1], p, reason="catch-up")
        for p in sorted(first_fire)
        if not is_done(p)
    )
    if report.catch_up == "none":
        return CatchUpPlan(report.name, report.catch_up, due=(), skipped=pending)
    return CatchUpPlan(report.name, report.catch_up, due=pending)
