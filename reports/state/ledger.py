"""The ledger: the one object the other stages use to remember runs, deliveries and archives.

It is the sum of its parts, each in its own module: ``runs`` (run states, events, stuck-run
recovery), ``deliveries`` (planning, states, attempts), ``archive_index``, and the web UI's
``audit`` trail and schedule ``pauses``, the held periods (``holds``) and the gate's alerts
(``gatealerts``), all on one
``engine.LedgerStore`` (one engine, the schema migrated on open, see ``schema``). The ledger is
what makes "each stakeholder gets each period's report exactly once" checkable.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from reports.config.executor import default_lease
from reports.report.periods import Clock
from reports.state.archive_index import ArchiveIndex
from reports.state.audit import AuditTrail
from reports.state.deliveries import DeliveryLedger
from reports.state.engine import utcnow
from reports.state.gatealerts import GateAlerts
from reports.state.holds import HoldLedger
from reports.state.pauses import ReportPauses
from reports.state.runs import DEFAULT_STUCK_AFTER_S, RunLedger


class Ledger(RunLedger, DeliveryLedger, ArchiveIndex, AuditTrail, ReportPauses, HoldLedger,
             GateAlerts):
    """Runs, deliveries, archive entries, the audit trail, pauses, the held periods and the
    freshness gate's alerts in one database."""

    def __init__(
        self, url: str = "sqlite:///state.db", *, clock: Clock = utcnow,
        stuck_after_s: float = DEFAULT_STUCK_AFTER_S, lease_s: float | None = None,
        engine: Engine | None = None, upgrade: bool = False,
    ) -> None:
        self.stuck_after = timedelta(seconds=stuck_after_s)
        # The run lease ([state] lease_s); by default the smaller of 10 s and stuck_after / 4.
        self.lease = timedelta(
            seconds=lease_s if lease_s is not None else default_lease(stuck_after_s)
        )
        super().__init__(url, clock=clock, engine=engine, upgrade=upgrade)
