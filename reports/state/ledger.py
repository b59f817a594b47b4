"""The state ledger: runs, their transitions, deliveries and archive entries (SQLAlchemy 2).

The ledger is what makes "each stakeholder gets each period's report exactly once" checkable:

- A run moves through ``RunState`` (collecting -> rendering -> archived -> delivering -> done,
  or failed from any working state); every transition writes a ``run_events`` row. A run left in
  a working state for longer than ``stuck_after_s`` (a crash, a kill -9) is marked failed with a
  "stale: ..." error when the next run of the same report and period starts, so it never blocks.
- A delivery is keyed by (report, period, recipient) and moves through ``DeliveryState``
  (pending -> sending -> sent | failed-transient | failed-permanent). A delivery found in
  ``sending`` after a crash is sent again with the same Message-ID: the server may or may not
  have accepted it before the crash (the RFC 1047 window), and the same Message-ID lets mail
  clients fold a possible duplicate.
- The schema is versioned (``schema_version``); forward migrations run when the ledger opens, so
  an upgrade keeps every row. A database written by a newer version is refused.

The same code runs on SQLite (WAL, busy_timeout, foreign keys on) and PostgreSQL: only portable
SQLAlchemy Core constructs are used. Secrets are never written here.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from reports.errors import StateError
from reports.logs import log_event
from reports.report.periods import Clock, Period, PeriodKind

_log = logging.getLogger("reports.state.ledger")

SCHEMA_VERSION = 4
DEFAULT_STUCK_AFTER_S = 3600.0
SQLITE_BUSY_TIMEOUT_S = 30.0


class RunState(enum.StrEnum):
    """Where a report run is."""

    COLLECTING = "collecting"
    RENDERING = "rendering"
    ARCHIVED = "archived"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"


WORKING_STATES = frozenset(
    {RunState.COLLECTING, RunState.RENDERING, RunState.ARCHIVED, RunState.DELIVERING}
)
_RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.COLLECTING: frozenset({RunState.RENDERING, RunState.FAILED}),
    RunState.RENDERING: frozenset({RunState.ARCHIVED, RunState.FAILED}),
    # archived -> done: a run that only generates (no recipients, or `generate` without send).
    RunState.ARCHIVED: frozenset({RunState.DELIVERING, RunState.DONE, RunState.FAILED}),
    RunState.DELIVERING: frozenset({RunState.DONE, RunState.FAILED}),
    RunState.DONE: frozenset(),
    RunState.FAILED: frozenset(),
}


class DeliveryState(enum.StrEnum):
    """Where the delivery of one period's report to one recipient is."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED_TRANSIENT = "failed-transient"
    FAILED_PERMANENT = "failed-permanent"


# States from which a send may (re)start; "sending" is there for the crash window.
SENDABLE_STATES = frozenset(
    {DeliveryState.PENDING, DeliveryState.FAILED_TRANSIENT, DeliveryState.SENDING}
)
FINAL_STATES = frozenset({DeliveryState.SENT, DeliveryState.FAILED_PERMANENT})


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


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of ``deliveries``: one period's report for one recipient."""

    report: str
    period_start: date
    period_end: date
    recipient: str
    state: DeliveryState
    attempts: int
    smtp_reply: str | None
    message_id: str
    pdf_sha256: str | None
    run_id: int | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class ArchiveRecord:
    """One row of ``archive_entries``: a PDF kept in the archive."""

    report: str
    org: str
    period_start: date
    period_end: date
    path: str
    sha256: str
    size: int
    data_hash: str | None
    created_at: datetime
    render_key: str | None = None
    """Hash of everything that shaped the PDF (data, report config, templates, version)."""
    current: bool = True
    """False for an earlier PDF of the period, kept as history after a re-render."""


