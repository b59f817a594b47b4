"""The ``ibl-reports`` command line.

Heavy libraries (matplotlib, WeasyPrint, SQLAlchemy, httpx) are imported inside the commands
that use them, so ``ibl-reports --help`` starts fast. Exit codes: 0 ok, 1 data/API/delivery error,
2 usage or config error. Every failure prints one line on stderr, starting with ``error:``.
"""

# No `from __future__ import annotations` here: typer reads these signatures at every start and
# would eval() each string annotation twice (~30 ms for the whole app); see reports/cli/__init__.

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from reports.cli import early, exiting
from reports.cli.archive import archive_app
from reports.cli.fleet import db_app, queue_app, worker
from reports.cli.kit import (
    CONFIG_HELP,
    JSON_HELP,
    ConfigAnywhere,
    end_command,
    set_config_path,
    starting,
    state,
    utc_minutes,
)
from reports.cli.kit import guard as _guard
from reports.cli.kit import load as _config
from reports.cli.kit import now as _now
from reports.cli.kit import parse_day as _date
from reports.cli.kit import table as _table
from reports.cli.mock import mock_api
from reports.clip import clip
from reports.errors import UsageError

app = typer.Typer(
    name="ibl-reports",
    help="Scheduled PDF reports for organisations on the ibl.ai learning platform.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain Click help: no "<bool>" after flags
    cls=ConfigAnywhere,
)
app.add_typer(archive_app, name="archive")
web_app = typer.Typer(
    help="The web UI: reports, runs, deliveries and the archive, behind a login.",
    invoke_without_command=True,
)
app.add_typer(web_app, name="web")


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option("--config", metavar="PATH", help=CONFIG_HELP),
    ] = None,
) -> None:
    state.config_path = None
    state.noticed = False
    ctx.call_on_close(end_command)
    set_config_path(config)


