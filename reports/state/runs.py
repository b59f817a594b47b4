"""Report runs: their states, the transitions between them, and the recovery of stuck runs.

A run moves through ``RunState`` (collecting -> rendering -> archived -> delivering -> done, or
failed from any working state, or collecting -> held when the freshness gate holds its period);
every transition writes a ``run_events`` row. A run also keeps its edition (provisional or final)
and the gate's verdict (JSON). A run left in a
working state for longer than ``stuck_after_s`` (a crash, a kill -9) is marked failed with a
"stale: ..." error when the next run of the same report and period starts, so it never blocks.
A run also remembers the process that owns it (host:pid): a run whose process is known to be
gone is recovered at once.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from reports.errors import StateError
from reports.logs import log_event
from reports.report.periods import Period, PeriodKind
from reports.state.engine import LedgerStore
from reports.state.schema import run_events, runs

# The name the ledger always logged under, kept for whoever filters on it.
_log = logging.getLogger("reports.state.ledger")

DEFAULT_STUCK_AFTER_S = 3600.0


class RunState(enum.StrEnum):
    """Where a report run is."""

    COLLECTING = "collecting"
    RENDERING = "rendering"
    ARCHIVED = "archived"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    HELD = "held"  # the freshness gate held the period: nothing archived or mailed


WORKING_STATES = frozenset(
    {RunState.COLLECTING, RunState.RENDERING, RunState.ARCHIVED, RunState.DELIVERING}
)
_RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.COLLECTING: frozenset({RunState.RENDERING, RunState.FAILED, RunState.HELD}),
    RunState.RENDERING: frozenset({RunState.ARCHIVED, RunState.FAILED}),
    # archived -> done: a run that only generates (no recipients, or `generate` without send).
    RunState.ARCHIVED: frozenset({RunState.DELIVERING, RunState.DONE, RunState.FAILED}),
    RunState.DELIVERING: frozenset({RunState.DONE, RunState.FAILED}),
    RunState.DONE: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.HELD: frozenset(),
}
PROVISIONAL = "provisional"
"""The edition of a run, delivery or archived PDF made despite the freshness gate."""


@dataclass(frozen=True)
class RunRecord:
    """One row of ``runs``."""

    id: int
    report: str
    org: str
    period_start: date
    period_end: date
    period_kind: str
    state: RunState
    data_hash: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None
    edition: str | None = None
    """None: final; ``provisional``: made despite the freshness gate."""
    gate: str | None = None
    """The freshness gate's verdict (JSON), when it judged this run."""

    @property
    def period(self) -> Period:
        """The period this run covers."""
        return Period(self.period_start, self.period_end, PeriodKind(self.period_kind))


@dataclass(frozen=True)
class RunEvent:
    """One transition of a run."""

    run_id: int
    from_state: RunState | None
    to_state: RunState
    at: datetime
    detail: str | None


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(owner: str | None) -> str | None:
    """Why the process that owns a run is known to be dead, or None if it may be alive.

    Only a process on this host can be checked; a run owned elsewhere waits for stuck_after.
    """
    if not owner:
        return None
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"the process that ran it (pid {pid}) is gone"
    except PermissionError:
        return None
    return None


