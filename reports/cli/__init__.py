"""The command line (typer): ``ibl-reports COMMAND``, thin over the run and the views.

``main`` holds the app and the report commands (generate, send, jobs, runs, schedule, web);
``kit`` what every command shares (``--config`` before or after the command, errors to exit
codes 0/1/2/3); ``archive``, ``fleet`` and ``mock`` are command groups of their own.

Start-up is on the path of every command (``--help`` and ``jobs`` < 0.5 s): the modules that
define commands keep real annotations, not postponed ones, because typer builds every command
from its signature at each start and evaluates a string annotation twice; libraries a command
needs are imported inside it.
"""

from __future__ import annotations

from reports.cli.main import app, main

__all__ = ["app", "main"]
