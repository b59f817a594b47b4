"""``ibl-reports mock-api``: the built-in demo API served over HTTP, for trying the tool out."""

# No `from __future__ import annotations` here: typer reads these signatures at every start and
# would eval() each string annotation twice (~30 ms for the whole app); see reports/cli/__init__.

from typing import Annotated

import typer

from reports.cli.kit import guard as _guard
from reports.cli.kit import load as _config
from reports.cli.kit import parse_day as _date
from reports.errors import UsageError


def mock_api(
    host: Annotated[str, typer.Option(metavar="HOST", help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port")] = 8765,
    latency_ms: Annotated[
        float, typer.Option(metavar="MS", help="added latency per request")
    ] = 0.0,
    courses: Annotated[int | None, typer.Option(
        metavar="N", help="courses per org (default: 20-60, fixed by the org name)")] = None,
    users: Annotated[int | None, typer.Option(
        metavar="N", help="users per org (default: 500-3000, fixed by the org name)")] = None,
    late_days: Annotated[int, typer.Option(
        metavar="N",
        help="data not arrived: the last N days up to today are null / not active")] = 0,
    today: Annotated[str | None, typer.Option(
        metavar="DATE", help="the server's today for --late-days (YYYY-MM-DD)")] = None,
    drop_from: Annotated[str | None, typer.Option(
        metavar="DATE",
        help="a real drop: from this day on, figures are scaled by --drop-factor")] = None,
    drop_factor: Annotated[
        float, typer.Option(metavar="F", help="the factor of --drop-from")
    ] = 0.2,
    small_courses: Annotated[int, typer.Option(
        metavar="N", help="the last N courses have only 3 members (small groups)")] = 0,
    page_cap: Annotated[int, typer.Option(
        metavar="N", help="users per page at most, whatever length is asked for")] = 100,
) -> None:
    """Serve the built-in demo API over HTTP (any org name works; any Api-Token is accepted)."""

    def body() -> None:
        from reports.source.mock import MockKnobs, serve

        if late_days < 0:
            raise UsageError(f"--late-days must be 0 or more, not {late_days}")
        if page_cap < 1:
            raise UsageError(f"--page-cap must be 1 or more, not {page_cap}")
        if not 0 <= drop_factor <= 1:
            raise UsageError(f"--drop-factor must be between 0 and 1, not {drop_factor}")
        knobs = MockKnobs(
            latency_s=latency_ms / 1000, courses=courses, users=users, late_days=late_days,
            today=_date(today, "--today"), drop_from=_date(drop_from, "--drop-from"),
            drop_factor=drop_factor if drop_from else 1.0, small_courses=small_courses,
            page_cap=page_cap,
        )

        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        typer.echo(
            f"demo API on {url}/api/ai-analytics/audience/orgs/ORG/... (any org name, any "
            "'Authorization: Api-Token ...'); Ctrl-C stops it\n"
            f'to use it, set [api] base_url = "{url}" in config.toml and export any key:\n'
            f"export {_api_key_env()}=demo", err=True,
        )
        serve(host, port, knobs)

    _guard(body)


def _api_key_env() -> str:
    """The variable the config reads the API key from (IBL_API_KEY without a usable config)."""
    from reports.errors import ReportsError

    try:
        return str(_config(logs=False).api.api_key_env)
    except ReportsError:
        return "IBL_API_KEY"