@app.command()
def generate(
    report: Annotated[
        str | None, typer.Option(metavar="NAME", help="a configured report name")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="every configured report")] = False,
    org: Annotated[
        str | None, typer.Option(metavar="ORG", help="an org, for an ad-hoc report")
    ] = None,
    period: Annotated[
        str | None, typer.Option(metavar="weekly|monthly", help="the period (with --org)")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(metavar="DATE", help="as if today were DATE (YYYY-MM-DD)")
    ] = None,
    start: Annotated[
        str | None, typer.Option(metavar="DATE", help="custom period start (inclusive)")
    ] = None,
    end: Annotated[
        str | None, typer.Option(metavar="DATE", help="custom period end (inclusive)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(metavar="FILE.pdf", help="also write the PDF here")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(metavar="FILE.html", help="write the exact HTML here")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Make a report PDF now (archived; nothing is mailed)."""

    def body() -> int:
        from reports.report.gcpause import lifelong

        with lifelong():  # imports and the config: live objects only, nothing to collect
            from reports import batch, run

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
        outcomes = batch.generate_many(
            config, reports, window, out=out, html_out=html, clock=_now, env=os.environ,
            progress=show, pdf_child=early.take(),
        )
        failed = [o for o in outcomes if o.error is not None]
        for outcome in outcomes:
            if outcome.error is not None:
                typer.echo(f"error: {outcome.report}: {outcome.error}", err=True)
                continue
            r = outcome.result
            assert r is not None
            gate = r.gate_line()
            if gate is not None:  # never held: the PDF is marked provisional
                typer.echo(gate, err=True)
            if not json_:
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
    exiting.allow()  # its files are written and closed, its lines printed
    if code:
        raise typer.Exit(code)


@app.command()
def send(
    report: Annotated[
        str | None, typer.Option(metavar="NAME", help="a configured report name")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="every report's period not yet done, on the executor")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option(metavar="DATE", help="as if today were DATE (YYYY-MM-DD)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="send again to every recipient")] = False,
    to: Annotated[
        str | None, typer.Option(
            metavar="ADDRESS", help="send a test copy to this address only (ledger untouched)"
        )
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="with --all on Celery: enqueue and exit")
    ] = False,
    provisional: Annotated[bool, typer.Option(
        "--provisional",
        help="send now although the freshness gate holds the period, marked provisional",
    )] = False,
) -> None:
    """Generate (or reuse), archive and deliver one period of a report, exactly once.

    A period whose data is not complete is held by the freshness gate (exit 3).
    """

    def body() -> int:
        if (report is None) == (not all_):
            raise UsageError("give either --report NAME or --all")
        if all_ and to:
            raise UsageError("--to sends one test copy of one --report, not --all")
        if no_wait and not all_:
            raise UsageError("--no-wait goes with --all")
        if provisional and all_:
            raise UsageError("--provisional sends one --report, not --all")
        config = _config()
        if all_:
            from reports.sendall import send_all

            return send_all(
                config, as_of=_date(as_of, "--as-of"), force=force, wait=not no_wait,
                clock=_now, env=os.environ, echo=typer.echo,
                echo_err=lambda line: typer.echo(line, err=True), progress=sys.stderr.isatty(),
            )
        from reports import send

        assert report is not None
        if to is not None:
            _check_test_address(to)
        outcome = send.send_report(
            config, config.report(report), as_of=_date(as_of, "--as-of"), force=force, to=to,
            provisional=provisional, clock=_now, env=os.environ,
        )
        for line in outcome.lines():
            typer.echo(line)
        for line in outcome.failure_lines():
            typer.echo(line if outcome.held is not None else f"error: {line}", err=True)
        return outcome.exit_code

    code = _guard(body)
    if code:
        raise typer.Exit(code)


def _check_test_address(to: str) -> None:
    """``--to`` parsed as strictly as a configured recipient; a bad one is a usage error."""
    from reports.addresses import parse_address
    from reports.errors import MailAddressError

    try:
        parse_address(to, what="address")
    except MailAddressError as exc:
        raise UsageError(f"--to {exc}") from None


@app.command()
def schedule(
    log_format: Annotated[str, typer.Option(metavar="text|json", help="log line format")] = "text",
) -> None:
    """Run the scheduler daemon: send every report when it is due."""

    def body() -> int:
        from reports.schedule import scheduler

        if log_format not in ("text", "json"):
            raise UsageError("--log-format is text or json")
        config = _config(logs=False)
        runner = None
        if config.executor.kind == "celery":  # a due report becomes a Celery task
            from reports.fleet import CeleryRunner

            runner = CeleryRunner(config)
        return scheduler.run_scheduler(config, clock=_now, log_format=log_format, runner=runner)

    code = _guard(body)
    if code:
        raise typer.Exit(code)


@app.command()
def jobs(json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Every report, its next fire time (local and UTC), whether it is paused, its last run."""

    def body() -> None:
        from reports.report.gcpause import lifelong

        with lifelong():  # imports and the config: live objects only, nothing to collect
            from reports.schedule import joblist

            config = _config()
        rows = joblist.list_jobs(config, clock=_now)
        if json_:
            typer.echo(json.dumps([r.as_json() for r in rows], sort_keys=True))
            return
        _table(
            ["report", "schedule", "next (local)", "next (UTC)", "paused", "last run"],
            [r.cells() for r in rows],
        )

    _guard(body)


@app.command()
def runs(
    report: Annotated[str | None, typer.Option(metavar="NAME", help="only this report")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, help="how many runs")] = 20,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Recent runs and their deliveries."""

    def body() -> None:
        from reports import views
        from reports.report.gcpause import lifelong

        with lifelong():  # SQLAlchemy's import, the config, the query: kept until we exit
            config = _config()
            history = views.history(config, report=report, limit=limit)
        if report is not None and not history:
            config.report(report)  # an unknown name is a config error naming it (exit 2)
        if json_:
            typer.echo(json.dumps(history, sort_keys=True, default=str))
            return
        _table(
            ["run", "report", "period", "state", "started (UTC)", "deliveries",
             "error / reason"],
            [
                [
                    str(h["id"]), h["report"], f"{h['period_start']}..{h['period_end']}",
                    h["state"] + (" (provisional)" if h["edition"] == "provisional" else ""),
                    utc_minutes(h["started_at"]),
                    ", ".join(f"{d['recipient']}={d['state']}"
                              + (" (provisional)" if d["edition"] == "provisional" else "")
                              for d in h["deliveries"]),
                    clip(h["error"] or h["reason"] or "", 80),
                ]
                for h in history
            ],
        )

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


app.command("mock-api")(mock_api)
app.command()(worker)
app.add_typer(queue_app, name="queue")
app.add_typer(db_app, name="db")


def main() -> None:
    """Console-script entry point (``generate`` ends without the interpreter's teardown:
    ``exiting``)."""
    with starting():
        try:
            app()
        except SystemExit as done:
            exiting.finish(done.code)
            raise


