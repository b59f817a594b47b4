"""The PDF child of a one-shot ``generate``, forked as the process starts.

A one-shot renders in two children (``execute.oneshot``). The PDF child's imports (WeasyPrint
and the render modules, ~0.5 s of CPU) are the longest path before the render can begin, and
the parent's own start (typer, reading the config, the run's modules, NumPy for the demo API:
~0.2-0.3 s) left the second core idle. So when the command line asks ``generate`` for one
report, ``start`` imports the config's models (pydantic; the job the child gets holds them),
forks the PDF child and only then lets the parent start typer; the child imports WeasyPrint
meanwhile, and ``OneShot`` adopts it (``take``) once the report is known. The charts child is
still forked then, from the parent with its imports.

The command line is only guessed at here (typer parses it later): a wrong guess costs a child
that is never adopted, which ends with this process. Nothing is forked for anything else
(``--all``, ``--help``, other commands), nor when another thread runs (a plain fork then is
unsafe; ``OneShot`` starts its own child).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reports.execute.oneshot import WarmWorker

_VALUED = frozenset({"--config", "--report", "--org", "--period", "--as-of", "--start", "--end",
                     "--out", "--html"})
"""The options before or with ``generate`` that take a value."""

_started: list[WarmWorker] = []
"""The child ``start`` forked, until ``take`` hands it over."""


def one_report(args: Sequence[str]) -> bool:
    """Whether ``args`` (the command line after the program's name) look like ``generate`` for
    one report: the command ``generate`` with ``--report`` or ``--org``, without ``--all`` or
    ``--help``."""
    command: str | None = None
    options: set[str] = set()
    values = iter(args)
    for arg in values:
        name = arg.split("=", 1)[0]
        if arg == "--":
            break
        if name.startswith("-"):
            options.add(name)
            if name in _VALUED and "=" not in arg:
                next(values, None)
        elif command is None:
            command = arg
    return (command == "generate" and bool(options & {"--report", "--org"})
            and not options & {"--all", "--help"})


def start(args: Sequence[str]) -> None:
    """Fork the PDF child if ``args`` ask ``generate`` for one report (see the module)."""
    if _started or threading.active_count() != 1 or not one_report(args):
        return
    from reports.report.gcpause import lifelong

    # pydantic and the config's models (the child's job holds a ReportConfig): imported before
    # the fork, they are imported once, not in both processes; live objects only, so they are
    # frozen, not collected (58 collections -> 2, ~11 ms)
    with lifelong():
        import reports.config  # noqa: F401
        from reports.errors import RenderError
        from reports.execute.oneshot import start_pdf_child

    try:
        _started.append(start_pdf_child())
    except RenderError:  # OneShot will start its own, and say so if it cannot
        return


def take() -> WarmWorker | None:
    """The PDF child ``start`` forked (a ``WarmWorker``, to adopt), once; None if there is none.
    """
    return _started.pop() if _started else None
