"""Held periods: what the scheduler remembers of them, and whether a period was held before.

The scheduler keeps one row per (report, period) it is holding (``scheduler_holds``, schema
version 9): when the period was first held, the last look, how many times it was looked at
again, and its stage (held, waiting, provisional, given-up). A restarted daemon reads them back,
so ``hold_for`` keeps counting from the first hold and no stage's alert is sent twice.

``held_before`` answers a manual ``send`` from the runs themselves: a period with an earlier
held run has had its one alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reports.report.periods import Period, PeriodKind
from reports.state.engine import LedgerStore
from reports.state.schema import runs, scheduler_holds


@dataclass(frozen=True)
class HoldRecord:
    """One held period of a report, as stored."""

    report: str
    period: Period
    as_of: date
    since: datetime
    """When the period was first held."""
    last_try: datetime
    until: datetime | None
    rechecks: int
    state: str
    reason: str = ""


def _key(report: str, period: Period) -> tuple[sa.ColumnElement[bool], ...]:
    return (scheduler_holds.c.report == report, scheduler_holds.c.period_start == period.start,
            scheduler_holds.c.period_end == period.end)


class HoldLedger(LedgerStore):
    """The scheduler's held periods, kept across restarts."""

    def hold_records(self) -> list[HoldRecord]:
        """Every stored hold, oldest first."""
        rows = self._select(sa.select(scheduler_holds).order_by(
            scheduler_holds.c.since, scheduler_holds.c.report))
        return [HoldRecord(
            report=r["report"],
            period=Period(r["period_start"], r["period_end"], PeriodKind(r["period_kind"])),
            as_of=r["as_of"], since=r["since"], last_try=r["last_try"], until=r["until"],
            rechecks=int(r["rechecks"]), state=r["state"], reason=r["reason"] or "",
        ) for r in rows]

    def save_hold(self, hold: HoldRecord) -> None:
        """Insert or replace the stored hold of ``hold``'s report and period."""
        values = {
            "report": hold.report, "period_start": hold.period.start,
            "period_end": hold.period.end, "period_kind": hold.period.kind.value,
            "as_of": hold.as_of, "since": hold.since, "last_try": hold.last_try,
            "until": hold.until, "rechecks": hold.rechecks, "state": hold.state,
            "reason": hold.reason,
        }
        try:
            with self._begin() as conn:
                # Delete then insert: portable (no dialect upsert), and the daemon is the only
                # writer (the scheduler lock).
                conn.execute(scheduler_holds.delete().where(*_key(hold.report, hold.period)))
                conn.execute(scheduler_holds.insert().values(**values))
        except SQLAlchemyError as exc:
            raise self._fail(f"saving the hold of {hold.report} {hold.period.key}", exc) from exc

    def drop_hold(self, report: str, period: Period) -> None:
        """Forget the hold of ``report``'s ``period`` (its final report went out)."""
        try:
            with self._begin() as conn:
                conn.execute(scheduler_holds.delete().where(*_key(report, period)))
        except SQLAlchemyError as exc:
            raise self._fail(f"dropping the hold of {report} {period.key}", exc) from exc

    def held_before(self, report: str, period: Period, run_id: int) -> bool:
        """Whether a run of ``report``'s ``period`` other than ``run_id`` was held."""
        query = sa.select(runs.c.id).where(
            runs.c.report == report, runs.c.period_start == period.start,
            runs.c.period_end == period.end, runs.c.state == "held", runs.c.id != run_id,
        ).limit(1)
        return bool(self._select(query))
