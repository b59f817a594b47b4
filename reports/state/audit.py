"""The audit trail: who did what in the web UI, and when (every PDF download and preview, every
action, every failed login).

Rows are only ever added. They name the user (for a failed login: the name tried), the action,
the report and run it concerned and a short detail (an address, a file name, the client
address of a login); never a password, hash or secret.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reports.state.engine import LedgerStore
from reports.state.schema import audit_log

DETAIL_MAX = 1000


@dataclass(frozen=True)
class AuditRecord:
    """One row of ``audit_log``."""

    at: datetime
    user: str
    action: str
    report: str | None
    run_id: int | None
    detail: str


class AuditTrail(LedgerStore):
    """Writes and reads the audit trail."""

    def audit(
        self, user: str, action: str, *, report: str | None = None, run_id: int | None = None,
        detail: str = "",
    ) -> AuditRecord:
        """Record that ``user`` did ``action`` now."""
        record = AuditRecord(self._now(), user[:100], action[:40], report, run_id,
                             detail[:DETAIL_MAX])
        try:
            with self._begin() as conn:
                conn.execute(audit_log.insert().values(
                    at=record.at, user_name=record.user, action=record.action,
                    report=record.report, run_id=record.run_id, detail=record.detail,
                ))
        except SQLAlchemyError as exc:
            raise self._fail(f"recording {action} by {user} in the audit trail", exc) from exc
        return record

    def audit_rows(
        self, *, report: str | None = None, run_id: int | None = None, limit: int = 50,
        reports: Collection[str] | None = None,
    ) -> list[AuditRecord]:
        """The latest audit rows (of one report or run, or of any of ``reports``), newest
        first."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if report is not None:
            query = query.where(audit_log.c.report == report)
        if reports is not None:
            query = query.where(audit_log.c.report.in_(list(reports)))
        if run_id is not None:
            query = query.where(audit_log.c.run_id == run_id)
        return [
            AuditRecord(row["at"], row["user_name"], row["action"], row["report"],
                        row["run_id"], row["detail"] or "")
            for row in self._select(query)
        ]
