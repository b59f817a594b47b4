"""Tables on stdout (``jobs``, ``runs``, ``archive list``): rich's, drawn without rich when the
output is plain text.

rich costs ~40 ms to import, a tenth of ``ibl-reports jobs``. Written to a pipe or a file, its
table is plain box-drawing text that ``plain_table`` draws byte for byte the same whenever every
cell is one line of printable ASCII with nothing rich would read as markup or an emoji code and
the table fits the width; anything else (a terminal, colours forced, a cell to wrap) goes to rich.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

_PLAIN_CELL = re.compile(r"[ -~]*")
"""One line of printable ASCII: one column per character."""
_RICH_SYNTAX = re.compile(r"\[|:\S*:")
"""What rich might read as markup (``[bold]``) or an emoji code (``:smile:``)."""


def table_width(stdout: TextIO) -> int:
    """The table's width: the terminal's, at least 120 columns; 160 when not a terminal."""
    return max(120, os.get_terminal_size(0).columns if stdout.isatty() else 160)


def write_table(headers: list[str], rows: list[list[str]], stdout: TextIO | None = None
                ) -> None:
    """Print a table (rich's default box, a bold header) on ``stdout``."""
    out = sys.stdout if stdout is None else stdout
    width = table_width(out)
    if not _styled(out, os.environ):
        text = plain_table(headers, rows, width)
        if text is not None:
            out.write(text)
            return
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, show_lines=False)
    for row in rows:
        table.add_row(*row)
    Console(width=width, file=out).print(table)


def _styled(out: TextIO, env: Mapping[str, str]) -> bool:
    """Whether rich would write anything but plain text here: a terminal (or one it is told
    of with ``TTY_COMPATIBLE`` / ``FORCE_COLOR``), or no UTF-8 (it draws the box in ASCII)."""
    if not (getattr(out, "encoding", None) or "utf-8").lower().startswith("utf"):
        return True
    tty_compatible = env.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = env.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    try:
        return out.isatty()
    except ValueError:  # a closed stream: rich would say "not a terminal" and write nothing
        return True


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int
                ) -> str | None:
    """The text rich prints for this table on a plain-text console ``width`` wide, or None when
    rich would do more than pad the cells (wrap one, read markup, an emoji or a wide character).
    """
    cells = [*headers, *(cell for row in rows for cell in row)]
    if any(len(row) != len(headers) for row in rows) or not headers:
        return None
    if not all(_PLAIN_CELL.fullmatch(cell) and not _RICH_SYNTAX.search(cell) for cell in cells):
        return None
    widths = [max(len(cell) for cell in column) + 2 for column in zip(headers, *rows, strict=True)]
    if sum(widths) + len(widths) + 1 > width:
        return None

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * w for w in widths) + right + "\n"

    def line(edge: str, row: Sequence[str]) -> str:
        padded = (f" {cell.ljust(w - 2)} " for cell, w in zip(row, widths, strict=True))
        return edge + edge.join(padded) + edge + "\n"

    return "".join([
        rule("┏", "━", "┳", "┓"), line("┃", headers), rule("┡", "━", "╇", "┩"),
        *(line("│", row) for row in rows), rule("└", "─", "┴", "┘"),
    ])
