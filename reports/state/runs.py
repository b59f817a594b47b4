"""Report runs: their states, the transitions between them, and the recovery of stuck runs.

A run moves through ``RunState`` (collecting -> rendering -> archived -> delivering -> done, or
failed from any working state, or collecting -> held when the freshness gate holds its period);
every transition writes a ``run_events`` row. A run also keeps its edition (provisional or final)
and the gate's verdict (JSON). A run left in a
working state for longer than ``stuck_after_s`` (a crash, a kill -9) is marked failed with a
"stale: ..." error when the next run of the same report and period starts, so it never blocks.
A working run is owned by a lease (``reports.state.lease``): an attempt token and a
``lease_until`` renewed by a heartbeat while the run works. A run whose lease ran out is
recovered by the next attempt at once, whatever machine it ran on and whatever reaps (or does
not reap) its process; writes of an attempt that lost its run are refused.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from reports.errors import RunBusyError, StateError
from reports.logs import log_event
from reports.report.periods import Period, PeriodKind
from reports.state.engine import LedgerStore
from reports.state.lease import Heartbeat, db_now, new_attempt
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


class RunLedger(LedgerStore):
    """Report runs: their states, every transition, and the recovery of stuck runs."""

    stuck_after: timedelta
    lease: timedelta

    @overload
    def start_run(self, report: str, org: str, period: Period, *, wait_s: float = 0.0) -> int:
        ...

    @overload
    def start_run(
        self, report: str, org: str, period: Period, *, wait_s: float = 0.0,
        until: Callable[[], bool],
    ) -> int | None:
        ...

    def start_run(
        self, report: str, org: str, period: Period, *, wait_s: float = 0.0,
        until: Callable[[], bool] | None = None,
    ) -> int | None:
        """Open a run in ``collecting`` under a new lease; a dead working run is failed first.

        A working run of the same report and period whose lease ran out (or that made no
        progress for ``stuck_after_s``) is marked failed as stale, only if it is still as read.
        One whose lease is alive raises RunBusyError, after waiting up to ``wait_s`` for it to
        finish or run out (a killed attempt's lease runs out within ``lease_s``); while waiting,
        ``until()`` true (e.g. the other attempt got the period done) returns None.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self._start_run(report, org, period)
            except RunBusyError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(left, max(0.05, getattr(exc, "retry_in_s", 0.5))))
            if until is not None and until():
                return None

    def _start_run(self, report: str, org: str, period: Period) -> int:
        now = self._now()
        attempt = new_attempt()
        try:
            with self._begin() as conn:
                db = db_now(conn, self._now)
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
                    lease_until = active["lease_until"]
                    alive = lease_until is None or lease_until > db
                    if alive and now - record.updated_at <= self.stuck_after:
                        holder = f", held by {active['owner']}" if active["owner"] else ""
                        busy = RunBusyError(
                            f"report {report!r} already has a run in progress for {period.key} "
                            f"(run {record.id}, {record.state.value} since "
                            f"{record.updated_at.isoformat(timespec='seconds')}{holder}); it "
                            "becomes recoverable once its lease runs out (the process died) "
                            f"or after {self.stuck_after.total_seconds():.0f} s"
                        )
                        busy.retry_in_s = (  # type: ignore[attr-defined]
                            (lease_until - db).total_seconds() + 0.05 if lease_until else 1.0
                        )
                        raise busy
                    why = (f"its lease ran out at {lease_until.isoformat(timespec='seconds')}: "
                           "the process that ran it died" if not alive
                           else "the process probably died")
                    self._mark_stale(conn, active, now, why)
                run_id = conn.execute(
                    runs.insert().values(
                        report=report, org=org, period_start=period.start,
                        period_end=period.end, period_kind=str(period.kind),
                        state=RunState.COLLECTING.value, started_at=now, updated_at=now,
                        owner=_this_process(), attempt=attempt,
                        lease_until=db + self.lease,
                    )
                ).inserted_primary_key
                assert run_id is not None
                new_id = int(run_id[0])
                conn.execute(run_events.insert().values(
                    run_id=new_id, from_state=None, to_state=RunState.COLLECTING.value, at=now,
                    detail=f"{report} {period.key}",
                ))
        except IntegrityError:
            busy = RunBusyError(
                f"report {report!r} already has a run in progress for {period.key} (started by "
                "another process just now)"
            )
            busy.retry_in_s = 0.5  # type: ignore[attr-defined]
            raise busy from None
        except SQLAlchemyError as exc:
            raise self._fail("starting a run", exc) from exc
        self._attempts[new_id] = attempt
        moved: dict[str, Any] = {"from": None, "to": RunState.COLLECTING.value}
        log_event(_log, "run.transition", run=new_id, report=report, period=period.key,
                  **moved, org=org)
        return new_id

    def _mark_stale(
        self, conn: Connection, row: sa.RowMapping, now: datetime, why: str,
    ) -> None:
        """Fail a dead run, only if it is still exactly as read (state and attempt)."""
        record = _run(row)
        error = (f"stale: no progress since {record.updated_at.isoformat(timespec='seconds')} "
                 f"in state {record.state.value} ({why})")
        same_attempt = (runs.c.attempt.is_(None) if row["attempt"] is None
                        else runs.c.attempt == row["attempt"])
        result = conn.execute(runs.update().where(
            runs.c.id == record.id, runs.c.state == record.state.value, same_attempt,
        ).values(state=RunState.FAILED.value, updated_at=now, finished_at=now, error=error))
        if result.rowcount != 1:
            raise RunBusyError(f"run {record.id} of {record.report} changed while it was being "
                               "recovered; another attempt is handling it")
        conn.execute(run_events.insert().values(
            run_id=record.id, from_state=record.state.value, to_state=RunState.FAILED.value,
            at=now, detail=error,
        ))

    def recover_stale(self, report: str | None = None) -> list[int]:
        """Mark every working run whose lease ran out, or stuck past stuck_after, failed."""
        now = self._now()
        recovered: list[int] = []
        try:
            with self._begin() as conn:
                db = db_now(conn, self._now)
                query = sa.select(runs).where(
                    runs.c.state.in_([s.value for s in WORKING_STATES]),
                    sa.or_(runs.c.updated_at < now - self.stuck_after, runs.c.lease_until < db),
                )
                if report is not None:
                    query = query.where(runs.c.report == report)
                for row in conn.execute(query).mappings().all():
                    self._mark_stale(conn, row, now, "its lease ran out or it made no progress")
                    recovered.append(int(row["id"]))
        except SQLAlchemyError as exc:
            raise self._fail("recovering stale runs", exc) from exc
        return recovered

    def renew_lease(self, run_id: int) -> bool:
        """Push this attempt's lease on ``run_id`` forward; False once the run is not ours."""
        attempt = self._attempts.get(run_id)
        if attempt is None:
            return False
        try:
            with self._begin() as conn:
                db = db_now(conn, self._now)
                result = conn.execute(runs.update().where(
                    runs.c.id == run_id, runs.c.attempt == attempt,
                    runs.c.state.in_([s.value for s in WORKING_STATES]),
                ).values(lease_until=db + self.lease))
        except SQLAlchemyError as exc:
            raise self._fail(f"renewing the lease of run {run_id}", exc) from exc
        return bool(result.rowcount == 1)

    @contextmanager
    def leased(self, run_id: int) -> Iterator[Heartbeat]:
        """Keep ``run_id``'s lease alive (a heartbeat thread) for the duration of the block."""
        lease = self.lease.total_seconds()
        with Heartbeat(lambda: self.renew_lease(run_id), every_s=lease / 3,
                       lease_s=lease) as beat:
            yield beat

    def transition(
        self, run_id: int, state: RunState | str, *, detail: str | None = None,
        error: str | None = None, data_hash: str | None = None, gate: str | None = None,
        edition: str | None = None,
    ) -> RunRecord:
        """Move a run to ``state``; an illegal move raises StateError and changes nothing.

        ``gate`` (the freshness verdict as JSON) and ``edition`` are kept on the run when given;
        a held run keeps the gate's reason as its ``error``.
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
                # ... and fenced: an attempt that lost its lease cannot move the new one's run.
                fence = [runs.c.id == run_id, runs.c.state == current.value]
                if run_id in self._attempts:
                    fence.append(runs.c.attempt == self._attempts[run_id])
                    if target in (RunState.DONE, RunState.FAILED):
                        values["lease_until"] = None
                result = conn.execute(runs.update().where(*fence).values(**values))
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
            _log, "run.transition",
            level=logging.WARNING if target is RunState.HELD else (
                logging.ERROR if error else logging.INFO),
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