class _UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored naive UTC (portable)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise StateError("the ledger only stores aware datetimes (the clock returned a "
                             "naive one)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Schema. Version 1 is frozen here as it shipped; later versions are migrations on top of it.

_metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", _metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

def _run_columns(*, version: int) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report", sa.String(100), nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("period_kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("data_hash", sa.String(64)),
        sa.Column("started_at", _UtcDateTime, nullable=False),
        sa.Column("updated_at", _UtcDateTime, nullable=False),
        sa.Column("finished_at", _UtcDateTime),
        sa.Column("error", sa.Text),
    ]
    if version >= 3:
        columns.append(sa.Column("owner", sa.String(300)))
    return columns


runs = sa.Table("runs", _metadata, *_run_columns(version=SCHEMA_VERSION))
# At most one working run per (report, period): two processes cannot both start one.
_working = sa.text("state IN ('collecting', 'rendering', 'archived', 'delivering')")
sa.Index(
    "ux_runs_working", runs.c.report, runs.c.period_start, runs.c.period_end, unique=True,
    sqlite_where=_working, postgresql_where=_working,
)

run_events = sa.Table(
    "run_events", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("from_state", sa.String(16)),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("at", _UtcDateTime, nullable=False),
    sa.Column("detail", sa.Text),
)

def _delivery_columns(*, version: int) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report", sa.String(100), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("smtp_reply", sa.Text),
        sa.Column("message_id", sa.String(400), nullable=False),
        sa.Column("created_at", _UtcDateTime, nullable=False),
        sa.Column("updated_at", _UtcDateTime, nullable=False),
        sa.Column("sent_at", _UtcDateTime),
    ]
    if version >= 2:
        columns += [sa.Column("run_id", sa.Integer), sa.Column("pdf_sha256", sa.String(64))]
    return columns


deliveries = sa.Table(
    "deliveries", _metadata,
    *_delivery_columns(version=SCHEMA_VERSION),
    sa.UniqueConstraint("report", "period_start", "period_end", "recipient",
                        name="ux_deliveries_key"),
)

def _archive_columns(*, version: int) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report", sa.String(100), nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("data_hash", sa.String(64)),
        sa.Column("created_at", _UtcDateTime, nullable=False),
    ]
    if version >= 4:
        columns.append(sa.Column("render_key", sa.String(64)))
    return columns


# The current PDF of each (report, period): the one a send reuses.
archive_entries = sa.Table(
    "archive_entries", _metadata,
    *_archive_columns(version=SCHEMA_VERSION),
    sa.UniqueConstraint("report", "period_start", "period_end", name="ux_archive_key"),
)
# Earlier PDFs of a period, replaced by a re-render (another config, templates or data): kept so
# the archive shows what each recipient got (deliveries.pdf_sha256).
archive_history = sa.Table(
    "archive_history", _metadata,
    *_archive_columns(version=SCHEMA_VERSION),
    sa.UniqueConstraint("path", name="ux_archive_history_path"),
)


def _migrate_1(conn: Connection) -> None:
    """The first schema: every table; deliveries without run_id and pdf_sha256."""
    schema_version.create(conn)
    v1 = sa.MetaData()
    sa.Table("runs", v1, *_run_columns(version=1)).create(conn)
    sa.Index(
        "ux_runs_working", v1.tables["runs"].c.report, v1.tables["runs"].c.period_start,
        v1.tables["runs"].c.period_end, unique=True, sqlite_where=_working,
        postgresql_where=_working,
    ).create(conn)
    run_events.create(conn)
    sa.Table(
        "deliveries", v1,
        *_delivery_columns(version=1),
        sa.UniqueConstraint("report", "period_start", "period_end", "recipient",
                            name="ux_deliveries_key"),
    ).create(conn)
    sa.Table(
        "archive_entries", v1, *_archive_columns(version=1),
        sa.UniqueConstraint("report", "period_start", "period_end", name="ux_archive_key"),
    ).create(conn)


def _migrate_2(conn: Connection) -> None:
    """Deliveries remember the run that sent them and the SHA-256 of the PDF they carried."""
    conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN run_id INTEGER"))
    conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN pdf_sha256 VARCHAR(64)"))
    conn.execute(sa.text("CREATE INDEX ix_deliveries_run ON deliveries (run_id)"))


