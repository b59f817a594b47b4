"""The daemon's held and provisional periods: recorded from run outcomes, looked at every tick.

A scheduled ``send`` that exits 3 (held by the freshness gate) leaves its period here. On every
tick ``due`` asks ``reports.schedule.holds.decide`` what each one needs now and returns the runs
to make: a plain send again (the data may have arrived; after a provisional send it delivers the
final report), or a send marked provisional once ``hold_for`` has passed (``on_stale``). The
alert recipients hear once when a period is first held, once when it is sent provisional and
once when it goes stale without a send (``skip``, ``alert``).

Kept in memory: after a restart the catch-up sends the latest period again, which is held again
if its data is still incomplete (``hold_for`` counts from then).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from reports.config import Config
from reports.logs import log_event
from reports.report.periods import Clock, Period
from reports.schedule.alerts import Alerter, alert_hold
from reports.schedule.firetimes import RunRequest, next_fire_time
from reports.schedule.holds import Action, Hold, HoldPolicy, HoldState, after, decide
from reports.schedule.runner import OutcomeKind, RunOutcome

# The daemon's events keep one logger name, whichever module of the stage logs them.
log = logging.getLogger("reports.schedule.scheduler")


def policy_for(config: Config, report_name: str) -> HoldPolicy:
    """The report's hold policy from its effective ``[freshness]`` settings."""
    report = config.report(report_name)
    settings = config.freshness_for(report)
    return HoldPolicy(settings.retry_every(), settings.hold_duration(report.period),
                      settings.on_stale)


class HoldBook:
    """Held and provisional periods of every report, as the daemon sees them."""

    def __init__(self, config: Config, clock: Clock, alerter: Alerter | None) -> None:
        self.config = config
        self.clock = clock
        self.alerter = alerter
        self._holds: dict[tuple[str, Period], Hold] = {}
        self._lock = threading.Lock()

    def holds(self) -> list[Hold]:
        """Every period being held or awaiting its final report."""
        with self._lock:
            return list(self._holds.values())

    def record(self, request: RunRequest, outcome: RunOutcome) -> None:
        """Update the book with how a run of ``request`` ended."""
        key = (request.report, request.period)
        now = self.clock()
        with self._lock:
            hold = self._holds.get(key)
            if outcome.kind is OutcomeKind.HELD:
                if hold is None:
                    report = self.config.report(request.report)
                    self._holds[key] = Hold(
                        request.report, request.period, request.as_of, since=now, last_try=now,
                        until=next_fire_time(report, request.fire_time), reason=outcome.error,
                    )
                    notify = "held"
                else:
                    self._holds[key] = replace(hold, last_try=now, reason=outcome.error)
                    notify = ""
            elif outcome.ok and request.provisional:
                base = hold or Hold(request.report, request.period, request.as_of, now, now, None)
                self._holds[key] = replace(base, state=HoldState.PROVISIONAL, last_try=now)
                notify = "provisional"
            elif outcome.ok and hold is not None:
                del self._holds[key]  # the final report went out (or nothing was left to send)
                log_event(log, "hold.released", report=request.report,
                          period=request.period.key, was=hold.state.value)
                notify = ""
            else:
                notify = ""
        if notify == "held":
            log_event(log, "hold.started", level=logging.WARNING, report=request.report,
                      period=request.period.key, reason=outcome.error)
        if notify:
            alert_hold(self.alerter, self.config, request, notify, outcome.error)

    def due(self) -> list[RunRequest]:
        """The runs to make now; stale periods that are skipped or alerted are handled here."""
        now = self.clock()
        runs: list[RunRequest] = []
        stale: list[tuple[Hold, Action]] = []
        with self._lock:
            for key, hold in list(self._holds.items()):
                policy = policy_for(self.config, hold.report)
                action = decide(hold, policy, now)
                if action is None:
                    continue
                self._holds[key] = after(hold, action, now)
                if action in (Action.RETRY, Action.PROVISIONAL):
                    runs.append(RunRequest(
                        hold.report, now, hold.as_of, hold.period,
                        reason="recheck" if action is Action.RETRY else "stale",
                        provisional=action is Action.PROVISIONAL,
                    ))
                else:
                    stale.append((hold, action))
                    if action is Action.SKIP:
                        del self._holds[key]
        for hold, action in stale:
            log_event(log, "hold.stale", level=logging.WARNING, report=hold.report,
                      period=hold.period.key, action=action.value, state=hold.state.value)
            if hold.state is HoldState.HELD:  # a provisional one has been announced already
                request = RunRequest(hold.report, now, hold.as_of, hold.period, reason="stale")
                alert_hold(self.alerter, self.config, request,
                           "skipped" if action is Action.SKIP else "stale", hold.reason)
        return runs
