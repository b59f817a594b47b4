"""The job list (``ibl-reports jobs``): every report, its next fire time, whether its schedule is
paused (the web UI's pause, which the scheduler honours) and its last run.

Read-only. The last run and the pauses come from the ledger: with the standard library's
sqlite3 for SQLite state URLs (``reports.schedule.lastrun``), through SQLAlchemy otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from reports.clip import clip
from reports.config import Config
from reports.report.periods import Clock
from reports.schedule.firetimes import next_fire_time


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobRow:
    """One line of ``ibl-reports jobs``."""

    report: str
    schedule: str
    timezone: str
    next_local: datetime | None
    next_utc: datetime | None
    last_state: str | None = None
    last_period: str | None = None
    last_finished: datetime | None = None
    last_error: str | None = None
    paused: bool = False
    """The schedule is paused: the scheduler skips its fires until it is resumed."""

    def last_run_text(self) -> str:
        if self.last_state is None:
            return "never"
        text = self.last_state
        if self.last_period:
            text += f" ({self.last_period})"
        if self.last_error:
            text += f": {clip(self.last_error, 60)}"
        return text

    def cells(self) -> list[str]:
        """The table cells: report, schedule, next (local), next (UTC), paused, last run."""
        def fmt(t: datetime | None, utc: bool) -> str:
            if t is None:
                return "-"
            return t.strftime("%Y-%m-%d %H:%M") + (" UTC" if utc else f" {t.tzname()}")

        return [
            self.report, f"{self.schedule} ({self.timezone})", fmt(self.next_local, False),
            fmt(self.next_utc, True), "paused" if self.paused else "-", self.last_run_text(),
        ]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "report": self.report, "schedule": self.schedule, "timezone": self.timezone,
            "next_local": iso(self.next_local), "next_utc": iso(self.next_utc),
            "last_state": self.last_state, "last_period": self.last_period,
            "last_finished": iso(self.last_finished), "last_error": self.last_error,
            "paused": self.paused,
        }


LastRun = Callable[[str], Any]


def _state_db_missing(config: Config) -> bool:
    from reports.schedule.lastrun import sqlite_path

    path = sqlite_path(config.state.url)
    return path is not None and not path.exists()


def list_jobs(
    config: Config, *, clock: Clock = _utc_now, last_run: LastRun | None = None,
    paused: Collection[str] = (),
) -> list[JobRow]:
    """Every report, its next fire time (local and UTC), whether it is paused and its last run
    (from the ledger; a caller passing ``last_run`` passes ``paused`` too).

    A missing state database means "never run"; an unreadable one shows state "unknown".
    """
    if last_run is not None or _state_db_missing(config):
        return _job_rows(config, clock(), last_run, None, paused)
    # SQLite (the default): read with the standard library; SQLAlchemy's import alone costs
    # ~0.35 s, most of `ibl-reports jobs` (see reports/schedule/lastrun.py).
    import sqlite3

    from reports.schedule.lastrun import sqlite_last_run, sqlite_paused

    try:
        light = sqlite_last_run(config.state.url)
        light_paused = sqlite_paused(config.state.url) if light is not None else None
    except sqlite3.Error as exc:
        return _job_rows(config, clock(), None, f"state database unreadable ({exc})", ())
    if light is not None:
        return _job_rows(config, clock(), light, None, light_paused or ())
    try:
        from reports.state.ledger import Ledger

        ledger = Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)
    except Exception as exc:  # a broken state DB must not hide the schedule
        return _job_rows(config, clock(), None, f"state database unreadable ({exc})", ())
    try:
        return _job_rows(config, clock(), ledger.last_run, None, ledger.paused_reports())
    finally:
        ledger.close()


def _job_rows(
    config: Config, now: datetime, last_run: LastRun | None, unreadable: str | None,
    paused: Collection[str],
) -> list[JobRow]:
    rows = []
    for report in config.reports:
        nxt = next_fire_time(report, now)
        zone = ZoneInfo(report.timezone)
        row = JobRow(
            report.name, report.schedule, report.timezone,
            nxt.astimezone(zone) if nxt else None, nxt.astimezone(UTC) if nxt else None,
            paused=report.name in paused,
        )
        record = None
        if unreadable:
            row = _with_last(row, "unknown", None, None, unreadable)
        elif last_run is not None:
            try:
                record = last_run(report.name)
            except Exception as exc:
                row = _with_last(row, "unknown", None, None,
                                 f"state database unreadable ({type(exc).__name__})")
        if record is not None:
            state = getattr(record, "state", None)
            start, end = getattr(record, "period_start", None), getattr(record, "period_end", None)
            row = _with_last(
                row, str(getattr(state, "value", state)),
                f"{start}_{end}" if start and end else None,
                getattr(record, "finished_at", None), getattr(record, "error", None),
            )
        rows.append(row)
    return rows


def _with_last(
    row: JobRow, state: str | None, period: str | None, finished: datetime | None,
    error: str | None,
) -> JobRow:
    from dataclasses import replace

    return replace(row, last_state=state, last_period=period, last_finished=finished,
                   last_error=error)
