"""Held periods: what the scheduler looks after, kept across restarts and written by ``send``.

One row per (report, period) being held (``scheduler_holds``, schema version 9): when the
period was first held, the last look, how many times it was looked at again, the scheduler's
stop (``until``) and its stage (held, waiting, provisional, given-up). A restarted daemon reads
them back, so ``hold_for`` keeps counting from the first hold.

The daemon writes its own holds (``save_hold``: it is the only one that changes a row it
looks after). A ``send`` notes the periods it holds or sends provisional (``note_hold``: a new
row, or a held one moved to provisional), so the scheduler looks after a period held by hand
as it does its own; the send that delivers the final report drops the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from reports.report.periods import Period, PeriodKind
from reports.state.engine import LedgerStore
from reports.state.schema import scheduler_holds


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


def _values(hold: HoldRecord) -> dict[str, object]:
    return {
        "report": hold.report, "period_start": hold.period.start,
        "period_end": hold.period.end, "period_kind": hold.period.kind.value,
        "as_of": hold.as_of, "since": hold.since, "last_try": hold.last_try,
        "until": hold.until, "rechecks": hold.rechecks, "state": hold.state,
        "reason": hold.reason,
    }


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
        values = _values(hold)
        try:
            with self._begin() as conn:
                # Delete then insert: portable (no dialect upsert), and the daemon is the only
                # writer (the scheduler lock).
                conn.execute(scheduler_holds.delete().where(*_key(hold.report, hold.period)))
                conn.execute(scheduler_holds.insert().values(**values))
        except SQLAlchemyError as exc:
            raise self._fail(f"saving the hold of {hold.report} {hold.period.key}", exc) from exc

    def drop_hold(self, report: str, period: Period) -> None:
        """Forget the hold of ``report``'s ``period`` (its final report went out, or the
        scheduler gave it up and its catch-up can no longer send it)."""
        try:
            with self._begin() as conn:
                conn.execute(scheduler_holds.delete().where(*_key(report, period)))
        except SQLAlchemyError as exc:
            raise self._fail(f"dropping the hold of {report} {period.key}", exc) from exc

    def note_hold(self, hold: HoldRecord) -> None:
        """A ``send`` held ``hold``'s period (state ``held``: a new row unless there is one) or
        sent it provisional (state ``provisional``: a held or waiting row moves to it)."""
        try:
            with self._begin() as conn:
                if hold.state == "provisional":
                    conn.execute(scheduler_holds.update().where(
                        *_key(hold.report, hold.period),
                        scheduler_holds.c.state.in_(("held", "waiting")),
                    ).values(state="provisional", last_try=hold.last_try))
                if conn.execute(sa.select(scheduler_holds.c.report).where(
                        *_key(hold.report, hold.period))).first() is None:
                    conn.execute(scheduler_holds.insert().values(**_values(hold)))
        except IntegrityError:
            return  # the scheduler wrote the row meanwhile: it looks after the period
        except SQLAlchemyError as exc:
            raise self._fail(f"noting the hold of {hold.report} {hold.period.key}", exc) from exc