def _migrate_3(conn: Connection) -> None:
    """Runs remember which process ran them (host:pid), so a killed run is recovered at once."""
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN owner VARCHAR(300)"))


def _migrate_4(conn: Connection) -> None:
    """Archive entries remember their render key; earlier PDFs of a period are kept as history."""
    conn.execute(sa.text("ALTER TABLE archive_entries ADD COLUMN render_key VARCHAR(64)"))
    archive_history.create(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _migrate_1, 2: _migrate_2, 3: _migrate_3, 4: _migrate_4,
}


MIGRATION_WAIT_S = 30.0
"""How long a process waits for another one that is migrating the same database."""


def migrate(engine: Engine, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to ``target`` (each step in its own transaction); returns it.

    Several processes may open a new database at once (``generate --all``, the scheduler's
    catch-up sends): the one that loses the race to create a table waits until the winner has
    finished, then goes on from the version it finds.
    """
    deadline = time.monotonic() + MIGRATION_WAIT_S
    while True:
        try:
            return _migrate_once(engine, target)
        except SQLAlchemyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _migrate_once(engine: Engine, target: int) -> int:
    current = _current_version(engine)
    if current > SCHEMA_VERSION:
        raise StateError(
            f"the state database has schema version {current}, newer than this ibl-reports "
            f"understands ({SCHEMA_VERSION}); upgrade ibl-reports or point [state] url elsewhere"
        )
    for version in range(current + 1, target + 1):
        with engine.begin() as conn:
            MIGRATIONS[version](conn)
            conn.execute(schema_version.delete())
            conn.execute(schema_version.insert().values(version=version))
    return max(current, target)


def _current_version(engine: Engine) -> int:
    if not sa.inspect(engine).has_table("schema_version"):
        return 0
    with engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(value or 0)


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


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_state_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        engine = sa.create_engine(url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        # from None: the library's message may repeat the URL, password included.
        raise StateError(
            f"cannot use the state database {_safe_url(url)}: {exc.__class__.__name__} (check "
            "[state] url)"
        ) from None
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

    return engine


def _safe_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say nothing of it rather than leak a password
        return "(unparsable URL)"


class Ledger:
    """Runs, deliveries and archive entries in one database."""

    def __init__(
        self, url: str = "sqlite:///state.db", *, clock: Clock = _utcnow,
        stuck_after_s: float = DEFAULT_STUCK_AFTER_S,
    ) -> None:
        self.url = _safe_url(url)
        self._clock = clock
        self.stuck_after = timedelta(seconds=stuck_after_s)
        self._engine = create_state_engine(url)
        try:
            self.schema_version = migrate(self._engine)
        except StateError:
            self._engine.dispose()
            raise
        except SQLAlchemyError as exc:
            self._engine.dispose()
            reason = getattr(exc, "orig", None) or exc
            raise StateError(f"cannot open the state database {self.url}: "
                             f"{exc.__class__.__name__}: {reason}") from exc

    def __repr__(self) -> str:
        return f"Ledger({self.url!r})"

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        return self._clock()

    def _begin(self) -> Any:
        return self._engine.begin()

    def _fail(self, what: str, exc: SQLAlchemyError) -> StateError:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return StateError(f"{what} failed on {self.url}: {exc.__class__.__name__}: {reason}")

    # -- runs ----------------------------------------------------------------------------------

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
        error: str | None = None, data_hash: str | None = None,
    ) -> RunRecord:
        """Move a run to ``state``; an illegal move raises StateError and changes nothing."""
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
                if target in (RunState.DONE, RunState.FAILED):
                    values["finished_at"] = now
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

    def _select(self, query: sa.Select[Any]) -> list[sa.RowMapping]:
        try:
            with self._engine.connect() as conn:
                return list(conn.execute(query).mappings().all())
        except SQLAlchemyError as exc:
            raise self._fail("reading", exc) from exc

    # -- deliveries ----------------------------------------------------------------------------

    def plan_deliveries(
        self, report: str, period: Period, recipients: Iterable[str],
        message_ids: Mapping[str, str], *, force: bool, run_id: int | None = None,
    ) -> list[str]:
        """Who must be sent to now, in the order given.

        New recipients become pending with their Message-ID. Pending, failed-transient and
        sending (a crash mid-send) are due again and keep the Message-ID they were first given.
        Sent and failed-permanent are skipped unless ``force``, which makes them pending again
        with the Message-ID passed now.
        """
        now = self._now()
        due: list[str] = []
        try:
            with self._begin() as conn:
                for recipient in dict.fromkeys(recipients):
                    if recipient not in message_ids:
                        raise StateError(f"no Message-ID was given for {recipient}")
                    row = conn.execute(
                        sa.select(deliveries).where(*_delivery_key(report, period, recipient))
                    ).mappings().first()
                    if row is None:
                        conn.execute(deliveries.insert().values(
                            report=report, period_start=period.start, period_end=period.end,
                            recipient=recipient, state=DeliveryState.PENDING.value, attempts=0,
                            message_id=message_ids[recipient], created_at=now, updated_at=now,
                            run_id=run_id,
                        ))
                        due.append(recipient)
                        continue
                    state = DeliveryState(row["state"])
                    values: dict[str, Any] = {"updated_at": now}
                    if run_id is not None:
                        values["run_id"] = run_id
                    if state in SENDABLE_STATES:
                        due.append(recipient)
                    elif force:
                        values.update(state=DeliveryState.PENDING.value, attempts=0,
                                      message_id=message_ids[recipient], sent_at=None)
                        due.append(recipient)
                    else:
                        continue
                    conn.execute(deliveries.update().where(deliveries.c.id == row["id"])
                                 .values(**values))
        except SQLAlchemyError as exc:
            raise self._fail("planning deliveries", exc) from exc
        return due

    def delivery(self, report: str, period: Period, recipient: str) -> DeliveryRecord | None:
        """The delivery of ``report`` for ``period`` to ``recipient``."""
        rows = self._select(sa.select(deliveries).where(*_delivery_key(report, period, recipient)))
        return _delivery(rows[0]) if rows else None

    def deliveries(
        self, report: str | None = None, *, period: Period | None = None,
        run_id: int | None = None, state: DeliveryState | str | None = None,
    ) -> list[DeliveryRecord]:
        """Deliveries, filtered, in a stable order (period, then recipient)."""
        query = sa.select(deliveries).order_by(
            deliveries.c.period_start, deliveries.c.report, deliveries.c.recipient
        )
        if report is not None:
            query = query.where(deliveries.c.report == report)
        if period is not None:
            query = query.where(deliveries.c.period_start == period.start,
                                deliveries.c.period_end == period.end)
        if run_id is not None:
            query = query.where(deliveries.c.run_id == run_id)
        if state is not None:
            query = query.where(deliveries.c.state == DeliveryState(state).value)
        return [_delivery(row) for row in self._select(query)]

    def mark_sending(
        self, report: str, period: Period, recipient: str, *, pdf_sha256: str | None = None,
    ) -> DeliveryRecord:
        """About to hand the message to the backend: counts one attempt."""
        return self._move(report, period, recipient, DeliveryState.SENDING,
                          allowed_from=SENDABLE_STATES, attempt=True, pdf_sha256=pdf_sha256)

    def mark_sent(self, report: str, period: Period, recipient: str, reply: str) -> DeliveryRecord:
        """The server accepted the message (``reply`` is its answer)."""
        return self._move(report, period, recipient, DeliveryState.SENT,
                          allowed_from={DeliveryState.SENDING}, reply=reply)

    def mark_failed(
        self, report: str, period: Period, recipient: str, *, transient: bool, reply: str,
    ) -> DeliveryRecord:
        """The send failed: transient failures are retried by the next send, permanent ones not."""
        target = DeliveryState.FAILED_TRANSIENT if transient else DeliveryState.FAILED_PERMANENT
        return self._move(report, period, recipient, target,
                          allowed_from={DeliveryState.SENDING}, reply=reply)

    def _move(
        self, report: str, period: Period, recipient: str, target: DeliveryState, *,
        allowed_from: Iterable[DeliveryState], attempt: bool = False, reply: str | None = None,
        pdf_sha256: str | None = None,
    ) -> DeliveryRecord:
        now = self._now()
        allowed = {s.value for s in allowed_from}
        where = f"{report} {period.key} -> {recipient}"
        try:
            with self._begin() as conn:
                row = conn.execute(
                    sa.select(deliveries).where(*_delivery_key(report, period, recipient))
                ).mappings().first()
                if row is None:
                    raise StateError(f"delivery {where} was never planned")
                if row["state"] not in allowed:
                    raise StateError(
                        f"delivery {where} cannot go from {row['state']} to {target.value}"
                    )
                values: dict[str, Any] = {"state": target.value, "updated_at": now}
                if attempt:
                    values["attempts"] = row["attempts"] + 1
                if reply is not None:
                    values["smtp_reply"] = reply[:2000]
                if pdf_sha256 is not None:
                    values["pdf_sha256"] = pdf_sha256
                if target is DeliveryState.SENT:
                    values["sent_at"] = now
                result = conn.execute(
                    deliveries.update()
                    .where(deliveries.c.id == row["id"], deliveries.c.state == row["state"])
                    .values(**values)
                )
                if result.rowcount != 1:
                    raise StateError(f"delivery {where} changed state concurrently")
                updated = _delivery(conn.execute(
                    sa.select(deliveries).where(deliveries.c.id == row["id"])
                ).mappings().one())
        except SQLAlchemyError as exc:
            raise self._fail(f"updating delivery {where}", exc) from exc
        failed = target in (DeliveryState.FAILED_TRANSIENT, DeliveryState.FAILED_PERMANENT)
        log_event(
            _log, "delivery.transition", level=logging.WARNING if failed else logging.INFO,
            report=report, period=period.key, recipient=recipient,
            **{"from": str(row["state"]), "to": target.value}, attempts=updated.attempts,
            reply=reply, message_id=updated.message_id,
        )
        return updated

    def period_done(self, report: str, period: Period, recipients: Iterable[str]) -> bool:
        """Whether every recipient was sent to or failed permanently for this period."""
        wanted = set(recipients)
        final = {
            d.recipient for d in self.deliveries(report, period=period) if d.state in FINAL_STATES
        }
        return wanted <= final

    # -- archive index -------------------------------------------------------------------------

    def record_archive(
        self, report: str, org: str, period: Period, *, path: str, sha256: str, size: int,
        data_hash: str | None = None, render_key: str | None = None,
    ) -> ArchiveRecord:
        """Remember an archived PDF as the period's current one.

        The period's previous current PDF, if it lives at another path, is kept as history (its
        file stays in the archive); a history row at ``path`` is promoted back to current.
        """
        now = self._now()
        values = {"org": org, "path": path, "sha256": sha256, "size": size,
                  "data_hash": data_hash, "render_key": render_key, "created_at": now}
        try:
            with self._begin() as conn:
                key = _archive_key(report, period)
                before = conn.execute(sa.select(archive_entries).where(*key)).mappings().first()
                if before is not None and before["path"] != path:
                    kept = {k: before[k] for k in before if k != "id"}
                    conn.execute(archive_history.delete().where(
                        archive_history.c.path == before["path"]))
                    conn.execute(archive_history.insert().values(**kept))
                conn.execute(archive_history.delete().where(archive_history.c.path == path))
                result = conn.execute(archive_entries.update().where(*key).values(**values))
                if result.rowcount == 0:
                    conn.execute(archive_entries.insert().values(
                        report=report, period_start=period.start, period_end=period.end, **values
                    ))
                row = conn.execute(sa.select(archive_entries).where(*key)).mappings().one()
                return _archive(row)
        except SQLAlchemyError as exc:
            raise self._fail(f"recording the archive entry of {report} {period.key}",
                             exc) from exc

    def archive_entry(self, report: str, period: Period) -> ArchiveRecord | None:
        """The current archive entry of ``report`` for ``period``."""
        rows = self._select(sa.select(archive_entries).where(*_archive_key(report, period)))
        return _archive(rows[0]) if rows else None

    def archive_files(self, report: str, period: Period) -> list[ArchiveRecord]:
        """Every archived PDF of ``report`` for ``period``: the current one first, then history."""
        history = self._select(
            sa.select(archive_history).where(*_archive_key(report, period, archive_history))
            .order_by(archive_history.c.created_at.desc(), archive_history.c.id.desc())
        )
        current = self.archive_entry(report, period)
        return ([current] if current else []) + [_archive(row, current=False) for row in history]

    def archive_entries(self, report: str | None = None) -> list[ArchiveRecord]:
        """Every archived PDF (of one report), current and history, oldest period first."""
        found: list[ArchiveRecord] = []
        for table, current in ((archive_entries, True), (archive_history, False)):
            query = sa.select(table)
            if report is not None:
                query = query.where(table.c.report == report)
            found += [_archive(row, current=current) for row in self._select(query)]
        found.sort(key=lambda e: (e.period_start, e.report, not e.current, e.created_at))
        return found

    def remove_archive_entry(
        self, report: str, period: Period, *, path: str | None = None
    ) -> bool:
        """Forget the period's archive entries (only the one at ``path`` if given)."""
        removed = 0
        try:
            with self._begin() as conn:
                for table in (archive_entries, archive_history):
                    where = list(_archive_key(report, period, table))
                    if path is not None:
                        where.append(table.c.path == path)
                    removed += conn.execute(table.delete().where(*where)).rowcount
                return bool(removed)
        except SQLAlchemyError as exc:
            raise self._fail(f"removing the archive entry of {report} {period.key}",
                             exc) from exc


