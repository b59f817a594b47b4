"""``ibl-reports send --all``: every report's period that is not done yet, on the executor.

The ledger says what is done (every recipient sent or failed permanently); everything else is
sent: on the local pool (``[executor] kind = "local"``, at most ``concurrency`` runs at once,
renders on warm limited workers) or as Celery tasks (``"celery"``), waited for unless
``--no-wait``. It is also the reconciler after a broker lost its queue: run it again and it
enqueues exactly what the ledger says is missing; a period that did get done in between is
skipped by the task itself.

Each report's period is fixed here, from ``--as-of`` or today in the report's time zone, so a
task that waits in the queue over midnight still sends the period it was meant for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from reports.config import Config, ReportConfig
from reports.errors import BrokerError, ReportsError, UsageError
from reports.report.periods import Clock, Period, for_kind, today


@dataclass(frozen=True)
class Item:
    """One report and the period it is to send."""

    report: ReportConfig
    as_of: date
    period: Period

    @property
    def head(self) -> str:
        return f"{self.report.name} {self.period.start}..{self.period.end}"


@dataclass(frozen=True)
class Done:
    """One report's line once it finished (or was already done)."""

    item: Item
    ok: bool
    line: str
    exit_code: int = 0


def plan(
    config: Config, reports: Sequence[ReportConfig], as_of: date | None, *, force: bool,
    clock: Clock, ledger: Any,
) -> tuple[list[Item], list[Item]]:
    """(to send, already done): the ledger decides (one query for all), unless ``force``."""
    items = []
    for report in reports:
        day = as_of or today(clock, report.timezone)
        items.append(Item(report, day, for_kind(report.period, day)))
    finished = set() if force else ledger.periods_done(
        (item.report.name, item.period, item.report.recipients) for item in items
        if item.report.recipients
    )
    todo = [item for item in items if (item.report.name, item.period) not in finished]
    done = [item for item in items if (item.report.name, item.period) in finished]
    return todo, done


def _line(item: Item, result: Mapping[str, Any]) -> Done:
    ok = bool(result.get("ok"))
    errors = list(result.get("errors") or [])
    lines = list(result.get("lines") or [])
    if ok:
        text = lines[-1].split(": ", 1)[-1] if lines else "done"
        return Done(item, True, f"{item.head}: {text}")
    return Done(item, False, f"{item.head}: failed: {'; '.join(errors) or 'unknown error'}",
                int(result.get("exit_code") or 1))


def run_local(
    config: Config, items: Sequence[Item], *, force: bool, clock: Clock,
    env: Mapping[str, str], on_done: Callable[[Done], None],
) -> list[Done]:
    """Send every item on this machine: ``concurrency`` runs at once, renders on warm workers."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from reports import send
    from reports.execute.worker import WorkerPool, default_workers, start_in_background

    if not items:
        return []
    start_in_background()
    workers = min(len(items), config.executor.concurrency or default_workers())
    renderers = WorkerPool(timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb)

    def one(item: Item) -> Done:
        try:
            outcome = send.send_report(config, item.report, as_of=item.as_of, force=force,
                                      clock=clock, env=env, pool=renderers)
        except ReportsError as exc:
            return _line(item, {"ok": False, "errors": [str(exc)], "exit_code": exc.exit_code})
        errors = [f"held: {outcome.held.reason()}"] if outcome.held else outcome.failures
        return _line(item, {"ok": outcome.exit_code == 0, "lines": outcome.lines(),
                            "errors": errors, "exit_code": outcome.exit_code})

    results: list[Done] = []
    with renderers, ThreadPoolExecutor(max_workers=workers) as threads:
        for future in as_completed([threads.submit(one, item) for item in items]):
            done = future.result()
            on_done(done)
            results.append(done)
    return results


def enqueue_all(app: Any, config: Config, items: Sequence[Item], *, force: bool) -> dict[str, Any]:
    """One ``send_period`` task per item, now; {task id: AsyncResult}."""
    from reports.execute.celery_app import enqueue

    now = time.time()
    return {
        item.report.name: enqueue(app, config.executor.queue, item.report.name,
                                  item.as_of.isoformat(), force, now)
        for item in items
    }


def wait_all(
    items: Sequence[Item], results: Mapping[str, Any], *, on_done: Callable[[Done], None],
    poll_s: float = 0.25,
) -> list[Done]:
    """Wait for every task; a task that failed inside Celery (killed past its hard limit,
    refused) counts as failed with Celery's one-line reason."""
    from celery.exceptions import CeleryError
    from kombu.exceptions import OperationalError

    by_name = {item.report.name: item for item in items}
    pending = dict(results)
    finished: list[Done] = []
    while pending:
        for name, result in list(pending.items()):
            try:
                if not result.ready():
                    continue
                value = result.get(propagate=False)
            except (OperationalError, CeleryError, ConnectionError, OSError) as exc:
                raise BrokerError(
                    f"lost the broker while waiting ({type(exc).__name__}); the ledger keeps "
                    "what was sent: run send --all again to finish the rest"
                ) from None
            del pending[name]
            if isinstance(value, Mapping):
                done = _line(by_name[name], value)
            else:
                reason = str(value).strip().splitlines()[0] if str(value).strip() else "failed"
                done = _line(by_name[name], {"ok": False, "errors": [
                    f"{type(value).__name__}: {reason}"]})
            on_done(done)
            finished.append(done)
        if pending:
            time.sleep(poll_s)
    return finished


