"""Paused reports: the scheduler skips the fires (and the catch-up) of a report paused in the
web UI, until it is resumed. The flag lives in the state database (``reports.state.pauses``).

``PauseGate`` asks the ledger (opened for each question: runs are rare, and no connection is
held between them); a state database it cannot read counts as
"not paused", as the done check does: a send is idempotent, a silently skipped one is not
noticed.
"""

from __future__ import annotations

import logging

from reports.config import Config
from reports.logs import log_event

log = logging.getLogger("reports.schedule.scheduler")

class PauseGate:
    """Decides whether a due run is skipped because its report is paused."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def skips(self, report: str, period_key: str) -> bool:
        """True (and one ``run.skipped`` line) when ``report`` is paused."""
        try:
            paused = self._ask_ledger(report)
        except Exception as exc:  # an unreadable ledger must not stop the schedule
            log_event(log, "ledger.unreadable", level=logging.WARNING, report=report,
                      period=period_key, error=f"{type(exc).__name__}: {exc}")
            return False
        if paused:
            log_event(log, "run.skipped", report=report, period=period_key,
                      reason="paused in the web UI")
        return bool(paused)

    def _ask_ledger(self, report: str) -> bool:
        from reports.state.ledger import Ledger

        state = self._config.state
        with Ledger(state.url, stuck_after_s=state.stuck_after_s) as ledger:
            return bool(ledger.is_paused(report))
