"""The scheduler daemon (``ibl-reports schedule``): start, the loop, runs, shutdown.

One APScheduler job per ``[[reports]]`` entry, persisted in the state database
(``apscheduler_jobs``) and synced to config.toml on every start. When a job fires at instant T,
the daemon sends the period that just completed (as if today were T's date in the report's time
zone) through the RUNNER seam; the default runner is the ``send`` command in a subprocess, so a
scheduled send and a manual one share one code path and one idempotent ledger.

Start-up, top to bottom (``Daemon.start``):
  1. take the single-scheduler lock (``reports.schedule.lock``);
  2. sync the job store to config.toml (add, change, remove; ``reports.schedule.jobstore``);
  3. plan the catch-up of periods missed while down (``reports.schedule.catchup``, pure) and send
     them oldest first, one run at a time per report;
  4. tick: rewrite the health file (``reports.schedule.health``) and look again at held periods
     (``reports.schedule.rechecks``, kept in the state database) every ``tick_s`` until
     SIGTERM/SIGINT.

Shutdown stops taking new runs, lets the current ones finish within ``shutdown_grace_s``, then
terminates their process groups (``reports.schedule.runner``). A run that fails (non-zero exit,
time limit, crash) is logged and produces exactly one alert message to ``[alerts] recipients``
(``reports.schedule.alerts``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reports.config import Config, ReportConfig
from reports.errors import ReportsError
from reports.logs import LogFormat, configure_logging, log_event, remove_handler, secrets_from_env
from reports.report.periods import Clock, Period
from reports.schedule import jobstore
from reports.schedule.alerts import Alerter, alert_failed_run, mail_alerter
from reports.schedule.catchup import CatchUpPlan, DoneCheck, ledger_done_check, plan_catch_up
from reports.schedule.firetimes import RunRequest, last_fire_time, period_for_fire
from reports.schedule.health import HealthFile
from reports.schedule.lock import SchedulerLock, acquire_scheduler_lock
from reports.schedule.pauses import PauseGate
from reports.schedule.rechecks import HoldBook
from reports.schedule.runner import (
    KILL_GRACE_S,
    OutcomeKind,
    Runner,
    RunOutcome,
    StoppableRunner,
    SubprocessRunner,
    send_command,
)

log = logging.getLogger("reports.schedule.scheduler")

DEFAULT_SHUTDOWN_GRACE_S = 30.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


_ACTIVE: Daemon | None = None
_ACTIVE_LOCK = threading.Lock()


def fire(report_name: str) -> None:
    """The APScheduler job function (importable, picklable args): fire one report now."""
    daemon = _ACTIVE
    if daemon is None:
        log_event(log, "fire.ignored", level=logging.WARNING, report=report_name,
                  reason="no scheduler is running in this process")
        return
    daemon.fire_scheduled(report_name)


@dataclass
class _Counter:
    active: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)


class Daemon:
    """The running scheduler: lock, job store, catch-up, runs, alerts and health."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = _utc_now,
        runner: Runner | None = None,
        is_done: DoneCheck | None = None,
        alerter: Alerter | None = None,
        shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S,
    ) -> None:
        self.config = config
        self.clock = clock
        self.runner: Runner = runner or SubprocessRunner(
            send_command(config), timeout_s=config.scheduler.run_timeout_s
        )
        self._is_done = is_done
        self._pauses = PauseGate(config)
        self.alerter = alerter
        self.shutdown_grace_s = shutdown_grace_s
        self.reports = {r.name: r for r in config.reports}
        self._report_locks = {name: threading.Lock() for name in self.reports}
        self._handled: dict[str, set[datetime]] = {name: set() for name in self.reports}
        self._stopping = threading.Event()
        self._runs = _Counter()
        self._threads: list[threading.Thread] = []
        self._lock: SchedulerLock | None = None
        self._scheduler: Any = None
        self._health = HealthFile(config.scheduler.health_file)
        self._close_ledger: Callable[[], None] | None = None
        self.last_sync: dict[str, list[str]] = {}
        self.holds = HoldBook(config, clock, alerter)

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Take the lock, sync the job store, start firing and start the catch-up."""
        global _ACTIVE
        self._lock = acquire_scheduler_lock(self.config.state.url)
        try:
            self._scheduler = jobstore.build_scheduler(self.config, len(self.reports))
            self._scheduler.start(paused=True)
            self.last_sync = self.sync_jobs()
            with _ACTIVE_LOCK:
                _ACTIVE = self
            self._scheduler.resume()
            log_event(log, "scheduler.started", pid=os.getpid(), reports=len(self.reports),
                      state=_safe_url(self.config.state.url))
            for report in self.reports.values():
                jobstore.log_next_fire(report, self.clock())
            self._start_catch_up()
            self.write_health()
        except BaseException:
            self._release()
            raise

    def stop(self) -> None:
        """Stop taking runs, let current ones finish (bounded), release everything."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.pause()
        grace = self.shutdown_grace_s
        if isinstance(self.runner, StoppableRunner):
            self.runner.stop(grace)
        deadline = time.monotonic() + grace + KILL_GRACE_S + 5.0
        with self._runs.cond:
            while self._runs.active and time.monotonic() < deadline:
                self._runs.cond.wait(timeout=0.1)
            left = self._runs.active
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.write_health(state="stopped")
        log_event(log, "scheduler.stopped", pid=os.getpid(), unfinished_runs=left)
        self._release()

    def _release(self) -> None:
        global _ACTIVE
        with _ACTIVE_LOCK:
            if _ACTIVE is self:
                _ACTIVE = None
        if self._scheduler is not None:
            with contextlib.suppress(Exception):  # already stopped
                self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._close_ledger is not None:
            self._close_ledger()
            self._close_ledger = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def serve(self, stop: threading.Event, signals: Sequence[int] = ()) -> None:
        """Rewrite the health file every tick until ``stop`` is set or a signal arrived."""
        tick = self.config.scheduler.tick_s
        next_tick = time.monotonic() + tick
        # Short waits: a signal handler only appends to ``signals`` (logging or taking locks
        # inside a handler can deadlock), so the loop must notice it soon.
        while not stop.wait(min(0.1, tick)) and not signals:
            if time.monotonic() >= next_tick:
                self.write_health()
                self._start_thread(self.recheck, "recheck")
                next_tick = time.monotonic() + tick
        if signals:
            log_event(log, "scheduler.stopping", signal=signal.Signals(signals[0]).name)

    def wakeup(self) -> None:
        """Make APScheduler re-check its jobs now (after the clock moved)."""
        if self._scheduler is not None:
            self._scheduler.wakeup()

    # ---- job store ---------------------------------------------------------------------

    def sync_jobs(self) -> dict[str, list[str]]:
        """Make the job store match config.toml; returns the names added/changed/removed."""
        return jobstore.sync_jobs(self._scheduler, self.reports, fire)

    # ---- runs --------------------------------------------------------------------------

    def is_done(self, report: ReportConfig, period: Period) -> bool:
        """Whether the period is delivered; an unreadable ledger counts as not done."""
        if self._is_done is None:
            self._is_done, self._close_ledger = ledger_done_check(self.config)
        try:
            return self._is_done(report, period)
        except Exception as exc:  # the send itself is idempotent; re-running is safe
            log_event(log, "ledger.unreadable", level=logging.WARNING, report=report.name,
                      period=period.key, error=f"{type(exc).__name__}: {exc}")
            return False

    def plan(self) -> list[CatchUpPlan]:
        """The catch-up of every report as of now."""
        now = self.clock()
        plans = []
        for report in self.reports.values():
            plan = plan_catch_up(report, now, functools.partial(self.is_done, report))
            plans.append(plan)
            if plan.skipped:
                log_event(log, "catchup.skipped", report=report.name, policy=plan.policy,
                          periods=",".join(r.period.key for r in plan.skipped))
            if plan.due:
                log_event(log, "catchup.planned", report=report.name, policy=plan.policy,
                          periods=",".join(r.period.key for r in plan.due))
        return plans

    def _start_catch_up(self) -> None:
        for plan in self.plan():  # a held period is the hold book's (it resumes its clock)
            if due := self.holds.without_held(plan.due):
                self._start_thread(functools.partial(self._run_all, due), f"catch-up-{plan.report}")

    def _start_thread(self, target: Callable[[], object], name: str) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def recheck(self) -> list[RunOutcome]:
        """Look again at held and provisional periods now (``reports.schedule.rechecks``)."""
        outcomes = []
        for request in self.holds.due():
            if self._stopping.is_set():
                break
            outcome = self.execute(request)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _run_all(self, requests: Sequence[RunRequest]) -> None:
        for request in requests:
            if self._stopping.is_set():
                return
            self.execute(request)

    def fire_scheduled(self, report_name: str) -> None:
        """A job fired: send the period completed before the latest fire time."""
        report = self.reports.get(report_name)
        if report is None or self._stopping.is_set():
            return
        fired = last_fire_time(report, self.clock())
        if fired is None:
            return
        as_of, period = period_for_fire(report, fired)
        self.execute(RunRequest(report.name, fired, as_of, period, reason="scheduled"))

    def execute(self, request: RunRequest) -> RunOutcome | None:
        """Run one request (one at a time per report); log it and alert on failure."""
        with self._report_locks[request.report]:
            if self._stopping.is_set():
                log_event(log, "run.skipped", report=request.report, period=request.period.key,
                          reason="the scheduler is shutting down")
                return None
            if self._pauses.skips(request.report, request.period.key):
                return None
            if request.reason in ("scheduled", "catch-up"):  # a fire runs once
                if request.fire_time in self._handled[request.report]:
                    return None
                self._handled[request.report].add(request.fire_time)
            with self._runs.cond:
                self._runs.active += 1
            try:
                return self._execute(request)
            finally:
                with self._runs.cond:
                    self._runs.active -= 1
                    self._runs.cond.notify_all()

    def _execute(self, request: RunRequest) -> RunOutcome:
        fields: dict[str, Any] = {
            "report": request.report, "period": request.period.key,
            "as_of": request.as_of.isoformat(), "reason": request.reason,
            "fire_time": request.fire_time.astimezone(UTC).isoformat(),
        }
        log_event(log, "run.started", **fields)
        try:
            outcome = self.runner(request)
        except Exception as exc:  # a runner bug must not kill the daemon
            outcome = RunOutcome(OutcomeKind.FAILED, error=f"{type(exc).__name__}: {exc}")
        done: dict[str, Any] = {
            **fields, "outcome": outcome.kind.value, "exit_code": outcome.exit_code,
            "duration_s": round(outcome.duration_s, 3),
        }
        self.holds.record(request, outcome)
        if outcome.ok:
            log_event(log, "run.finished", **done, provisional=request.provisional)
        elif outcome.kind is OutcomeKind.HELD:  # alerted once, by the send that was held
            log_event(log, "run.held", level=logging.WARNING, **done, error=outcome.error)
        elif outcome.kind is OutcomeKind.INTERRUPTED:
            log_event(log, "run.interrupted", level=logging.WARNING, **done,
                      error=outcome.error)
        else:
            log_event(log, "run.failed", level=logging.ERROR, **done, error=outcome.error)
            alert_failed_run(self.alerter, self.config, request, outcome)
        jobstore.log_next_fire(self.reports[request.report], self.clock())
        return outcome

    # ---- health ------------------------------------------------------------------------

    def write_health(self, state: str = "running") -> None:
        """Atomically rewrite the health file: last tick (UTC ISO), pid, state."""
        self._health.write(state)


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return "(unparsable URL)"


