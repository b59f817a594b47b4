"""A run's state transitions as the run page shows them: the "archived" one names the archived
PDF by its archive key (``<org>/<report>/<file>``) and links to its download, never the
server's path.

The ledger records where the PDF was kept (a file path or an ``s3://`` URL, prefixed ``reused``
when the run mailed a PDF an earlier run archived); that location is the server's business.
A reader gets the key and, while the archive index still lists the PDF, a link to it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reports.state.runs import RunEvent, RunState
from reports.web.scoped import ArchiveRow

_REUSED = "reused "
_SEPARATORS = re.compile(r"[/\\]")


@dataclass(frozen=True)
class Transition:
    """One row of the run page's transitions table."""

    event: RunEvent
    detail: str
    """The text shown (for an archived transition: the archive key, never a location)."""
    href: str | None = None
    """The download of the PDF an archived transition names, while the archive keeps it."""
    prefix: str = ""
    """Words before the linked key (``reused``)."""


def archive_key(location: str) -> str:
    """The archive key of an archived file's location: its last three components
    (``<org>/<report>/<file>``, names the archive checked when it wrote them)."""
    return "/".join(part for part in _SEPARATORS.split(location)[-3:] if part)


def transitions(events: Sequence[RunEvent], archived: Sequence[ArchiveRow]) -> list[Transition]:
    """The run's transitions for the page; ``archived`` is the report's archive as the
    principal may see it (current PDFs and the earlier renders kept)."""
    by_location = {row.entry.path: row for row in archived}
    return [_shown(event, by_location) for event in events]


def _shown(event: RunEvent, by_location: dict[str, ArchiveRow]) -> Transition:
    detail = event.detail or ""
    if event.to_state is not RunState.ARCHIVED or not detail:
        return Transition(event, detail)
    prefix = _REUSED if detail.startswith(_REUSED) else ""
    location = detail.removeprefix(prefix)
    row = by_location.get(location)
    if row is not None:
        return Transition(event, archive_key(location), href=row.href, prefix=prefix)
    return Transition(event, f"{archive_key(location)} (no longer in the archive)",
                      prefix=prefix)
