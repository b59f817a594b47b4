"""The freshness gate's alerts that went out: at most one per (report, period, stage).

Two stages are alerted by the ``send`` itself: ``held`` (the period's first hold) and
``provisional`` (its first provisional delivery). The row is written once the alert was sent, so
a run that stopped between delivering a provisional report and telling ``[alerts]`` (a crash, a
kill, an alert that could not be mailed) leaves the alert to the next run of the period, which
sends it then. The one window left is a crash between the alert's mail and this row: that
alert goes out once more.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from reports.report.periods import Period
from reports.state.engine import LedgerStore
from reports.state.schema import gate_alerts

HELD = "held"
PROVISIONAL = "provisional"


def _key(report: str, period: Period, stage: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (gate_alerts.c.report == report, gate_alerts.c.period_start == period.start,
            gate_alerts.c.period_end == period.end, gate_alerts.c.stage == stage)


class GateAlerts(LedgerStore):
    """Which of a period's gate alerts went out, and when."""

    def alerted_at(self, report: str, period: Period, stage: str) -> datetime | None:
        """When ``stage``'s alert of ``report``'s ``period`` went out (None: not yet)."""
        rows = self._select(sa.select(gate_alerts.c.alerted_at).where(
            *_key(report, period, stage)))
        return rows[0]["alerted_at"] if rows else None

    def record_alerted(self, report: str, period: Period, stage: str) -> None:
        """``stage``'s alert of ``report``'s ``period`` went out now (kept if already there)."""
        try:
            with self._begin() as conn:
                conn.execute(gate_alerts.insert().values(
                    report=report, period_start=period.start, period_end=period.end,
                    stage=stage, alerted_at=self._now()))
        except IntegrityError:
            return  # another run of the period recorded it first
        except SQLAlchemyError as exc:
            raise self._fail(f"recording the {stage} alert of {report} {period.key}",
                             exc) from exc