def run_scheduler(
    config: Config,
    *,
    clock: Clock = _utc_now,
    runner: Runner | None = None,
    log_format: str = "text",
    is_done: DoneCheck | None = None,
    alerter: Alerter | None = None,
    env: Mapping[str, str] | None = None,
    shutdown_grace_s: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the daemon until SIGTERM/SIGINT (or ``stop``); returns the exit code (0).

    Raises SchedulerLockError when another scheduler holds the state database.
    """
    env = os.environ if env is None else env
    fmt: LogFormat = "json" if log_format == "json" else "text"
    secrets = secrets_from_env(
        env, [config.api.api_key_env, config.email.password_env,
              config.privacy.pseudonym_key_env], [config.state.url]
    )
    handler = configure_logging(fmt, secrets=secrets)
    # APScheduler's own warnings (missed runs, job store errors) go through the same handler.
    aps_logger = logging.getLogger("apscheduler")
    aps_logger.addHandler(handler)
    aps_logger.setLevel(logging.WARNING)
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    try:
        daemon = Daemon(
            config, clock=clock, runner=runner, is_done=is_done,
            alerter=alerter if alerter is not None else mail_alerter(config, env),
            shutdown_grace_s=config.scheduler.shutdown_grace_s
            if shutdown_grace_s is None else shutdown_grace_s,
        )
        received: list[int] = []
        if threading.current_thread() is threading.main_thread():
            def on_signal(signum: int, _frame: Any) -> None:
                received.append(signum)

            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, on_signal)
        daemon.start()
        try:
            daemon.serve(stop, received)
        finally:
            daemon.stop()
        return 0
    except ReportsError as exc:
        log_event(log, "scheduler.error", level=logging.ERROR, error=str(exc))
        raise
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        aps_logger.removeHandler(handler)
        remove_handler(handler)
