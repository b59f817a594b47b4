"""When the scheduler looks again at a held period, and what it does when it goes stale."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from reports.report.periods import weekly
from reports.schedule.firetimes import RunRequest
from reports.schedule.holds import Action, Hold, HoldPolicy, HoldState, after, decide
from reports.schedule.runner import OutcomeKind, RunOutcome
from reports.schedule.scheduler import Daemon
from tests._sched import write_config

T0 = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
POLICY = HoldPolicy(retry_every=HOUR, hold_for=6 * HOUR)


def held(**changes: object) -> Hold:
    hold = Hold("acme-weekly", weekly(date(2026, 11, 16)), date(2026, 11, 16), T0, T0,
                T0 + timedelta(days=7))
    return Hold(**{**hold.__dict__, **changes})  # type: ignore[arg-type]


def test_a_held_period_is_tried_again_every_retry_interval() -> None:
    hold = held()
    assert decide(hold, POLICY, T0 + 59 * timedelta(minutes=1)) is None
    assert decide(hold, POLICY, T0 + HOUR) is Action.RETRY
    hold = after(hold, Action.RETRY, T0 + HOUR)
    assert decide(hold, POLICY, T0 + 90 * timedelta(minutes=1)) is None
    assert decide(hold, POLICY, T0 + 2 * HOUR) is Action.RETRY


@pytest.mark.parametrize(("on_stale", "action"), [
    ("provisional", Action.PROVISIONAL), ("skip", Action.SKIP), ("alert", Action.ALERT)])
def test_after_hold_for_the_stale_policy_applies_once(on_stale: str, action: Action) -> None:
    policy = HoldPolicy(HOUR, 6 * HOUR, on_stale)
    hold = held(last_try=T0 + 5 * HOUR)
    assert decide(hold, policy, T0 + 6 * HOUR - timedelta(seconds=1)) is None
    assert decide(hold, policy, T0 + 6 * HOUR) is action
    later = after(hold, action, T0 + 6 * HOUR)
    if action is Action.SKIP:
        assert later.state is HoldState.GIVEN_UP
        assert decide(later, policy, T0 + 10 * HOUR) is None
    elif action is Action.ALERT:
        # Told once; still waiting for complete data, looking again every hour.
        assert later.state is HoldState.WAITING
        assert decide(later, policy, T0 + 6 * HOUR + HOUR) is Action.RETRY
    else:
        provisional = Hold(**{**later.__dict__, "state": HoldState.PROVISIONAL})
        assert decide(provisional, policy, T0 + 6 * HOUR + 30 * timedelta(minutes=1)) is None
        assert decide(provisional, policy, T0 + 7 * HOUR) is Action.RETRY


def test_looking_again_stops_at_the_next_fire_time() -> None:
    hold = held(state=HoldState.PROVISIONAL, last_try=T0 + 6 * HOUR)
    assert decide(hold, POLICY, T0 + timedelta(days=7)) is Action.SKIP
    assert decide(held(until=None), POLICY, T0 + timedelta(days=30)) is Action.PROVISIONAL


# ---------------------------------------------------------------------------------------------
# The daemon with a controlled clock and a runner that answers like `send` does.

REASON = "acme-weekly 2026-11-09..2026-11-15: held: data for Nov 15 has not arrived for 12 of 12"


class GateRunner:
    """Held (exit 3) until the data arrives; a provisional send always goes out."""

    def __init__(self) -> None:
        self.arrived = False
        self.requests: list[RunRequest] = []

    def __call__(self, request: RunRequest) -> RunOutcome:
        self.requests.append(request)
        if self.arrived or request.provisional:
            return RunOutcome(OutcomeKind.OK, 0)
        return RunOutcome(OutcomeKind.HELD, 3, REASON)


def daemon_for(tmp_path: Path, on_stale: str = "provisional", **report: object) -> tuple[
        Daemon, GateRunner, list[datetime], list[str]]:
    config = write_config(
        tmp_path, [{"name": "acme-weekly", "period": "weekly", "schedule": "0 7 * * 1",
                    "timezone": "UTC", **report}],
        alerts=["ops@acme.example"], extra=f'[freshness]\non_stale = "{on_stale}"\n')
    now = [T0]
    runner = GateRunner()
    alerts: list[str] = []
    daemon = Daemon(config, clock=lambda: now[0], runner=runner, is_done=lambda r, p: False,
                    alerter=lambda subject, text: alerts.append(subject))
    return daemon, runner, now, alerts


def fire(daemon: Daemon) -> RunRequest:
    request = RunRequest("acme-weekly", T0, date(2026, 11, 16), weekly(date(2026, 11, 16)))
    outcome = daemon.execute(request)
    assert outcome is not None and outcome.kind is OutcomeKind.HELD
    return request


def restart(daemon: Daemon, now: list[datetime], alerts: list[str]) -> tuple[Daemon, GateRunner]:
    """A new daemon on the same config and state database (the old one is gone)."""
    runner = GateRunner()
    return Daemon(daemon.config, clock=lambda: now[0], runner=runner, is_done=lambda r, p: False,
                  alerter=lambda subject, text: alerts.append(subject)), runner


def test_held_rechecked_hourly_then_provisional_then_final(tmp_path: Path) -> None:
    daemon, runner, now, alerts = daemon_for(tmp_path)
    fire(daemon)
    assert alerts == []  # the first hold is alerted by the send that was held, not the daemon
    [hold] = daemon.holds.holds()
    assert hold.until == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    now[0] = T0 + 30 * timedelta(minutes=1)
    assert daemon.recheck() == []
    for hours in range(1, 6):  # held, looked at every hour, never alerted by the daemon
        now[0] = T0 + hours * HOUR
        assert [o.kind for o in daemon.recheck()] == [OutcomeKind.HELD]
    assert [r.reason for r in runner.requests] == ["scheduled"] + ["recheck"] * 5
    assert alerts == [] and daemon.holds.holds()[0].rechecks == 5
    now[0] = T0 + 6 * HOUR  # hold_for (6 h for a weekly report): sent provisional, once
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.OK]
    assert runner.requests[-1].provisional and runner.requests[-1].reason == "stale"
    # The provisional send alerts itself (tests/test_freshness_e2e.py); the daemon does not.
    assert alerts == [] and daemon.holds.holds()[0].state is HoldState.PROVISIONAL
    now[0] = T0 + 7 * HOUR  # still incomplete: the final waits, no alert
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.HELD]
    assert not runner.requests[-1].provisional and alerts == []
    runner.arrived = True
    now[0] = T0 + 8 * HOUR  # complete: the plain send delivers the final report
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.OK]
    assert daemon.holds.holds() == []
    now[0] = T0 + 10 * HOUR
    assert daemon.recheck() == [] and len(runner.requests) == 9


def test_a_restarted_daemon_resumes_the_hold_from_the_first_hold(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    daemon, _, now, alerts = daemon_for(tmp_path)
    request = fire(daemon)
    now[0] = T0 + HOUR
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.HELD]
    now[0] = T0 + 90 * timedelta(minutes=1)
    daemon, runner = restart(daemon, now, alerts)  # e.g. a deploy, 30 min after the re-check
    [hold] = daemon.holds.holds()
    assert (hold.since, hold.last_try, hold.rechecks, hold.state) == (
        T0, T0 + HOUR, 1, HoldState.HELD)
    # Started for real: the catch-up plans the held period and leaves it to the book.
    caplog.set_level(logging.INFO, logger="reports")
    daemon.start()
    daemon.stop()
    [planned] = [dict(getattr(r, "fields", {})) for r in caplog.records
                 if getattr(r, "event", None) == "catchup.held"]
    assert planned["period"] == request.period.key and runner.requests == []
    daemon, runner = restart(daemon, now, alerts)
    assert daemon.recheck() == []  # the next look is an hour after the last one, not now
    now[0] = T0 + 2 * HOUR
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.HELD]
    now[0] = T0 + 6 * HOUR  # hold_for counts from the first hold, before the restart
    assert [(o.kind, r.provisional) for o, r in zip(daemon.recheck(), runner.requests[-1:],
                                                    strict=True)] == [(OutcomeKind.OK, True)]
    assert alerts == []  # the provisional send alerts, not the daemon
    now[0] = T0 + 6 * HOUR + 10 * timedelta(minutes=1)
    daemon, runner = restart(daemon, now, alerts)
    [hold] = daemon.holds.holds()
    assert (hold.state, hold.since, hold.rechecks) == (HoldState.PROVISIONAL, T0, 2)
    assert daemon.recheck() == [] and alerts == []
    runner.arrived = True
    now[0] = T0 + 7 * HOUR
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.OK]
    assert not runner.requests[-1].provisional
    daemon, runner = restart(daemon, now, alerts)
    assert daemon.holds.holds() == [] and daemon.recheck() == [] and alerts == []


@pytest.mark.parametrize("on_stale", ["skip", "alert"])
def test_stale_without_provisional(tmp_path: Path, on_stale: str) -> None:
    daemon, runner, now, alerts = daemon_for(tmp_path, on_stale)
    request = fire(daemon)
    now[0] = T0 + 6 * HOUR
    assert daemon.recheck() == []
    word = "skipped" if on_stale == "skip" else "still held"
    assert alerts == [f"ibl-reports: acme-weekly {word} for 2026-11-09_2026-11-15"]
    now[0] = T0 + 6 * HOUR + timedelta(minutes=5)
    daemon, runner = restart(daemon, now, alerts)  # the stale stage survives a restart
    assert daemon.holds.without_held([request]) == []
    now[0] = T0 + 7 * HOUR
    if on_stale == "skip":
        assert daemon.recheck() == [] and daemon.holds.holds() == []
    else:
        runner.arrived = True
        assert [o.kind for o in daemon.recheck()] == [OutcomeKind.OK]
        assert not any(r.provisional for r in runner.requests)
    assert len(alerts) == 1


@pytest.mark.parametrize(("catch_up", "kept"), [
    pytest.param({}, 1, id="latest"),
    pytest.param({"catch_up": "all", "catch_up_max_periods": 2}, 2, id="all-2"),
])
def test_a_given_up_hold_is_pruned_once_the_catch_up_cannot_send_its_period(
    tmp_path: Path, catch_up: dict[str, object], kept: int,
) -> None:
    daemon, _, now, alerts = daemon_for(tmp_path, "skip", **catch_up)
    request = fire(daemon)
    now[0] = T0 + 6 * HOUR
    assert daemon.recheck() == [] and len(alerts) == 1  # given up, told once

    def stored() -> list[HoldState]:
        return [h.state for h in daemon.holds.store.load()]

    week = timedelta(days=7)
    now[0] = T0 + week - timedelta(minutes=1)
    assert daemon.recheck() == [] and stored() == [HoldState.GIVEN_UP]
    # Kept while a restart's catch-up would still send the period (the latest fire's period,
    # or the last catch_up_max_periods): the restarted daemon leaves it alone.
    for weeks in range(1, kept):
        now[0] = T0 + weeks * week
        assert daemon.recheck() == [] and stored() == [HoldState.GIVEN_UP]
        assert restart(daemon, now, alerts)[0].holds.without_held([request]) == []
    now[0] = T0 + kept * week  # out of the catch-up's reach: the row goes
    assert daemon.recheck() == [] and stored() == []
    again, _ = restart(daemon, now, alerts)
    assert again.holds.holds() == [] and again.recheck() == [] and len(alerts) == 1


def test_the_holds_of_a_report_removed_from_config_are_deleted_at_start(tmp_path: Path) -> None:
    daemon, _, now, alerts = daemon_for(tmp_path)
    fire(daemon)
    other = write_config(tmp_path, [{"name": "acme-monthly", "period": "monthly",
                                     "schedule": "0 7 1 * *", "timezone": "UTC"}])
    restarted = Daemon(other, clock=lambda: now[0], runner=GateRunner(),
                       is_done=lambda r, p: False, alerter=lambda s, t: alerts.append(s))
    assert restarted.holds.holds() == [] and restarted.holds.store.load() == []
