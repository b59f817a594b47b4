"""When the scheduler looks again at a held period, and what it does when it goes stale."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from reports.report.periods import weekly
from reports.schedule.holds import Action, Hold, HoldPolicy, HoldState, after, decide

T0 = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
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
