"""The archive index: one row per archived PDF (path, SHA-256, size, the data it was made from).

Keyed by (report, period, edition): regenerating a period replaces its entry of that edition;
a provisional PDF (made despite the freshness gate) is kept beside the final one. The archive
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
from reports.state.schema import archive_entries

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


class ArchiveIndex(LedgerStore):
    """The archive index: which PDF the archive keeps for each report and period."""

    def record_archive(
        self, report: str, org: str, period: Period, *, path: str, sha256: str, size: int,
        data_hash: str | None = None, edition: str = FINAL,
    ) -> ArchiveRecord:
        """Remember an archived PDF (replacing the entry of a regenerated period)."""
        now = self._now()
        values = {"org": org, "path": path, "sha256": sha256, "size": size,
                  "data_hash": data_hash, "created_at": now}
        try:
            with self._begin() as conn:
                key = _archive_key(report, period, edition)
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

    def archive_entries(self, report: str | None = None) -> list[ArchiveRecord]:
        """Every archive entry (of one report), oldest period first."""
        query = sa.select(archive_entries).order_by(
            archive_entries.c.period_start, archive_entries.c.report, archive_entries.c.edition
        )
        if report is not None:
            query = query.where(archive_entries.c.report == report)
        return [_archive(row) for row in self._select(query)]

    def remove_archive_entry(self, report: str, period: Period, edition: str = FINAL) -> bool:
        """Forget an archive entry; returns whether there was one."""
        try:
            with self._begin() as conn:
                result = conn.execute(
                    archive_entries.delete().where(*_archive_key(report, period, edition))
                )
                return bool(result.rowcount)
        except SQLAlchemyError as exc:
            raise self._fail(f"removing the archive entry of {report} {period.key}",
                             exc) from exc


def _archive_key(report: str, period: Period, edition: str) -> Sequence[Any]:
    return (archive_entries.c.report == report, archive_entries.c.period_start == period.start,
            archive_entries.c.period_end == period.end, archive_entries.c.edition == edition)


def _archive(row: sa.RowMapping) -> ArchiveRecord:
    return ArchiveRecord(
        report=row["report"], org=row["org"], period_start=row["period_start"],
        period_end=row["period_end"], path=row["path"], sha256=row["sha256"], size=row["size"],
        data_hash=row["data_hash"], created_at=row["created_at"], edition=row["edition"],
    )
