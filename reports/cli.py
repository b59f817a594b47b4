"""The ``ibl-reports`` command line.

Heavy libraries (matplotlib, WeasyPrint, SQLAlchemy, httpx) are imported inside the commands
that use them, so ``ibl-reports --help`` starts fast. Exit codes: 0 ok, 1 data/API/delivery error,
2 usage or config error. Every failure prints one line on stderr, starting with ``error:``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from reports.errors import ReportsError, UsageError

app = typer.Typer(
    name="ibl-reports",
    help="Scheduled PDF reports for organisations on the ibl.ai learning platform.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
archive_app = typer.Typer(help="The archive of generated PDFs.", no_args_is_help=True)
app.add_typer(archive_app, name="archive")
web_app = typer.Typer(
    help="The web UI: reports, runs, deliveries and the archive, behind a login.",
    invoke_without_command=True,
)
app.add_typer(web_app, name="web")

T = TypeVar("T")


class _State:
    config_path: str | None = None
    logging = False


_state = _State()


def _now() -> datetime:
    return datetime.now(UTC)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body, turning our errors into one line on stderr and an exit code."""
    try:
        return fn()
    except ReportsError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None


def _config(*, logs: bool = True) -> Any:
    """The config; with $IBL_REPORTS_LOG_FORMAT set, also structured logs on stderr."""
    from reports.config import load_config
    from reports.logs import LOG_FORMAT_ENV

    config = load_config(_state.config_path)
    fmt = os.environ.get(LOG_FORMAT_ENV)
    if logs and fmt and not _state.logging:
        from reports.logs import configure_logging, secrets_from_env

        if fmt not in ("text", "json"):
            raise UsageError(f"{LOG_FORMAT_ENV}={fmt!r}: use text or json")
        configure_logging("json" if fmt == "json" else "text", secrets=secrets_from_env(
            os.environ,
            [config.api.api_key_env, config.email.password_env, config.executor.broker_url_env,
             config.privacy.pseudonym_key_env],
            [config.state.url, os.environ.get(config.executor.broker_url_env, "")],
        ))
        _state.logging = True
    return config


def _date(value: str | None, what: str) -> date | None:
    if value is None:
        return None
    from reports.report.periods import parse_date

    return parse_date(value, what=what)


@app.callback()
def _main(
    config: Annotated[
        str | None,
        typer.Option(
            "--config", metavar="PATH",
            help="config file (default: $IBL_REPORTS_CONFIG, else ./config.toml)",
        ),
    ] = None,
) -> None:
    _state.config_path = config


