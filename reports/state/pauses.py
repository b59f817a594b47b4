"""Paused report schedules: a report listed here is skipped by the scheduler until resumed.

Pausing is a flag in the state database (not in config.toml), so the web UI can set it while
the scheduler runs, and the scheduler reads it when a job fires.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reports.state.engine import LedgerStore
from reports.state.schema import report_pauses


class ReportPauses(LedgerStore):
    """Which reports' schedules are paused."""

    def paused_reports(self) -> set[str]:
        """The names of every paused report."""
        return {row["report"] for row in self._select(sa.select(report_pauses.c.report))}

    def is_paused(self, report: str) -> bool:
        """Whether ``report``'s schedule is paused."""
        query = sa.select(report_pauses.c.report).where(report_pauses.c.report == report)
        return bool(self._select(query))

    def set_paused(self, report: str, paused: bool, *, by: str) -> bool:
        """Pause or resume ``report``; returns whether anything changed."""
        try:
            with self._begin() as conn:
                current = conn.execute(
                    sa.select(report_pauses.c.report).where(report_pauses.c.report == report)
                ).first()
                if paused and current is None:
                    conn.execute(report_pauses.insert().values(
                        report=report, paused_at=self._now(), paused_by=by[:100],
                    ))
                    return True
                if not paused and current is not None:
                    conn.execute(report_pauses.delete().where(report_pauses.c.report == report))
                    return True
                return False
        except SQLAlchemyError as exc:
            verb = "pausing" if paused else "resuming"
            raise self._fail(f"{verb} the schedule of {report}", exc) from exc