def _delivery_key(report: str, period: Period, recipient: str) -> Sequence[Any]:
    return (deliveries.c.report == report, deliveries.c.period_start == period.start,
            deliveries.c.period_end == period.end, deliveries.c.recipient == recipient)


def _archive_key(report: str, period: Period, table: sa.Table = archive_entries) -> Sequence[Any]:
    return (table.c.report == report, table.c.period_start == period.start,
            table.c.period_end == period.end)


def _run(row: sa.RowMapping) -> RunRecord:
    return RunRecord(
        id=row["id"], report=row["report"], org=row["org"], period_start=row["period_start"],
        period_end=row["period_end"], period_kind=row["period_kind"],
        state=RunState(row["state"]), data_hash=row["data_hash"], started_at=row["started_at"],
        updated_at=row["updated_at"], finished_at=row["finished_at"], error=row["error"],
    )


def _delivery(row: sa.RowMapping) -> DeliveryRecord:
    return DeliveryRecord(
        report=row["report"], period_start=row["period_start"], period_end=row["period_end"],
        recipient=row["recipient"], state=DeliveryState(row["state"]),
        attempts=row["attempts"], smtp_reply=row["smtp_reply"], message_id=row["message_id"],
        pdf_sha256=row["pdf_sha256"], run_id=row["run_id"], created_at=row["created_at"],
        updated_at=row["updated_at"], sent_at=row["sent_at"],
    )


def _archive(row: sa.RowMapping, *, current: bool = True) -> ArchiveRecord:
    return ArchiveRecord(
        report=row["report"], org=row["org"], period_start=row["period_start"],
        period_end=row["period_end"], path=row["path"], sha256=row["sha256"], size=row["size"],
        data_hash=row["data_hash"], created_at=row["created_at"], render_key=row["render_key"],
        current=current,
    )
