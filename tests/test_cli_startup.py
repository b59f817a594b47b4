"""What keeps the CLI's start-up fast (issue 17: ``--help`` and ``jobs`` < 0.5 s): the heavy
libraries stay out of ``--help`` and ``jobs``, the command modules keep real annotations for
typer, and the plain-text table is the very text rich prints.

One subprocess (a fresh interpreter is the only honest view of what a command imports); the rest
runs in-process.
"""

from __future__ import annotations

import gc
import inspect
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from rich.table import Table

from reports.cli import app
from reports.cli.tables import plain_table, write_table

HEAVY = ("rich", "pydantic", "babel", "sqlalchemy", "weasyprint", "matplotlib", "numpy", "httpx",
         "jinja2", "celery", "reports.config")
"""Libraries (and our config models) a command imports only when it needs them."""

PROBE = """
import json, sys
from reports.cli import app
heavy = {heavy!r}
seen = {{}}
for args in (["--help"], ["jobs"]):
    app(args, prog_name="ibl-reports", standalone_mode=False)
    seen[args[0]] = sorted(m for m in heavy if m in sys.modules)
print(json.dumps(seen), file=sys.stderr)
"""


def test_help_imports_none_and_jobs_only_pydantic_and_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state.db"\n\n[[reports]]\nname = "acme-weekly"\n'
        'org = "acme"\nperiod = "weekly"\nschedule = "0 7 * * 1"\ntimezone = "Europe/Berlin"\n',
        encoding="utf-8",
    )
    from reports.state.ledger import Ledger  # a state DB with a run: jobs reads its last run
    from reports.state.runs import RunState

    with Ledger(f"sqlite:///{tmp_path / 'state.db'}") as ledger:
        from datetime import date

        from reports.report.periods import Period

        run = ledger.start_run("acme-weekly", "acme", Period(date(2026, 11, 16),
                                                             date(2026, 11, 22)))
        ledger.transition(run, RunState.FAILED, error="boom")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)], cwd=tmp_path, capture_output=True,
        text=True, check=True,
    )
    assert "acme-weekly" in proc.stdout and "failed" in proc.stdout
    seen = json.loads(proc.stderr.strip().splitlines()[-1])
    assert seen["--help"] == []
    # pydantic: typer coerces options with it and the config is pydantic; rich is not needed
    # to print a table into a pipe, nor Babel for a report in English, nor SQLAlchemy to read
    # a SQLite ledger.
    assert seen["jobs"] == ["pydantic", "reports.config"]


def _callbacks(group: typer.Typer) -> Iterator[Any]:
    if group.registered_callback is not None:
        yield group.registered_callback.callback
    for command in group.registered_commands:
        yield command.callback
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        yield from _callbacks(sub.typer_instance)


def test_command_functions_have_real_annotations_not_strings() -> None:
    """typer reads every command's signature at every start; a postponed (string) annotation
    costs it two eval()s (30 commands: ~30 ms of each start)."""
    callbacks = [c for c in _callbacks(app) if c is not None]
    assert len(callbacks) >= 12
    stringly = [
        f"{fn.__module__}.{fn.__qualname__}: {name}"
        for fn in callbacks for name, hint in inspect.get_annotations(fn).items()
        if isinstance(hint, str)
    ]
    assert stringly == []


def _rich(headers: list[str], rows: list[list[str]], width: int) -> str:
    out = io.StringIO()
    table = Table(*headers, show_lines=False)
    for row in rows:
        table.add_row(*row)
    Console(width=width, file=out).print(table)
    return out.getvalue()


JOBS = ["report", "schedule", "next (local)", "next (UTC)", "paused", "last run"]


@pytest.mark.parametrize(
    ("headers", "rows", "width"),
    [
        pytest.param(JOBS, [["acme-weekly", "0 7 * * 1 (Europe/Berlin)", "2026-11-30 07:00 CET",
                             "2026-11-30 06:00 UTC", "-", "done (2026-11-16_2026-11-22)"],
                            ["acme-monthly", "0 7 1 * * (America/New_York)", "-", "-", "paused",
                             "never"]], 160, id="jobs"),
        pytest.param(JOBS, [], 120, id="no-rows"),
        pytest.param(["a", "", "c"], [["", "  x ", "y"], ["long cell", "", ""]], 120,
                     id="empty-and-spaced-cells"),
        pytest.param(["n"], [["x" * 116]], 120, id="exactly-the-width"),
        pytest.param(["a", "b"], [["one]", "(two) {three} 'four' <five>"]], 120,
                     id="closing-bracket-and-braces"),
    ],
)
def test_the_plain_table_is_the_text_rich_prints(
    headers: list[str], rows: list[list[str]], width: int
) -> None:
    assert plain_table(headers, rows, width) == _rich(headers, rows, width)


@pytest.mark.parametrize(
    "cell",
    [
        pytest.param("x" * 117, id="wider-than-the-console"),
        pytest.param("[bold]markup[/bold]", id="markup"),
        pytest.param("an :thumbs_up: emoji code", id="emoji-code"),
        pytest.param("Universit\u00e4t", id="non-ascii"),
        pytest.param("two\nlines", id="newline"),
        pytest.param("a\ttab", id="tab"),
    ],
)
def test_what_rich_would_change_is_left_to_rich(cell: str) -> None:
    assert plain_table(["n"], [[cell]], 120) is None
    out = io.StringIO()
    write_table(["n"], [[cell]], stdout=out)
    assert out.getvalue() == _rich(["n"], [[cell]], 160)


@pytest.mark.parametrize(
    ("env", "styled"),
    [
        pytest.param({}, False, id="a-pipe"),
        pytest.param({"FORCE_COLOR": "1"}, True, id="force-color"),
        pytest.param({"FORCE_COLOR": ""}, False, id="force-color-empty"),
        pytest.param({"TTY_COMPATIBLE": "1"}, True, id="tty-compatible"),
        pytest.param({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, False, id="tty-incompatible"),
    ],
)
def test_rich_draws_when_it_would_style_the_output(
    env: dict[str, str], styled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rows = [["acme-weekly", "done"]]
    out = io.StringIO()
    write_table(["report", "last run"], rows, stdout=out)
    assert ("\x1b[" in out.getvalue()) is styled
    if not styled:
        assert out.getvalue() == _rich(["report", "last run"], rows, 160)


def test_the_start_runs_without_the_collector_and_a_command_body_with_it() -> None:
    """``main`` starts with the cyclic GC off (nothing to collect while typer parses); every
    command body runs through ``guard``, which turns it back on: a scheduler or a worker runs
    for days."""
    from reports.cli.kit import guard, starting

    assert gc.isenabled()
    seen = []
    with starting():
        seen.append(gc.isenabled())
        guard(lambda: seen.append(gc.isenabled()))
        seen.append(gc.isenabled())
    assert seen == [False, True, True]
    assert gc.isenabled()
    with starting():  # a command that fails before its body: the collector is back on after
        seen.append(gc.isenabled())
    assert seen[-1] is False
    assert gc.isenabled()


def test_lifelong_freezes_what_the_block_built() -> None:
    from reports.report.gcpause import lifelong

    before = gc.get_freeze_count()
    with lifelong():
        assert not gc.isenabled()
        kept = [[i] for i in range(100)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(kept)