@app.command()
def generate(
    report: Annotated[str | None, typer.Option(help="a configured report name")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every configured report")] = False,
    org: Annotated[str | None, typer.Option(help="an org, for an ad-hoc report")] = None,
    period: Annotated[str | None, typer.Option(help="weekly or monthly (with --org)")] = None,
    as_of: Annotated[str | None, typer.Option(help="as if today were DATE (YYYY-MM-DD)")] = None,
    start: Annotated[str | None, typer.Option(help="custom period start (inclusive)")] = None,
    end: Annotated[str | None, typer.Option(help="custom period end (inclusive)")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the PDF here")] = None,
    html: Annotated[Path | None, typer.Option(help="write the exact HTML here")] = None,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Make a report PDF now (archived; nothing is mailed)."""

    def body() -> int:
        from reports import run

        config = _config()
        chosen = sum(x for x in (report is not None, all_, org is not None))
        if chosen != 1:
            raise UsageError("choose exactly one of --report NAME, --all, --org ORG --period P")
        if org is not None and period not in ("weekly", "monthly"):
            raise UsageError("--org needs --period weekly or --period monthly")
        if period is not None and org is None:
            raise UsageError("--period goes with --org")
        if as_of and (start or end):
            raise UsageError("use either --as-of or --start/--end, not both")
        if bool(start) != bool(end):
            raise UsageError("--start and --end go together")
        if all_ and (out or html):
            raise UsageError("--out and --html name one file; they cannot be used with --all")
        window = run.Window(
            as_of=_date(as_of, "--as-of"), start=_date(start, "--start"), end=_date(end, "--end")
        )
        if all_:
            reports = list(config.reports)
            if not reports:
                raise UsageError(f"{config.source}: no [[reports]] configured")
        elif org is not None:
            reports = [run.adhoc_report(org, period or "weekly")]
        else:
            reports = [config.report(report)]
        show = not json_ and sys.stderr.isatty()
        outcomes = run.generate_many(
            config, reports, window, out=out, html_out=html, clock=_now, env=os.environ,
            progress=show,
        )
        failed = [o for o in outcomes if o.error is not None]
        for outcome in outcomes:
            if outcome.error is not None:
                typer.echo(f"error: {outcome.report}: {outcome.error}", err=True)
            elif not json_:
                r = outcome.result
                assert r is not None
                typer.echo(
                    f"{outcome.report}: {r.pdf} ({r.pages} pages, {r.bytes:,} bytes, "
                    f"{r.period.start.isoformat()}..{r.period.end.isoformat()})"
                )
        if json_:
            items = [o.as_json() for o in outcomes]
            typer.echo(json.dumps(items[0] if len(items) == 1 else items, sort_keys=True))
        if failed:
            return max(o.exit_code for o in failed)
        return 0

    code = _guard(body)
    if code:
        raise typer.Exit(code)


@app.command()
def send(
    report: Annotated[str | None, typer.Option(help="a configured report name")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="every report's period not yet done, on the executor")
    ] = False,
    as_of: Annotated[str | None, typer.Option(help="as if today were DATE (YYYY-MM-DD)")] = None,
    force: Annotated[bool, typer.Option(help="send again to every recipient")] = False,
    to: Annotated[
        str | None, typer.Option(help="send a test copy to this address only (ledger untouched)")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="with --all on Celery: enqueue and exit")
    ] = False,
) -> None:
    """Generate (or reuse), archive and deliver one period of a report, exactly once."""

    def body() -> int:
        if (report is None) == (not all_):
            raise UsageError("give either --report NAME or --all")
        if all_ and to:
            raise UsageError("--to sends one test copy of one --report, not --all")
        if no_wait and not all_:
            raise UsageError("--no-wait goes with --all")
        config = _config()
        if all_:
            from reports.sendall import send_all

            return send_all(
                config, as_of=_date(as_of, "--as-of"), force=force, wait=not no_wait,
                clock=_now, env=os.environ, echo=typer.echo,
                echo_err=lambda line: typer.echo(line, err=True), progress=sys.stderr.isatty(),
            )
        from reports import run

        assert report is not None
        outcome = run.send_report(
            config, config.report(report), as_of=_date(as_of, "--as-of"), force=force, to=to,
            clock=_now, env=os.environ,
        )
        for line in outcome.lines():
            typer.echo(line)
        for line in outcome.failure_lines():
            typer.echo(f"error: {line}", err=True)
        return outcome.exit_code

    code = _guard(body)
    if code:
        raise typer.Exit(code)


@app.command()
def schedule(
    log_format: Annotated[str, typer.Option(help="text or json")] = "text",
) -> None:
    """Run the scheduler daemon: send every report when it is due."""

    def body() -> int:
        from reports.schedule import scheduler

        if log_format not in ("text", "json"):
            raise UsageError("--log-format is text or json")
        return scheduler.run_scheduler(_config(logs=False), clock=_now, log_format=log_format)

    code = _guard(body)
    if code:
        raise typer.Exit(code)


@app.command()
def jobs(json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every report, its next fire time (local and UTC) and its last run state."""

    def body() -> None:
        from reports.schedule import joblist

        rows = joblist.list_jobs(_config(), clock=_now)
        if json_:
            typer.echo(json.dumps([r.as_json() for r in rows], sort_keys=True))
            return
        _table(
            ["report", "schedule", "next (local)", "next (UTC)", "last run"],
            [r.cells() for r in rows],
        )

    _guard(body)


@app.command()
def runs(
    report: Annotated[str | None, typer.Option(help="only this report")] = None,
    limit: Annotated[int, typer.Option(help="how many runs")] = 20,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent runs and their deliveries."""

    def body() -> None:
        from reports import run

        history = run.history(_config(), report=report, limit=limit)
        if json_:
            typer.echo(json.dumps(history, sort_keys=True, default=str))
            return
        _table(
            ["run", "report", "period", "state", "started", "deliveries", "error"],
            [
                [
                    str(h["id"]), h["report"], f"{h['period_start']}..{h['period_end']}",
                    h["state"], str(h["started_at"])[:19],
                    ", ".join(f"{d['recipient']}={d['state']}" for d in h["deliveries"]),
                    (h["error"] or "")[:80],
                ]
                for h in history
            ],
        )

    _guard(body)


@archive_app.command("list")
def archive_list(
    report: Annotated[str | None, typer.Option(help="only this report")] = None,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Archived PDFs with their hashes."""

    def body() -> None:
        from reports import run

        entries = run.archive_listing(_config(), report=report)
        if json_:
            typer.echo(json.dumps(entries, sort_keys=True, default=str))
            return
        _table(
            ["report", "org", "period", "bytes", "sha256", "kept as", "path"],
            [
                [e["report"], e["org"], f"{e['period_start']}..{e['period_end']}",
                 f"{e['size']:,}", e["sha256"][:12], "current" if e["current"] else "history",
                 e["path"]]
                for e in entries
            ],
        )

    _guard(body)


@archive_app.command("verify")
def archive_verify() -> None:
    """Re-hash every archived file; exit 1 if any is missing or changed."""

    def body() -> int:
        from reports import run

        problems, checked = run.archive_verify(_config())
        for line in problems:
            typer.echo(f"error: {line}", err=True)
        typer.echo(f"{checked} files checked, {len(problems)} problems")
        return 1 if problems else 0

    code = _guard(body)
    if code:
        raise typer.Exit(code)


@archive_app.command("prune")
def archive_prune(
    older_than: Annotated[str, typer.Option(help="e.g. 365d or 52w")],
) -> None:
    """Delete archived PDFs (and their index rows) older than a duration."""

    def body() -> None:
        from reports import run

        removed = run.archive_prune(_config(), older_than, clock=_now)
        typer.echo(f"{removed} archived files removed")

    _guard(body)


@web_app.callback()
def web(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
) -> None:
    """Serve the web UI (read-only and loopback-only when no web users are configured)."""
    if ctx.invoked_subcommand is not None:
        return

    def body() -> None:
        from reports.web.serve import serve

        serve(_config(logs=False), host, port, os.environ)

    _guard(body)


@web_app.command("hash-password")
def hash_password() -> None:
    """Read a password on stdin and print its argon2 hash (a web user's password_hash)."""

    def body() -> None:
        from reports.web.auth import hash_password as make_hash

        if sys.stdin.isatty():
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("hash-password: no password on stdin")
        typer.echo(make_hash(password))

    _guard(body)


@app.command("mock-api")
def mock_api(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8765,
    latency_ms: Annotated[float, typer.Option(help="added latency per request")] = 0.0,
    courses: Annotated[int | None, typer.Option(help="courses per org")] = None,
    users: Annotated[int | None, typer.Option(help="users per org")] = None,
    late_days: Annotated[int, typer.Option(
        help="data not arrived: the last N days up to today are null / not active")] = 0,
    today: Annotated[str | None, typer.Option(
        help="the server's today for --late-days (YYYY-MM-DD)")] = None,
    drop_from: Annotated[str | None, typer.Option(
        help="a real drop: from this day on, figures are scaled by --drop-factor")] = None,
    drop_factor: Annotated[float, typer.Option(help="the factor of --drop-from")] = 0.2,
    small_courses: Annotated[
        int, typer.Option(help="the last N courses have only 3 members (small groups)")
    ] = 0,
) -> None:
    """Serve the built-in demo API over HTTP (any org name works; any Api-Token is accepted)."""

    def body() -> None:
        from reports.source.mock import MockKnobs, serve

        if late_days < 0:
            raise UsageError(f"--late-days must be 0 or more, not {late_days}")
        if not 0 <= drop_factor <= 1:
            raise UsageError(f"--drop-factor must be between 0 and 1, not {drop_factor}")
        knobs = MockKnobs(
            latency_s=latency_ms / 1000, courses=courses, users=users, late_days=late_days,
            today=_date(today, "--today"), drop_from=_date(drop_from, "--drop-from"),
            drop_factor=drop_factor if drop_from else 1.0, small_courses=small_courses,
        )

        typer.echo(
            f"demo API on http://{host}:{port}/api/ai-analytics/audience/orgs/ORG/... "
            "(any org name, any 'Authorization: Api-Token ...'); Ctrl-C stops it", err=True,
        )
        serve(host, port, knobs)

    _guard(body)


def _table(headers: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, show_lines=False)
    for row in rows:
        table.add_row(*row)
    Console(width=max(120, os.get_terminal_size(0).columns if sys.stdout.isatty() else 160)).print(
        table
    )


def _register_fleet() -> None:
    from reports.cli_fleet import queue_app, worker

    app.command()(worker)
    app.add_typer(queue_app, name="queue")


_register_fleet()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