class RunLedger(LedgerStore):
    """Report runs: their states, every transition, and the recovery of stuck runs."""

    stuck_after: timedelta

    def start_run(self, report: str, org: str, period: Period) -> int:
        """Open a run in ``collecting``; a stale working run of the same period is failed first.

        Raises StateError while another run of the same report and period is still working and
        not yet stale.
        """
        now = self._now()
        try:
            with self._begin() as conn:
                active = conn.execute(
                    sa.select(runs).where(
                        runs.c.report == report,
                        runs.c.period_start == period.start,
                        runs.c.period_end == period.end,
                        runs.c.state.in_([s.value for s in WORKING_STATES]),
                    )
                ).mappings().first()
                if active is not None:
                    record = _run(active)
                    gone = _owner_gone(active["owner"])
                    if now - record.updated_at <= self.stuck_after and not gone:
                        raise StateError(
                            f"report {report!r} already has a run in progress for {period.key} "
                            f"(run {record.id}, {record.state.value} since "
                            f"{record.updated_at.isoformat(timespec='seconds')}); it becomes "
                            f"recoverable after {self.stuck_after.total_seconds():.0f} s"
                        )
                    self._mark_stale(conn, record, now, gone)
                run_id = conn.execute(
                    runs.insert().values(
                        report=report, org=org, period_start=period.start,
                        period_end=period.end, period_kind=str(period.kind),
                        state=RunState.COLLECTING.value, started_at=now, updated_at=now,
                        owner=_this_process(),
                    )
                ).inserted_primary_key
                assert run_id is not None
                new_id = int(run_id[0])
                conn.execute(run_events.insert().values(
                    run_id=new_id, from_state=None, to_state=RunState.COLLECTING.value, at=now,
                    detail=f"{report} {period.key}",
                ))
        except IntegrityError:
            raise StateError(
                f"report {report!r} already has a run in progress for {period.key} (started by "
                "another process just now)"
            ) from None
        except SQLAlchemyError as exc:
            raise self._fail("starting a run", exc) from exc
        moved: dict[str, Any] = {"from": None, "to": RunState.COLLECTING.value}
        log_event(_log, "run.transition", run=new_id, report=report, period=period.key,
                  **moved, org=org)
        return new_id

    def _mark_stale(
        self, conn: Connection, record: RunRecord, now: datetime, gone: str | None = None
    ) -> None:
        why = gone or "the process probably died"
        error = (f"stale: no progress since {record.updated_at.isoformat(timespec='seconds')} "
                 f"in state {record.state.value} ({why})")
        conn.execute(runs.update().where(runs.c.id == record.id).values(
            state=RunState.FAILED.value, updated_at=now, finished_at=now, error=error,
        ))
        conn.execute(run_events.insert().values(
            run_id=record.id, from_state=record.state.value, to_state=RunState.FAILED.value,
            at=now, detail=error,
        ))

    def recover_stale(self, report: str | None = None) -> list[int]:
        """Mark every run stuck in a working state for longer than stuck_after failed."""
        now = self._now()
        recovered: list[int] = []
        try:
            with self._begin() as conn:
                query = sa.select(runs).where(
                    runs.c.state.in_([s.value for s in WORKING_STATES]),
                    runs.c.updated_at < now - self.stuck_after,
                )
                if report is not None:
                    query = query.where(runs.c.report == report)
                for row in conn.execute(query).mappings().all():
                    record = _run(row)
                    self._mark_stale(conn, record, now)
                    recovered.append(record.id)
        except SQLAlchemyError as exc:
            raise self._fail("recovering stale runs", exc) from exc
        return recovered

    def transition(
        self, run_id: int, state: RunState | str, *, detail: str | None = None,
        error: str | None = None, data_hash: str | None = None, gate: str | None = None,
        edition: str | None = None,
    ) -> RunRecord:
        """Move a run to ``state``; an illegal move raises StateError and changes nothing.

        ``gate`` (the freshness verdict as JSON) and ``edition`` are kept on the run when given.
        """
        target = RunState(state)
        now = self._now()
        try:
            with self._begin() as conn:
                row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
                if row is None:
                    raise StateError(f"there is no run {run_id}")
                current = RunState(row["state"])
                if target not in _RUN_TRANSITIONS[current]:
                    raise StateError(
                        f"run {run_id} cannot go from {current.value} to {target.value}"
                        + (f" ({row['error']})" if row["error"] else "")
                    )
                values: dict[str, Any] = {"state": target.value, "updated_at": now}
                if target in (RunState.DONE, RunState.FAILED, RunState.HELD):
                    values["finished_at"] = now
                if gate is not None:
                    values["gate"] = gate
                if edition is not None:
                    values["edition"] = edition
                if error is not None:
                    values["error"] = error
                if data_hash is not None:
                    values["data_hash"] = data_hash
                # Compare-and-set: a run failed as stale by another process stays failed.
                result = conn.execute(
                    runs.update().where(runs.c.id == run_id, runs.c.state == current.value)
                    .values(**values)
                )
                if result.rowcount != 1:
                    raise StateError(f"run {run_id} changed state while moving to "
                                     f"{target.value}; it was probably recovered as stale")
                conn.execute(run_events.insert().values(
                    run_id=run_id, from_state=current.value, to_state=target.value, at=now,
                    detail=detail if detail is not None else error,
                ))
                updated = _run(conn.execute(
                    sa.select(runs).where(runs.c.id == run_id)
                ).mappings().one())
        except SQLAlchemyError as exc:
            raise self._fail(f"moving run {run_id} to {target.value}", exc) from exc
        moved: dict[str, Any] = {"from": current.value, "to": target.value}
        log_event(
            _log, "run.transition", level=logging.ERROR if error else logging.INFO,
            run=run_id, report=updated.report, period=updated.period.key,
            **moved, detail=detail, error=error,
        )
        return updated

    def run(self, run_id: int) -> RunRecord | None:
        """The run with this id."""
        rows = self._select(sa.select(runs).where(runs.c.id == run_id))
        return _run(rows[0]) if rows else None

    def last_run(self, report: str) -> RunRecord | None:
        """The most recently started run of ``report``."""
        found = self.runs(report, limit=1)
        return found[0] if found else None

    def runs(self, report: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The latest runs, newest first."""
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        if report is not None:
            query = query.where(runs.c.report == report)
        return [_run(row) for row in self._select(query)]

    def events(self, run_id: int) -> list[RunEvent]:
        """Every transition of a run, oldest first."""
        query = (sa.select(run_events).where(run_events.c.run_id == run_id)
                 .order_by(run_events.c.id))
        return [
            RunEvent(
                run_id=row["run_id"],
                from_state=RunState(row["from_state"]) if row["from_state"] else None,
                to_state=RunState(row["to_state"]), at=row["at"], detail=row["detail"],
            )
            for row in self._select(query)
        ]


def _run(row: sa.RowMapping) -> RunRecord:
    return RunRecord(
        id=row["id"], report=row["report"], org=row["org"], period_start=row["period_start"],
        period_end=row["period_end"], period_kind=row["period_kind"],
        state=RunState(row["state"]), data_hash=row["data_hash"], started_at=row["started_at"],
        updated_at=row["updated_at"], finished_at=row["finished_at"], error=row["error"],
        edition=row["edition"], gate=row["gate"],
    )
