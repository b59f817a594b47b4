"""``ibl-reports archive``: list, verify and prune the archived PDFs (and the HTML beside them)."""

# No `from __future__ import annotations` here: typer reads these signatures at every start and
# would eval() each string annotation twice (~30 ms for the whole app); see reports/cli/__init__.

import json
from typing import Annotated

import typer

from reports.cli.kit import JSON_HELP
from reports.cli.kit import guard as _guard
from reports.cli.kit import load as _config
from reports.cli.kit import now as _now
from reports.cli.kit import table as _table

archive_app = typer.Typer(help="The archive of generated PDFs.", no_args_is_help=True)


@archive_app.command("list")
def archive_list(
    report: Annotated[str | None, typer.Option(metavar="NAME", help="only this report")] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Archived PDFs with their hashes."""

    def body() -> None:
        from reports import views
        from reports.report.gcpause import lifelong

        with lifelong():  # SQLAlchemy's import, the config, the query: kept until we exit
            config = _config()
            entries = views.archive_listing(config, report=report)
        if report is not None and not entries:
            config.report(report)  # an unknown name is a config error naming it (exit 2)
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
    """Re-hash every archived file (PDFs and their HTML); exit 1 if any is missing or changed."""

    def body() -> int:
        from reports import views

        problems, checked = views.archive_verify(_config())
        for line in problems:
            typer.echo(f"error: {line}", err=True)
        typer.echo(f"{checked} files checked, {len(problems)} problems")
        return 1 if problems else 0

    code = _guard(body)
    if code:
        raise typer.Exit(code)


@archive_app.command("prune")
def archive_prune(
    older_than: Annotated[str, typer.Option(metavar="AGE", help="days or weeks, e.g. 365d or 52w")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be deleted; delete nothing")
    ] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", help="confirm a prune that deletes every archived file (or --older-than 0d)",
    )] = False,
) -> None:
    """Delete archived PDFs (with their HTML and index rows) whose period ended more than AGE
    ago."""

    def body() -> None:
        from reports.delivery.archive import prune_archive

        removed = prune_archive(
            _config(), older_than, clock=_now, dry_run=dry_run, confirm_all=yes
        )
        verb = "would remove" if dry_run else "removed"
        for entry in removed:
            typer.echo(f"{verb} {entry.path} ({entry.report}, "
                       f"{entry.period_start.isoformat()}..{entry.period_end.isoformat()})")
            if entry.html_path:
                typer.echo(f"{verb} {entry.html_path} (its HTML)")
        pdfs, html = len(removed), sum(1 for e in removed if e.html_path)
        typer.echo(f"{pdfs} archived PDF{'' if pdfs == 1 else 's'} "
                   f"{'would be ' if dry_run else ''}removed"
                   + (f", with {html} HTML file{'' if html == 1 else 's'}" if html else ""))

    _guard(body)
