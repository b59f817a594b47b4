"""The fleet's worker side: ``ibl-reports worker`` and the task it runs.

The task, ``send_period(report, as_of, force)``, is ``send`` of one report for the period that
``as_of`` (a date in the report's time zone, fixed by the producer) selects, run in a Celery
prefork pool child with the render in the child itself (``InProcessRenderer``). Exactly-once
comes from the ledger, not from Celery: a second copy of the same task (a redelivery, the same
period enqueued twice) finds the run or the deliveries already taken and sends nothing twice.

The config is loaded once, in the worker's main process, before the pool forks; every child
inherits it and makes its own database engine after the fork (``worker_process_init``), which
every task it runs reuses. The worker refuses to start on a state database at another schema.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from reports.config import Config
from reports.errors import ReportsError, RunBusyError, UsageError


@dataclass(frozen=True)
class TaskResult:
    """What one ``send_period`` task did, as plain JSON for the result backend."""

    report: str
    as_of: str
    ok: bool
    exit_code: int = 0
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Context:
    config: Config | None = None
    renderer: Any = None


_context = _Context()


def _now() -> datetime:
    return datetime.now(UTC)


def send_period(
    report: str, as_of: str, force: bool = False, provisional: bool = False,
) -> dict[str, Any]:
    """The task body: send ``report`` for the period ``as_of`` selects; never raises ours.

    ``provisional``: despite the freshness gate, marked provisional (``send --provisional``)."""
    from reports import send

    config = _context.config
    if config is None:
        raise RuntimeError("send_period runs in an ibl-reports worker (the config is not loaded)")
    try:
        outcome = send.send_report(
            config, config.report(report), as_of=date.fromisoformat(as_of), force=force,
            provisional=provisional, clock=_now, env=os.environ, pool=_context.renderer,
        )
    except RunBusyError as exc:
        # Another live attempt (a redelivered copy, the same period enqueued twice) holds the
        # run: it sends; this copy sends nothing.
        return TaskResult(report, as_of, ok=True, lines=[
            f"{report}: another attempt is sending this period ({exc})"]).as_dict()
    except ReportsError as exc:
        return TaskResult(report, as_of, ok=False, exit_code=exc.exit_code,
                          errors=[f"{report}: {exc}"]).as_dict()
    return TaskResult(report, as_of, ok=outcome.exit_code == 0, exit_code=outcome.exit_code,
                      lines=outcome.lines(), errors=outcome.failure_lines()).as_dict()


WORKER_PRELOAD = (
    "reports.run", "reports.state.ledger", "reports.delivery.mailer", "reports.source.client",
    "reports.source.collect", "sqlalchemy", "psycopg", "httpx",
)
"""Modules a worker imports before its pool forks (with the render's own, ``PRELOAD``)."""


def start_worker(
    config: Config, *, concurrency: int | None, queues: str | None, log_format: str = "text",
) -> None:
    """``ibl-reports worker``: a prefork Celery worker running ``send_period`` tasks."""
    import importlib

    from reports.execute.cachedirs import prepare_environment
    from reports.execute.celery_app import broker_url, make_app, run_worker
    from reports.execute.inprocess import InProcessRenderer
    from reports.execute.worker import PRELOAD, default_workers

    if config.executor.kind != "celery":
        raise UsageError('ibl-reports worker needs [executor] kind = "celery" in the config')
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if log_format not in ("text", "json"):
        raise UsageError("--log-format is text or json")
    _worker_logging(config, broker_url(config, os.environ), log_format)
    _check_schema(config)  # before the imports below: a refusal takes a second, not several
    prepare_environment()  # matplotlib and fontconfig caches, once, before the fork
    for module in (*PRELOAD, *WORKER_PRELOAD):  # shared by every pool child (copy-on-write)
        importlib.import_module(module)
    _context.config = config
    _context.renderer = InProcessRenderer(
        timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb
    )
    app = make_app(config, task=send_period)
    run_worker(
        app, config,
        concurrency=concurrency or config.executor.concurrency or default_workers(),
        queues=queues or config.executor.queue, on_child_start=lambda: _child_start(config),
    )


def _check_schema(config: Config) -> None:
    """Refuse to start on a state database at another schema (one line: run db upgrade)."""
    from reports.state.ledger import Ledger

    with Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s):
        pass  # opened on an engine of its own, disposed before the pool forks


