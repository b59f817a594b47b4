"""Paused reports: the scheduler skips the fires (and the catch-up) of a report paused in the
web UI, until it is resumed. The flag lives in the state database (``reports.state.pauses``).

``PauseGate`` asks the ledger (opened on first use) or a ``PausedCheck`` passed in; a state
database it cannot read counts as "not paused", as the done check does: a send is idempotent,
a silently skipped one is not noticed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from reports.config import Config
from reports.logs import log_event

log = logging.getLogger("reports.schedule.scheduler")

PausedCheck = Callable[[str], bool]
"""Whether a report's schedule is paused."""


class PauseGate:
    """Decides whether a due run is skipped because its report is paused."""

    def __init__(self, config: Config, check: PausedCheck | None = None) -> None:
        self._config = config
        self._check = check
        self._ledger: Any = None

    def skips(self, report: str, period_key: str) -> bool:
        """True (and one ``run.skipped`` line) when ``report`` is paused."""
        try:
            if self._check is None:
                from reports.state.ledger import Ledger

                state = self._config.state
                self._ledger = Ledger(state.url, stuck_after_s=state.stuck_after_s)
                self._check = self._ledger.is_paused
            paused = self._check(report)
        except Exception as exc:  # an unreadable ledger must not stop the schedule
            log_event(log, "ledger.unreadable", level=logging.WARNING, report=report,
                      period=period_key, error=f"{type(exc).__name__}: {exc}")
            return False
        if paused:
            log_event(log, "run.skipped", report=report, period=period_key,
                      reason="paused in the web UI")
        return bool(paused)

    def close(self) -> None:
        """Release the ledger, if one was opened."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
