"""The scheduler daemon (``ibl-reports schedule``) and its job list (``ibl-reports jobs``).

One APScheduler job per ``[[reports]]`` entry, persisted in the state database
(``apscheduler_jobs``) and synced to config.toml on every start. When a job fires at instant T,
the daemon sends the period that just completed (as if today were T's date in the report's time
zone) through the RUNNER seam; the default runner is the ``send`` command in a subprocess, so a
scheduled send and a manual one share one code path and one idempotent ledger.

Start-up, top to bottom (``Daemon.start``):
  1. take the single-scheduler lock (``reports.schedule.schedlock``);
  2. sync the job store to config.toml (add, change, remove);
  3. plan the catch-up of periods missed while down (``plan_catch_up``, a pure function) and send
     them oldest first, one report at a time per report;
  4. tick: rewrite the health file every ``tick_s`` until SIGTERM/SIGINT.

Shutdown stops taking new runs, lets the current ones finish within ``shutdown_grace_s``, then
terminates their process groups. A run that fails (non-zero exit, time limit, crash) is logged
and produces exactly one alert message to ``[alerts] recipients``.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from reports import cron
from reports.config import Config, ReportConfig
from reports.errors import MailError, ReportsError
from reports.logs import (
    LOG_FORMAT_ENV,
    LogFormat,
    configure_logging,
    log_event,
    remove_handler,
    secrets_from_env,
)
from reports.report.periods import Clock, Period, for_kind, local_date
from reports.schedule.schedlock import SchedulerLock, acquire_scheduler_lock

log = logging.getLogger("reports.schedule.scheduler")
_child_log = logging.getLogger("reports.run")

JOBS_TABLE = "apscheduler_jobs"
DEFAULT_SHUTDOWN_GRACE_S = 30.0
KILL_GRACE_S = 5.0
OUTPUT_TAIL_CHARS = 2000
# Enough fire times to cover 52 periods of an every-minute schedule is not a sane config; this
# bounds the work of one look-back instead.
MAX_FIRE_TIMES = 200_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Fire times


def trigger_for(report: ReportConfig) -> CronTrigger:
    """The cron trigger of a report, in the report's time zone (crontab weekday numbering)."""
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


def _lookback(report: ReportConfig, periods: int) -> timedelta:
    per = 7 if report.period == "weekly" else 31
    return timedelta(days=per * (periods + 1) + 2)


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


# --------------------------------------------------------------------------------------------
# Catch-up (pure)


@dataclass(frozen=True)
class RunRequest:
    """One scheduled send: which report, for which fire instant, as of which day."""

    report: str
    fire_time: datetime
    as_of: date
    period: Period
    reason: str = "scheduled"  # "scheduled" or "catch-up"


@dataclass(frozen=True)
class CatchUpPlan:
    """What a report sends on start for periods whose fire time passed while we were down."""

    report: str
    policy: str
    due: tuple[RunRequest, ...]
    skipped: tuple[RunRequest, ...] = ()


def plan_catch_up(
    report: ReportConfig, now: datetime, is_done: Callable[[Period], bool]
) -> CatchUpPlan:
    """Periods with a past fire time and no completed delivery, oldest first, per the policy.

    ``latest`` considers only the most recent fire time's period, ``all`` the last
    ``catch_up_max_periods`` periods, ``none`` sends nothing (the pending ones are ``skipped``).
    """
    horizon = 1 if report.catch_up == "latest" else report.catch_up_max_periods
    # The earliest fire time of each period seen in the look-back window.
    first_fire: dict[Period, tuple[datetime, date]] = {}
    for t in fire_times(report, now - _lookback(report, horizon), now):
        as_of, period = period_for_fire(report, t)
        first_fire.setdefault(period, (t, as_of))
    periods = sorted(first_fire)[-horizon:]
    pending = tuple(
        RunRequest(report.name, first_fire[p][0], first_fire[p][1], p, reason="catch-up")
        for p in periods
        if not is_done(p)
    )
    if report.catch_up == "none":
        return CatchUpPlan(report.name, report.catch_up, due=(), skipped=pending)
    return CatchUpPlan(report.name, report.catch_up, due=pending)


# --------------------------------------------------------------------------------------------
# Runners


