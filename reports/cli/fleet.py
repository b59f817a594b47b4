"""The fleet's commands: ``ibl-reports worker`` and ``ibl-reports queue status``.

They are registered on the main app by ``reports.cli`` and use the config loader and error
guard of ``reports.cli.kit`` (imported when a command runs).
"""

# No `from __future__ import annotations` here: typer reads these signatures at every start and
# would eval() each string annotation twice (~30 ms for the whole app); see reports/cli/__init__.

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from reports.cli.kit import guard as _guard
from reports.cli.kit import load as _config

queue_app = typer.Typer(help="The Celery queue of report runs.", no_args_is_help=True)
db_app = typer.Typer(help="The state database.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the state database's schema (once, under a lock on PostgreSQL)."""
    def body() -> None:
        from reports.state.ledger import Ledger

        config = _config()
        with Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s,
                    upgrade=True) as ledger:
            typer.echo(f"state database {ledger.url}: schema version {ledger.schema_version}")

    _guard(body)


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(metavar="N", help="pool children, each runs one report at a time "
                     "(default: [executor] concurrency, else the cores)"),
    ] = None,
    queues: Annotated[
        str | None, typer.Option(
            metavar="Q1,Q2", help="comma-separated queues (default: [executor] queue)")
    ] = None,
    log_format: Annotated[str, typer.Option(metavar="text|json", help="log line format")] = "text",
) -> None:
    """Run a Celery worker that sends reports (needs [executor] kind = "celery")."""
    from reports.cli.kit import guard as _guard
    from reports.cli.kit import load as _config

    def body() -> None:
        from reports.fleet import start_worker

        start_worker(_config(logs=False), concurrency=concurrency, queues=queues,
                     log_format=log_format)

    _guard(body)


@queue_app.command("status")
def queue_status(
    json_: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Tasks waiting, live workers and what they run, the oldest waiting task's age."""
    from reports.cli.kit import guard as _guard
    from reports.cli.kit import load as _config

    def body() -> None:
        from reports.errors import BrokerError, UsageError
        from reports.execute.celery_app import make_app, queue_status, safe_broker_url

        config = _config()
        if config.executor.kind != "celery":
            raise UsageError('queue status needs [executor] kind = "celery" in the config')
        app = make_app(config)
        try:
            status = queue_status(app, config.executor.queue)
        except Exception as exc:  # kombu/redis errors: name the broker, never its password
            raise BrokerError(f"cannot reach the broker {safe_broker_url(app.conf.broker_url)}: "
                              f"{type(exc).__name__}") from None
        if json_:
            typer.echo(json.dumps(status.as_json(), sort_keys=True))
            return
        age = "-"
        if status.oldest_enqueued_at is not None:
            seconds = datetime.now(UTC).timestamp() - status.oldest_enqueued_at
            age = f"{seconds:.0f} s"
        typer.echo(f"queue {status.queue} on {status.broker}")
        typer.echo(f"waiting: {status.depth} (oldest: {age})")
        typer.echo(f"workers: {len(status.workers)} ({', '.join(status.workers) or 'none'}), "
                   f"running {status.running} task(s)")

    _guard(body)
