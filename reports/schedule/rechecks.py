"""The daemon's held and provisional periods: recorded from run outcomes, looked at every tick.

A scheduled ``send`` that exits 3 (held by the freshness gate) leaves its period here, and so
does a ``send`` run by hand: every send that holds a period, or sends it provisional, notes it
in the state database (``reports.gate.note_hold``), and the book reads the store again on every
tick, so it looks after those periods as after its own. On every tick ``due`` asks
``reports.schedule.holds.decide`` what each one needs now and returns the runs to make: a plain
send again (the data may have arrived; after a provisional send it delivers the final report),
or a send marked provisional once ``hold_for`` has passed (``on_stale``).

The first hold of a period and its first provisional delivery are alerted by the ``send`` itself
(once per period each, manual or scheduled; ``reports.state.gatealerts`` records them); the book
alerts only once when a period goes stale without a send (``skip``, ``alert``).

Every change is stored in the state database (``reports.state.holds``, through the ``HoldStore``
seam) before its alert goes out. A restarted daemon reads the holds back: the catch-up leaves
held periods to the book, ``hold_for`` counts from the first hold, re-checks resume
``hold_retry_every`` after the last one, and no stage is alerted twice. A state database that
cannot be written is logged; the book goes on in memory.

Pruning: a row goes when the final report has gone out; a given-up row (``skip``, or past the
report's next fire time) stays while the catch-up could still send its period after a restart
(``catchup.in_reach``: the latest fire's period, or the last ``catch_up_max_periods``) and is
deleted on the first tick after that; the rows of a report no longer in config.toml are deleted
when the daemon starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from reports.config import Config
from reports.logs import log_event
from reports.report.periods import Clock, Period
from reports.schedule.alerts import Alerter, alert_hold
from reports.schedule.catchup import in_reach
from reports.schedule.firetimes import RunRequest, next_fire_time
from reports.schedule.holds import Action, Hold, HoldPolicy, HoldState, after, decide
from reports.schedule.runner import OutcomeKind, RunOutcome

if TYPE_CHECKING:
    from reports.state.ledger import Ledger

# The daemon's events keep one logger name, whichever module of the stage logs them.
log = logging.getLogger("reports.schedule.scheduler")

Key = tuple[str, Period]


def policy_for(config: Config, report_name: str) -> HoldPolicy:
    """The report's hold policy from its effective ``[freshness]`` settings."""
    report = config.report(report_name)
    settings = config.freshness_for(report)
    return HoldPolicy(settings.retry_every(), settings.hold_duration(report.period),
                      settings.on_stale)


class HoldStore(Protocol):
    """Where the book keeps its holds across restarts."""

    def load(self) -> list[Hold]: ...

    def save(self, hold: Hold) -> None: ...

    def drop(self, report: str, period: Period) -> None: ...


class LedgerHoldStore:
    """The holds in the state database (opened for each change: holds change rarely)."""

    def __init__(self, config: Config) -> None:
        self._state = config.state

    def _open(self) -> Ledger:
        from reports.state.ledger import Ledger

        return Ledger(self._state.url, stuck_after_s=self._state.stuck_after_s)

    def load(self) -> list[Hold]:
        with self._open() as ledger:
            return [Hold(r.report, r.period, r.as_of, r.since, r.last_try, r.until,
                         HoldState(r.state), r.reason, r.rechecks)
                    for r in ledger.hold_records()]

    def save(self, hold: Hold) -> None:
        from reports.state.holds import HoldRecord

        with self._open() as ledger:
            ledger.save_hold(HoldRecord(
                hold.report, hold.period, hold.as_of, hold.since, hold.last_try, hold.until,
                hold.rechecks, hold.state.value, hold.reason))

    def drop(self, report: str, period: Period) -> None:
        with self._open() as ledger:
            ledger.drop_hold(report, period)


