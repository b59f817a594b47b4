"""Held and provisional periods in the scheduler: when to look again and what to do (pure).

A scheduled send whose data fails the freshness gate exits 3 and its period is *held*. The
daemon keeps one ``Hold`` per (report, period) and asks ``decide`` on every tick:

- held, younger than ``hold_for``: send again every ``retry_every`` (the data may have arrived);
- held for ``hold_for``: apply ``on_stale`` once: ``provisional`` sends it now marked provisional,
  ``skip`` gives the period up, ``alert`` tells the alert recipients and keeps waiting for
  complete data;
- provisional (sent marked provisional): send again every ``retry_every``; the send delivers the
  final report, replacing the provisional one, as soon as the data is complete.

Looking again stops at the report's next fire time (``until``): the next period's run takes
over, and ``send --report R --as-of D`` still finishes an older period by hand.

Every hold is also stored (``reports.schedule.rechecks``), so these decisions resume after a
restart with the same ``since``, ``last_try`` and state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from reports.report.periods import Period


class HoldState(enum.StrEnum):
    """Where a held period is in the scheduler."""

    HELD = "held"
    WAITING = "waiting"  # stale with on_stale = "alert": told, still waiting for the data
    PROVISIONAL = "provisional"
    GIVEN_UP = "given-up"  # stale with on_stale = "skip"; or past ``until``


class Action(enum.StrEnum):
    """What the daemon does for a hold now."""

    RETRY = "retry"  # send again (final if the data is complete)
    PROVISIONAL = "provisional"  # send now, marked provisional
    SKIP = "skip"
    ALERT = "alert"  # tell the alert recipients it is stale; keep waiting


@dataclass(frozen=True)
class HoldPolicy:
    """``[freshness]`` settings the scheduler applies to one report."""

    retry_every: timedelta
    hold_for: timedelta
    on_stale: str = "provisional"


@dataclass(frozen=True)
class Hold:
    """One held (or provisionally sent) period of a report, as the daemon tracks it."""

    report: str
    period: Period
    as_of: date
    since: datetime
    """When the period was first held."""
    last_try: datetime
    until: datetime | None
    """Stop looking again at this instant (the report's next fire time)."""
    state: HoldState = HoldState.HELD
    reason: str = ""
    rechecks: int = 0
    """How many times the period was held again after the first hold."""


def decide(hold: Hold, policy: HoldPolicy, now: datetime) -> Action | None:
    """What to do for ``hold`` at ``now`` (None: nothing yet)."""
    if hold.state is HoldState.GIVEN_UP:
        return None
    if hold.until is not None and now >= hold.until:
        return Action.SKIP
    if hold.state is HoldState.HELD and now - hold.since >= policy.hold_for:
        return {"provisional": Action.PROVISIONAL, "skip": Action.SKIP,
                "alert": Action.ALERT}[policy.on_stale]
    if now - hold.last_try >= policy.retry_every:
        return Action.RETRY
    return None


def after(hold: Hold, action: Action, now: datetime) -> Hold:
    """The hold once ``action`` was taken at ``now`` (before the run's own result is known)."""
    if action is Action.SKIP:
        return replace(hold, state=HoldState.GIVEN_UP, last_try=now)
    if action is Action.ALERT:
        return replace(hold, state=HoldState.WAITING)
    return replace(hold, last_try=now)
