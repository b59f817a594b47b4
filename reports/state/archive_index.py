"""The archive index: one row per archived PDF (path, SHA-256, size, the data it was made from,
the run that archived it) and the report's HTML kept beside it (location, SHA-256, size; none
for PDFs archived before schema version 8).

Keyed by (report, period, edition): regenerating a period replaces its entry of that edition;
a provisional PDF (made despite the freshness gate) is kept beside the final one. An entry
replaced by a PDF at another path (a re-render with another render key: the config, templates
or data changed) moves to ``archive_history``, its file kept, so the archive still holds what
an earlier recipient got (``deliveries.pdf_sha256``). The archive
itself (the files) lives in ``reports.delivery.archive``; this is what the state database
remembers of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reports.report.periods import Period
from reports.state.engine import LedgerStore
from reports.state.schema import archive_entries, archive_history

FINAL = "final"


@dataclass(frozen=True)
class ArchiveRecord:
    """One row of ``archive_entries``: a PDF kept in the archive."""

    report: str
    org: str
    period_start: date
    period_end: date
    path: str
    sha256: str
    size: int
    data_hash: str | None
    created_at: datetime
    edition: str = FINAL
    """``final`` or ``provisional``."""
    render_key: str | None = None
    """Hash of everything that shaped the PDF (data, report config, templates, version)."""
    current: bool = True
    """False for an earlier PDF of the period, kept as history after a re-render."""
    html_path: str | None = None
    """The report's HTML (the PDF's source, self-contained), or None (archived before v8)."""
    html_sha256: str | None = None
    html_size: int | None = None
    run_id: int | None = None
    """The run that archived it (None before v8)."""


class ArchiveIndex(LedgerStore):
    """The archive index: which PDF the archive keeps for each report and period."""

    def record_archive(
        self, report: str, org: str, period: Period, *, path: str, sha256: str, size: int,
        data_hash: str | None = None, edition: str = FINAL, render_key: str | None = None,
        html: tuple[str, str, int] | None = None, run_id: int | None = None,
    ) -> ArchiveRecord:
        """Remember an archived PDF as the period's current one (of ``edition``).

        The previous current PDF, if it lives at another path, is kept as history (its file
        stays in the archive); a history row at ``path`` becomes current again. ``html`` is the
        location, SHA-256 and size of the report's HTML kept beside it.
        """
        now = self._now()
        html_path, html_sha256, html_size = html or (None, None, None)
        values = {"org": org, "path": path, "sha256": sha256, "size": size,
                  "data_hash": data_hash, "created_at": now, "render_key": render_key,
                  "html_path": html_path, "html_sha256": html_sha256, "html_size": html_size,
                  "run_id": run_id}
        try:
            with self._begin() as conn:
                key = _archive_key(report, period, edition)
                before = conn.execute(sa.select(archive_entries).where(*key)).mappings().first()
                if before is not None and before["path"] != path:
                    kept = {k: before[k] for k in before if k != "id"}
                    conn.execute(archive_history.delete().where(
                        archive_history.c.path == before["path"]))
                    conn.execute(archive_history.insert().values(**kept))
                conn.execute(archive_history.delete().where(archive_history.c.path == path))
                result = conn.execute(archive_entries.update().where(*key).values(**values))
                if result.rowcount == 0:
                    conn.execute(archive_entries.insert().values(
                        report=report, period_start=period.start, period_end=period.end,
                        edition=edition, **values,
                    ))
                row = conn.execute(sa.select(archive_entries).where(*key)).mappings().one()
                return _archive(row)
        except SQLAlchemyError as exc:
            raise self._fail(f"recording the archive entry of {report} {period.key}",
                             exc) from exc

    def archive_entry(self, report: str, period: Period, edition: str = FINAL
                      ) -> ArchiveRecord | None:
        """The archive entry of ``report`` for ``period`` (of ``edition``)."""
        rows = self._select(
            sa.select(archive_entries).where(*_archive_key(report, period, edition)))
        return _archive(rows[0]) if rows else None

    def archive_files(self, report: str, period: Period, edition: str = FINAL
                      ) -> list[ArchiveRecord]:
        """Every archived PDF of ``report`` for ``period`` (of ``edition``): the current one
        first, then the history, newest first."""
        history = self._select(
            sa.select(archive_history)
            .where(*_archive_key(report, period, edition, archive_history))
            .order_by(archive_history.c.created_at.desc(), archive_history.c.id.desc())
        )
        current = self.archive_entry(report, period, edition)
        return ([current] if current else []) + [_archive(row, current=False) for row in history]

    def archive_entries(self, report: str | None = None) -> list[ArchiveRecord]:
        """Every archived PDF (of one report), current and history, oldest period first."""
        found: list[ArchiveRecord] = []
        for table, current in ((archive_entries, True), (archive_history, False)):
            query = sa.select(table)
            if report is not None:
                query = query.where(table.c.report == report)
            found += [_archive(row, current=current) for row in self._select(query)]
        found.sort(key=lambda e: (e.period_start, e.report, e.edition, not e.current,
                                  e.created_at))
        return found

    def remove_archive_entry(self, report: str, period: Period, edition: str = FINAL, *,
                             path: str | None = None) -> bool:
        """Forget the period's entries of ``edition``, history included (only the one at
        ``path`` if given); returns whether there was one."""
        removed = 0
        try:
            with self._begin() as conn:
                for table in (archive_entries, archive_history):
                    where = list(_archive_key(report, period, edition, table))
                    if path is not None:
                        where.append(table.c.path == path)
                    removed += conn.execute(table.delete().where(*where)).rowcount
                return bool(removed)
        except SQLAlchemyError as exc:
            raise self._fail(f"removing the archive entry of {report} {period.key}",
                             exc) from exc


def _archive_key(report: str, period: Period, edition: str,
                 table: sa.Table = archive_entries) -> Sequence[Any]:
    return (table.c.report == report, table.c.period_start == period.start,
            table.c.period_end == period.end, table.c.edition == edition)


def _archive(row: sa.RowMapping, *, current: bool = True) -> ArchiveRecord:
    return ArchiveRecord(
        report=row["report"], org=row["org"], period_start=row["period_start"],
        period_end=row["period_end"], path=row["path"], sha256=row["sha256"], size=row["size"],
        data_hash=row["data_hash"], created_at=row["created_at"], edition=row["edition"],
        render_key=row["render_key"], current=current, html_path=row["html_path"],
        html_sha256=row["html_sha256"], html_size=row["html_size"], run_id=row["run_id"],
    )