class HoldBook:
    """Held and provisional periods of every report, as the daemon sees them."""

    def __init__(self, config: Config, clock: Clock, alerter: Alerter | None,
                 store: HoldStore | None = None) -> None:
        self.config = config
        self.clock = clock
        self.alerter = alerter
        self.store: HoldStore = store or LedgerHoldStore(config)
        self._holds: dict[Key, Hold] | None = None
        self._unsaved: set[Key] = set()
        self._lock = threading.Lock()

    def _book(self) -> dict[Key, Hold]:
        """The holds (under ``_lock``), read from the store on first use."""
        if self._holds is None:
            self._holds = {}
            self._refresh(first=True)
        return self._holds

    def _refresh(self, *, first: bool = False) -> None:
        """Read the store again (under ``_lock``): a ``send`` notes the periods it holds or sends
        provisional, and drops the ones whose final report it delivered. A change the store
        could not take stays as it is in memory."""
        try:
            loaded = self.store.load()
        except Exception as exc:  # an unreadable state database must not stop the daemon
            log_event(log, "holds.unreadable", level=logging.WARNING,
                      error=f"{type(exc).__name__}: {exc}")
            return
        names = {r.name for r in self.config.reports}
        before = self._holds if self._holds is not None else {}
        fresh: dict[Key, Hold] = {}
        for hold in loaded:
            key = (hold.report, hold.period)
            if hold.report not in names:
                if first:  # its job left the job store with it
                    self._write(self.store.drop, hold.report, hold.period)
                    log_event(log, "hold.pruned", report=hold.report, period=hold.period.key,
                              reason="the report is not in config.toml")
                continue
            fresh[key] = hold
            if key not in before and hold.state is not HoldState.GIVEN_UP:
                log_event(log, "hold.resumed" if first else "hold.noted", report=hold.report,
                          period=hold.period.key, state=hold.state.value,
                          since=hold.since.isoformat(), rechecks=hold.rechecks)
        for key in self._unsaved:
            if key in before:
                fresh[key] = before[key]
        self._holds = fresh

    def _put(self, hold: Hold) -> None:
        """Keep ``hold`` (under ``_lock``), in memory and in the store."""
        key = (hold.report, hold.period)
        self._book()[key] = hold
        if self._write(self.store.save, hold):
            self._unsaved.discard(key)
        else:
            self._unsaved.add(key)

    def _drop(self, hold: Hold, event: str, reason: str = "") -> None:
        """Forget ``hold`` (under ``_lock``), in memory and in the store."""
        key = (hold.report, hold.period)
        self._book().pop(key, None)
        self._unsaved.discard(key)
        self._write(self.store.drop, hold.report, hold.period)
        fields: dict[str, Any] = {"reason": reason} if reason else {}
        log_event(log, event, report=hold.report, period=hold.period.key, was=hold.state.value,
                  rechecks=hold.rechecks, **fields)

    def _write(self, how: Callable[..., None], *args: object) -> bool:
        try:
            how(*args)
        except Exception as exc:  # logged; the book goes on in memory
            log_event(log, "holds.unsaved", level=logging.WARNING,
                      error=f"{type(exc).__name__}: {exc}")
            return False
        return True

    def _prune(self, now: datetime) -> None:
        """Delete the given-up holds (under ``_lock``) whose period the catch-up can no longer
        send: kept until then, so a restart does not send a period the scheduler gave up."""
        for hold in list(self._book().values()):
            if hold.state is not HoldState.GIVEN_UP:
                continue
            if hold.until is not None and now < hold.until:
                continue
            if hold.period not in in_reach(self.config.report(hold.report), now):
                self._drop(hold, "hold.pruned", "given up, out of the catch-up's reach")

    def holds(self) -> list[Hold]:
        """Every period being held or awaiting its final report (not the given-up ones)."""
        with self._lock:
            return [h for h in self._book().values() if h.state is not HoldState.GIVEN_UP]

    def without_held(self, requests: Sequence[RunRequest]) -> list[RunRequest]:
        """The catch-up's requests minus the periods this book looks after (or gave up)."""
        with self._lock:
            book = self._book()
            keep = [r for r in requests if (r.report, r.period) not in book]
        for request in requests:
            if request not in keep:
                log_event(log, "catchup.held", report=request.report,
                          period=request.period.key, reason="the hold book looks after it")
        return keep

    def record(self, request: RunRequest, outcome: RunOutcome) -> None:
        """Update the book with how a run of ``request`` ended."""
        key = (request.report, request.period)
        now = self.clock()
        with self._lock:
            known = key in self._book()
            self._refresh()  # the send noted its hold (or provisional delivery) itself
            hold = self._book().get(key)
            if outcome.kind is OutcomeKind.HELD:
                if hold is None or not known:
                    report = self.config.report(request.report)
                    self._put(Hold(
                        request.report, request.period, request.as_of, since=now, last_try=now,
                        until=next_fire_time(report, request.fire_time), reason=outcome.error,
                    ))
                    log_event(log, "hold.started", level=logging.WARNING, report=request.report,
                              period=request.period.key, reason=outcome.error)
                else:  # a scheduled run of a period held by hand is not a re-check
                    self._put(replace(hold, last_try=now, reason=outcome.error,
                                      rechecks=hold.rechecks + (request.reason == "recheck")))
            elif outcome.ok and request.provisional:
                base = hold or Hold(request.report, request.period, request.as_of, now, now, None)
                # The send alerted (its first provisional delivery of the period), not the book.
                self._put(replace(base, state=HoldState.PROVISIONAL, last_try=now))
            elif outcome.ok and hold is not None:
                # The final report went out (or nothing was left to send).
                self._drop(hold, "hold.released")

    def due(self) -> list[RunRequest]:
        """The runs to make now; stale periods that are skipped or alerted are handled here."""
        now = self.clock()
        runs: list[RunRequest] = []
        stale: list[tuple[Hold, Action]] = []
        with self._lock:
            self._refresh()
            self._prune(now)
            for hold in list(self._book().values()):
                policy = policy_for(self.config, hold.report)
                action = decide(hold, policy, now)
                if action is None:
                    continue
                self._put(after(hold, action, now))
                if action in (Action.RETRY, Action.PROVISIONAL):
                    runs.append(RunRequest(
                        hold.report, now, hold.as_of, hold.period,
                        reason="recheck" if action is Action.RETRY else "stale",
                        provisional=action is Action.PROVISIONAL,
                    ))
                else:
                    stale.append((hold, action))
        for hold, action in stale:
            log_event(log, "hold.stale", level=logging.WARNING, report=hold.report,
                      period=hold.period.key, action=action.value, state=hold.state.value)
            if hold.state is HoldState.HELD:  # a provisional one has been announced already
                request = RunRequest(hold.report, now, hold.as_of, hold.period, reason="stale")
                alert_hold(self.alerter, self.config, request,
                           "skipped" if action is Action.SKIP else "stale", hold.reason)
        return runs