def send_all(
    config: Config, *, as_of: date | None, force: bool, wait: bool, clock: Clock,
    env: Mapping[str, str], echo: Callable[[str], None], echo_err: Callable[[str], None],
    progress: bool,
) -> int:
    """``send --all``: one line per report; 1 if any failed (2: usage), else 0."""
    from reports.run import open_ledger

    if not config.reports:
        raise UsageError("there are no [[reports]] in the config")
    celery = config.executor.kind == "celery"
    if not wait and not celery:
        raise UsageError('--no-wait needs [executor] kind = "celery" (local runs are waited for)')
    with open_ledger(config) as ledger:
        todo, done = plan(config, config.reports, as_of, force=force, clock=clock, ledger=ledger)
    for item in done:
        echo(f"{item.head}: already delivered to every recipient")
    if not todo:
        return 0
    with _Bar(progress, len(todo), echo, echo_err) as bar:
        if not celery:
            results = run_local(config, todo, force=force, clock=clock, env=env,
                                on_done=bar.done)
        else:
            from reports.execute.celery_app import make_app, safe_broker_url

            app = make_app(config, env)
            try:
                handles = enqueue_all(app, config, todo, force=force)
            except Exception as exc:  # kombu/redis errors: name the broker, never its password
                raise BrokerError(
                    f"cannot enqueue on the broker {safe_broker_url(app.conf.broker_url)}: "
                    f"{type(exc).__name__}"
                ) from None
            if not wait:
                echo(f"enqueued {len(handles)} report(s) on queue {config.executor.queue}")
                return 0
            results = wait_all(todo, handles, on_done=bar.done)
    return 1 if any(not r.ok for r in results) else 0


class _Bar:
    """A progress bar on a terminal (lines printed above it); plain lines otherwise."""

    def __init__(
        self, enabled: bool, total: int, echo: Callable[[str], None],
        echo_err: Callable[[str], None],
    ) -> None:
        self._echo = echo
        self._echo_err = echo_err
        self._progress: Any = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(TextColumn("send --all"), BarColumn(), MofNCompleteColumn(),
                                      transient=True)
            self._task = self._progress.add_task("send", total=total)

    def __enter__(self) -> _Bar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def done(self, done: Done) -> None:
        if not done.ok:
            self._echo_err(f"error: {done.line}")
        elif self._progress is not None:
            self._progress.console.print(done.line, highlight=False, markup=False)
        else:
            self._echo(done.line)
        if self._progress is not None:
            self._progress.advance(self._task)