class OutcomeKind(enum.StrEnum):
    """How a run ended."""

    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    INTERRUPTED = "interrupted"  # stopped by a scheduler shutdown


@dataclass(frozen=True)
class RunOutcome:
    """The result of one run, as the daemon logs and alerts it."""

    kind: OutcomeKind
    exit_code: int | None = None
    error: str = ""
    output_tail: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK


class Runner(Protocol):
    """Runs one scheduled send to completion and reports how it ended."""

    def __call__(self, request: RunRequest) -> RunOutcome: ...


@runtime_checkable
class StoppableRunner(Protocol):
    """A runner that can be told the daemon is shutting down."""

    def __call__(self, request: RunRequest) -> RunOutcome: ...

    def stop(self, grace_s: float) -> None:
        """Let current runs finish for ``grace_s`` seconds, then terminate them."""


CommandBuilder = Callable[[RunRequest], Sequence[str]]


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}


def _relay_child_logs(output: str) -> str:
    """Re-log the child's JSON log lines here; return the tail of its other output."""
    plain: list[str] = []
    for line in output.splitlines():
        record: Any = None
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            fields = {k: v for k, v in record.items()
                      if k not in ("ts", "level", "logger", "event")}
            level = _LEVELS.get(str(record.get("level")), logging.INFO)
            log_event(_child_log, record["event"], level=level, **fields)
        else:
            plain.append(line)
    return "\n".join(plain)[-OUTPUT_TAIL_CHARS:].strip()


def send_command(config: Config) -> CommandBuilder:
    """The ``ibl-reports send`` command line for a request: the same path as a manual send."""
    source = str(config.source)

    def build(request: RunRequest) -> list[str]:
        return [
            sys.executable, "-m", "reports.cli", "--config", source, "send",
            "--report", request.report, "--as-of", request.as_of.isoformat(),
        ]

    return build


