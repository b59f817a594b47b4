"""The command line (typer): ``ibl-reports COMMAND``, thin over the run and the views.

``commands`` holds the app and the report commands (generate, send, jobs, runs, schedule, web);
``kit`` what every command shares (``--config`` before or after the command, errors to exit
codes 0/1/2/3); ``archive``, ``fleet`` and ``mock`` are command groups of their own.

``main``, the console script, first forks the PDF child of a one-shot ``generate`` when the
command line asks for one report (``early``), before typer and the rest are imported, then runs
the app. ``app`` is imported on first use.

Start-up is on the path of every command (``--help`` and ``jobs`` < 0.5 s): the modules that
define commands keep real annotations, not postponed ones, because typer builds every command
from its signature at each start and evaluates a string annotation twice; libraries a command
needs are imported inside it.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """The ``ibl-reports`` console script (and ``python -m reports.cli``)."""
    from reports.cli import early

    early.start(sys.argv[1:])
    from reports.cli.commands import main as run

    run()


def __getattr__(name: str) -> Any:
    """``app``, the typer application, imported when first asked for."""
    if name == "app":
        from reports.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