def _child_start(config: Config) -> None:
    """In each pool child, after the fork: this process's engine, reused by every task."""
    from reports.state.engine import process_engine

    process_engine(config.state.url)


def _worker_logging(config: Config, broker: str, log_format: str) -> None:
    """Our log lines (redacted) on stderr; Celery's own through the same redaction.

    Celery leaves logging alone when ``setup_logging`` has a receiver; library chatter (one
    httpx line per request, WeasyPrint's steps) stays below WARNING.
    """
    import logging
    import sys

    from celery.signals import setup_logging

    from reports.logs import RedactFilter, configure_logging, secrets_from_env

    setup_logging.connect(lambda **_kwargs: None, weak=False)
    names = [config.api.api_key_env, config.email.password_env]
    secrets = [*secrets_from_env(os.environ, names, [config.state.url, broker]), broker]
    configure_logging("json" if log_format == "json" else "text", secrets=secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    celery_logger = logging.getLogger("celery")
    celery_logger.addHandler(handler)
    celery_logger.setLevel(logging.INFO)
    celery_logger.propagate = False
    for name in ("httpx", "weasyprint", "fontTools", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)


class CeleryRunner:
    """The scheduler's runner in celery mode: a due report becomes one task, now (no ETA).

    The daemon stays the only producer; the task's answer becomes the run's outcome (logged,
    alerted). A request to send provisional (``on_stale = "provisional"``) sends the task so.
    A task that does not answer within the task's hard limit plus the broker's visibility
    timeout, or a lost broker, is a failed run: the next fire or ``send --all`` finds the
    period not done and sends it (the ledger keeps it exactly once).
    """

    def __init__(self, config: Config, env: Any = None) -> None:
        from reports.execute.celery_app import make_app

        self.config = config
        self.app = make_app(config, env)

    def __call__(self, request: Any) -> Any:
        import time

        from reports.config.executor import task_hard_limit
        from reports.execute.celery_app import enqueue, safe_broker_url
        from reports.schedule.runner import OutcomeKind, RunOutcome

        started = time.monotonic()
        wait_s = (task_hard_limit(self.config.scheduler.run_timeout_s)
                  + self.config.executor.visibility_timeout_s)
        try:
            result = enqueue(self.app, self.config.executor.queue, request.report,
                             request.as_of.isoformat(), False, time.time(),
                             provisional=request.provisional)
            value = result.get(timeout=wait_s, propagate=False)
        except Exception as exc:  # broker errors and timeouts: one line, no URL password
            return RunOutcome(
                OutcomeKind.FAILED, error=f"the task did not answer ({type(exc).__name__}; "
                f"broker {safe_broker_url(self.app.conf.broker_url)})",
                duration_s=time.monotonic() - started,
            )
        duration = time.monotonic() - started
        if not isinstance(value, dict):
            return RunOutcome(OutcomeKind.FAILED, error=f"the task failed: {value!r}"[:500],
                              duration_s=duration)
        code = int(value.get("exit_code") or 0)
        if value.get("ok"):
            return RunOutcome(OutcomeKind.OK, exit_code=0, duration_s=duration,
                              output_tail="\n".join(value.get("lines") or [])[-2000:])
        kind = OutcomeKind.HELD if code == 3 else OutcomeKind.FAILED
        return RunOutcome(kind, exit_code=code, error="; ".join(value.get("errors") or []),
                          duration_s=duration)