class SubprocessRunner:
    """Runs a command per request in its own process group, with a time limit.

    A run past ``timeout_s`` has its whole process group terminated (SIGTERM, then SIGKILL after
    a few seconds) and ends TIMED_OUT; it never blocks later runs.
    """

    def __init__(
        self, command: CommandBuilder, *, timeout_s: float, kill_grace_s: float = KILL_GRACE_S,
        env: Mapping[str, str] | None = None, poll_s: float = 0.05,
    ) -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.env = dict(env) if env is not None else None
        self.poll_s = poll_s
        self._stop_at: float | None = None

    def stop(self, grace_s: float) -> None:
        """Current runs may continue ``grace_s`` more seconds; then they are terminated."""
        self._stop_at = time.monotonic() + grace_s

    def __call__(self, request: RunRequest) -> RunOutcome:
        started = time.monotonic()
        deadline = started + self.timeout_s
        with tempfile.TemporaryFile() as output:
            try:
                # The child logs its run and delivery transitions as JSON lines, which are
                # relayed below through this daemon's own log handler and format.
                child_env = {**(self.env if self.env is not None else os.environ),
                             LOG_FORMAT_ENV: "json"}
                proc = subprocess.Popen(
                    list(self.command(request)), stdin=subprocess.DEVNULL, stdout=output,
                    stderr=subprocess.STDOUT, start_new_session=True, env=child_env,
                )
            except OSError as exc:
                return RunOutcome(
                    OutcomeKind.FAILED, error=f"could not start the run: {exc.strerror}"
                )
            log_event(log, "run.process", report=request.report, period=request.period.key,
                      pid=proc.pid)
            kind: OutcomeKind | None = None
            while True:
                try:
                    code = proc.wait(timeout=self.poll_s)
                    break
                except subprocess.TimeoutExpired:
                    now = time.monotonic()
                    if now >= deadline:
                        kind = OutcomeKind.TIMED_OUT
                    elif self._stop_at is not None and now >= self._stop_at:
                        kind = OutcomeKind.INTERRUPTED
                    if kind is not None:
                        code = self._terminate(proc)
                        break
            duration = time.monotonic() - started
            output.seek(0)
            tail = _relay_child_logs(output.read().decode("utf-8", "replace"))
        if kind is OutcomeKind.TIMED_OUT:
            return RunOutcome(
                kind, code, f"the run took longer than run_timeout_s = {self.timeout_s:g} s and "
                "was stopped", tail, duration,
            )
        if kind is OutcomeKind.INTERRUPTED:
            return RunOutcome(kind, code, "the scheduler shut down during the run", tail, duration)
        if code == 0:
            return RunOutcome(OutcomeKind.OK, 0, "", tail, duration)
        last = tail.splitlines()[-1] if tail else ""
        return RunOutcome(
            OutcomeKind.FAILED, code, f"the send command exited with status {code}"
            + (f": {last}" if last else ""), tail, duration,
        )

    def _terminate(self, proc: subprocess.Popen[bytes]) -> int:
        for sig, wait_s in ((signal.SIGTERM, self.kill_grace_s), (signal.SIGKILL, 30.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                return proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        return proc.wait()


# --------------------------------------------------------------------------------------------
# The daemon

Alerter = Callable[[str, str], None]
"""Sends one alert message: (subject, text)."""

DoneCheck = Callable[[ReportConfig, Period], bool]
"""Whether a report's period has a completed delivery to all its recipients."""

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


def ledger_done_check(config: Config) -> tuple[DoneCheck, Callable[[], None]]:
    """The default DoneCheck (ask the ledger in the state database) and its close function."""
    from reports.state.ledger import Ledger

    ledger = Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)

    def done(report: ReportConfig, period: Period) -> bool:
        return ledger.period_done(report.name, period, list(report.recipients))

    return done, ledger.close


def mail_alerter(config: Config, env: Mapping[str, str]) -> Alerter | None:
    """The default Alerter: mail ``[alerts] recipients`` (None when there are none)."""
    recipients = list(config.alerts.recipients)
    if not recipients:
        return None

    def send(subject: str, text: str) -> None:
        from reports.delivery.mailer import backend_from_config, send_alert

        backend = backend_from_config(config.email, env)
        report = send_alert(backend, config.email.from_, recipients, subject, text)
        if report.failed:
            raise MailError("the alert was not delivered: " + "; ".join(report.lines()))

    return send


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
        self._health_warned = False
        self._close_ledger: Callable[[], None] | None = None
        self.last_sync: dict[str, list[str]] = {}

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Take the lock, sync the job store, start firing and start the catch-up."""
        global _ACTIVE
        self._lock = acquire_scheduler_lock(self.config.state.url)
        try:
            self._scheduler = self._build_scheduler()
            self._scheduler.start(paused=True)
            self.last_sync = self.sync_jobs()
            with _ACTIVE_LOCK:
                _ACTIVE = self
            self._scheduler.resume()
            log_event(log, "scheduler.started", pid=os.getpid(), reports=len(self.reports),
                      state=_safe_url(self.config.state.url))
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
                next_tick = time.monotonic() + tick
        if signals:
            log_event(log, "scheduler.stopping", signal=signal.Signals(signals[0]).name)

    def wakeup(self) -> None:
        """Make APScheduler re-check its jobs now (after the clock moved)."""
        if self._scheduler is not None:
            self._scheduler.wakeup()

    # ---- job store ---------------------------------------------------------------------

    def _build_scheduler(self) -> Any:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        return BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(
                url=self.config.state.url, tablename=JOBS_TABLE
            )},
            executors={"default": ThreadPoolExecutor(max_workers=max(2, len(self.reports)))},
            job_defaults={
                "coalesce": True, "max_instances": 1,
                "misfire_grace_time": self.config.scheduler.misfire_grace_s,
            },
            timezone=UTC,
        )

    def sync_jobs(self) -> dict[str, list[str]]:
        """Make the job store match config.toml; returns the names added/changed/removed."""
        sched = self._scheduler
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [],
                                          "unchanged": []}
        stored = {job.id: job for job in sched.get_jobs()}
        for job_id in sorted(set(stored) - set(self.reports)):
            sched.remove_job(job_id)
            changes["removed"].append(job_id)
            log_event(log, "job.removed", report=job_id)
        for name, report in self.reports.items():
            trigger = trigger_for(report)
            old = stored.get(name)
            # Always replace: the next fire time is computed from now, missed fires are the
            # catch-up's business (not APScheduler's misfire handling).
            sched.add_job(
                fire, trigger, args=[name], id=name, name=name, replace_existing=True,
            )
            if old is None:
                kind = "added"
            elif _trigger_key(old.trigger) != _trigger_key(trigger) or old.args != (name,):
                kind = "changed"
            else:
                kind = "unchanged"
            changes[kind].append(name)
            log_event(log, f"job.{kind}", report=name, schedule=report.schedule,
                      timezone=report.timezone)
        return changes

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

    def _is_done_for(self, report: ReportConfig, period: Period) -> bool:
        return self.is_done(report, period)

    def plan(self) -> list[CatchUpPlan]:
        """The catch-up of every report as of now."""
        now = self.clock()
        plans = []
        for report in self.reports.values():
            plan = plan_catch_up(report, now, functools.partial(self._is_done_for, report))
            plans.append(plan)
            if plan.skipped:
                log_event(log, "catchup.skipped", report=report.name, policy=plan.policy,
                          periods=",".join(r.period.key for r in plan.skipped))
            if plan.due:
                log_event(log, "catchup.planned", report=report.name, policy=plan.policy,
                          periods=",".join(r.period.key for r in plan.due))
        return plans

    def _start_catch_up(self) -> None:
        for plan in self.plan():
            if not plan.due:
                continue
            thread = threading.Thread(
                target=self._run_all, args=(plan.due,), name=f"catch-up-{plan.report}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

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
        if outcome.ok:
            log_event(log, "run.finished", **done)
        elif outcome.kind is OutcomeKind.INTERRUPTED:
            log_event(log, "run.interrupted", level=logging.WARNING, **done,
                      error=outcome.error)
        else:
            log_event(log, "run.failed", level=logging.ERROR, **done, error=outcome.error)
            self._alert(request, outcome)
        return outcome

    def _alert(self, request: RunRequest, outcome: RunOutcome) -> None:
        if self.alerter is None:
            return
        subject, text = alert_message(self.config, request, outcome)
        try:
            self.alerter(subject, text)
        except Exception as exc:  # an alert that cannot be sent is logged, never fatal
            log_event(log, "alert.failed", level=logging.ERROR, report=request.report,
                      period=request.period.key, error=f"{type(exc).__name__}: {exc}")
        else:
            log_event(log, "alert.sent", report=request.report, period=request.period.key,
                      recipients=len(self.config.alerts.recipients))

    # ---- health ------------------------------------------------------------------------

    def write_health(self, state: str = "running") -> None:
        """Atomically rewrite the health file: last tick (UTC ISO), pid, state."""
        path = self.config.scheduler.health_file
        data = {"last_tick": datetime.now(UTC).isoformat(timespec="seconds"),
                "pid": os.getpid(), "state": state}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            if not self._health_warned:
                self._health_warned = True
                log_event(log, "health.unwritable", level=logging.WARNING, path=str(path),
                          error=exc.strerror)


def alert_message(config: Config, request: RunRequest, outcome: RunOutcome) -> tuple[str, str]:
    """The subject and text of the one alert sent for a failed run."""
    subject = f"ibl-reports: {request.report} failed for {request.period.key}"
    command = (
        f"ibl-reports --config {config.source} send --report {request.report} "
        f"--as-of {request.as_of.isoformat()}"
    )
    lines = [
        f"The {request.reason} run of report {request.report!r} for the period "
        f"{request.period.start.isoformat()} to {request.period.end.isoformat()} failed.",
        "",
        f"Error: {outcome.error or outcome.kind.value}",
    ]
    if outcome.output_tail:
        lines += ["", "Last output of the run:", outcome.output_tail]
    lines += [
        "",
        "What to do:",
        "  1. Read the error above and the scheduler log; fix its cause (API key, API",
        "     availability, SMTP settings, disk space).",
        "  2. Send the period again; recipients who already got it are skipped:",
        f"       {command}",
        "  3. Or restart the scheduler: its catch-up re-sends missed periods",
        "     (catch_up = latest or all).",
        "",
        "You get this message once per failed run.",
    ]
    return subject, "\n".join(lines)


def _trigger_key(trigger: Any) -> str:
    return f"{type(trigger).__name__}:{trigger}:{getattr(trigger, 'timezone', '')}"


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return "(unparsable URL)"


# --------------------------------------------------------------------------------------------
# Entry points


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
        env, [config.api.api_key_env, config.email.password_env], [config.state.url]
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


@dataclass(frozen=True)
class JobRow:
    """One line of ``ibl-reports jobs``."""

    report: str
    schedule: str
    timezone: str
    next_local: datetime | None
    next_utc: datetime | None
    last_state: str | None = None
    last_period: str | None = None
    last_finished: datetime | None = None
    last_error: str | None = None

    def last_run_text(self) -> str:
        if self.last_state is None:
            return "never"
        text = self.last_state
        if self.last_period:
            text += f" ({self.last_period})"
        if self.last_error:
            text += f": {self.last_error[:60]}"
        return text

    def cells(self) -> list[str]:
        """The table cells: report, schedule, next (local), next (UTC), last run."""
        def fmt(t: datetime | None, utc: bool) -> str:
            if t is None:
                return "-"
            return t.strftime("%Y-%m-%d %H:%M") + (" UTC" if utc else f" {t.tzname()}")

        return [
            self.report, f"{self.schedule} ({self.timezone})", fmt(self.next_local, False),
            fmt(self.next_utc, True), self.last_run_text(),
        ]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "report": self.report, "schedule": self.schedule, "timezone": self.timezone,
            "next_local": iso(self.next_local), "next_utc": iso(self.next_utc),
            "last_state": self.last_state, "last_period": self.last_period,
            "last_finished": iso(self.last_finished), "last_error": self.last_error,
        }


LastRun = Callable[[str], Any]


def _state_db_missing(config: Config) -> bool:
    from reports.schedule.lastrun import sqlite_path

    path = sqlite_path(config.state.url)
    return path is not None and not path.exists()


def list_jobs(
    config: Config, *, clock: Clock = _utc_now, last_run: LastRun | None = None
) -> list[JobRow]:
    """Every report, its next fire time (local and UTC) and its last run (from the ledger).

    A missing state database means "never run"; an unreadable one shows state "unknown".
    """
    if last_run is not None or _state_db_missing(config):
        return _job_rows(config, clock(), last_run, None)
    # SQLite (the default): read with the standard library; SQLAlchemy's import alone costs
    # ~0.35 s, most of `ibl-reports jobs` (see reports/lastrun.py).
    import sqlite3

    from reports.schedule.lastrun import sqlite_last_run

    try:
        light = sqlite_last_run(config.state.url)
    except sqlite3.Error as exc:
        return _job_rows(config, clock(), None, f"state database unreadable ({exc})")
    if light is not None:
        return _job_rows(config, clock(), light, None)
    try:
        from reports.state.ledger import Ledger

        ledger = Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)
    except Exception as exc:  # a broken state DB must not hide the schedule
        return _job_rows(config, clock(), None, f"state database unreadable ({exc})")
    try:
        return _job_rows(config, clock(), ledger.last_run, None)
    finally:
        ledger.close()


def _job_rows(
    config: Config, now: datetime, last_run: LastRun | None, unreadable: str | None
) -> list[JobRow]:
    rows = []
    for report in config.reports:
        nxt = next_fire_time(report, now)
        zone = ZoneInfo(report.timezone)
        row = JobRow(
            report.name, report.schedule, report.timezone,
            nxt.astimezone(zone) if nxt else None, nxt.astimezone(UTC) if nxt else None,
        )
        record = None
        if unreadable:
            row = _with_last(row, "unknown", None, None, unreadable)
        elif last_run is not None:
            try:
                record = last_run(report.name)
            except Exception as exc:
                row = _with_last(row, "unknown", None, None,
                                 f"state database unreadable ({type(exc).__name__})")
        if record is not None:
            state = getattr(record, "state", None)
            start, end = getattr(record, "period_start", None), getattr(record, "period_end", None)
            row = _with_last(
                row, str(getattr(state, "value", state)),
                f"{start}_{end}" if start and end else None,
                getattr(record, "finished_at", None), getattr(record, "error", None),
            )
        rows.append(row)
    return rows


def _with_last(
    row: JobRow, state: str | None, period: str | None, finished: datetime | None,
    error: str | None,
) -> JobRow:
    from dataclasses import replace

    return replace(row, last_state=state, last_period=period, last_finished=finished,
                   last_error=error)
