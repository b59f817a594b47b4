"""The ledger's versioned schema: its tables and the forward migrations that build them.

The schema is versioned (``schema_version``); forward migrations run when a SQLite ledger opens
and, on PostgreSQL, by ``ibl-reports db upgrade`` (``check_version`` refuses an older schema
elsewhere), so an upgrade keeps every row. A database written by a newer version is refused.
Only portable SQLAlchemy Core constructs are used, so the same tables live on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from reports.errors import SchemaOutdatedError, StateError

SCHEMA_VERSION = 9


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
    if version >= 5:
        columns += [sa.Column("edition", sa.String(16)), sa.Column("gate", sa.Text)]
    if version >= 6:
        columns += [sa.Column("attempt", sa.String(64)), sa.Column("lease_until", _UtcDateTime)]
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
    if version >= 5:
        columns += [sa.Column("edition", sa.String(16)),
                    sa.Column("provisional_sent_at", _UtcDateTime)]
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
    if version >= 5:
        columns.append(sa.Column("edition", sa.String(16), nullable=False,
                                 server_default="final"))
    if version >= 7:
        columns.append(sa.Column("render_key", sa.String(64)))
    if version >= 8:
        columns += [sa.Column("html_path", sa.Text), sa.Column("html_sha256", sa.String(64)),
                    sa.Column("html_size", sa.BigInteger), sa.Column("run_id", sa.Integer)]
    return columns


# A provisional PDF is kept beside the final one of the same period (version 5).
archive_entries = sa.Table(
    "archive_entries", _metadata,
    *_archive_columns(version=SCHEMA_VERSION),
    sa.UniqueConstraint("report", "period_start", "period_end", "edition",
                        name="ux_archive_edition_key"),
)

# Version 7: earlier PDFs of a period, replaced by a re-render with another render key (another
# config, templates or data): kept so the archive still holds what each recipient got.
archive_history = sa.Table(
    "archive_history", _metadata,
    *_archive_columns(version=SCHEMA_VERSION),
    sa.UniqueConstraint("path", name="ux_archive_history_path"),
)

# Version 4: the web UI's audit trail and paused report schedules.
audit_log = sa.Table(
    "audit_log", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _UtcDateTime, nullable=False),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("report", sa.String(100), index=True),
    sa.Column("run_id", sa.Integer, index=True),
    sa.Column("detail", sa.Text),
)

report_pauses = sa.Table(
    "report_pauses", _metadata,
    sa.Column("report", sa.String(100), primary_key=True),
    sa.Column("paused_at", _UtcDateTime, nullable=False),
    sa.Column("paused_by", sa.String(100), nullable=False),
)

# Version 9: the scheduler's held periods (the freshness gate), so a restart resumes them: when
# the period was first held, the last look, how often it was looked at again, and the stage it
# is in (held, waiting, provisional, given-up), which also says which alert went out.
scheduler_holds = sa.Table(
    "scheduler_holds", _metadata,
    sa.Column("report", sa.String(100), primary_key=True),
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("period_end", sa.Date, primary_key=True),
    sa.Column("period_kind", sa.String(16), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("since", _UtcDateTime, nullable=False),
    sa.Column("last_try", _UtcDateTime, nullable=False),
    sa.Column("until", _UtcDateTime),
    sa.Column("rechecks", sa.Integer, nullable=False, default=0),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
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
    """The web UI: an audit trail (who did what, when) and paused report schedules."""
    audit_log.create(conn)
    report_pauses.create(conn)


def _migrate_5(conn: Connection) -> None:
    """The freshness gate: held and provisional runs, provisional deliveries and archive copies.

    Runs keep their edition (NULL = final, ``provisional``) and the gate's verdict (JSON);
    deliveries their edition and when a provisional copy went out; the archive index is rebuilt
    with the edition in its key (a portable rebuild: SQLite cannot change a table's constraints).
    """
    timestamp = sa.DateTime().compile(dialect=conn.dialect)
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN edition VARCHAR(16)"))
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN gate TEXT"))
    conn.execute(sa.text("ALTER TABLE deliveries ADD COLUMN edition VARCHAR(16)"))
    conn.execute(sa.text(f"ALTER TABLE deliveries ADD COLUMN provisional_sent_at {timestamp}"))
    v5 = sa.MetaData()
    sa.Table(
        "archive_entries_v5", v5, *_archive_columns(version=5),
        sa.UniqueConstraint("report", "period_start", "period_end", "edition",
                            name="ux_archive_edition_key"),
    ).create(conn)
    kept = "report, org, period_start, period_end, path, sha256, size, data_hash, created_at"
    conn.execute(sa.text(f"INSERT INTO archive_entries_v5 ({kept}, edition) "
                         f"SELECT {kept}, 'final' FROM archive_entries"))
    conn.execute(sa.text("DROP TABLE archive_entries"))
    conn.execute(sa.text("ALTER TABLE archive_entries_v5 RENAME TO archive_entries"))


def _migrate_6(conn: Connection) -> None:
    """Runs are owned by a lease (an attempt token and a time renewed by a heartbeat), so a run
    whose process died anywhere is recoverable once the lease runs out."""
    stamp = sa.DateTime().compile(dialect=conn.dialect)
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN attempt VARCHAR(64)"))
    conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN lease_until {stamp}"))


def _migrate_7(conn: Connection) -> None:
    """Archive entries remember their render key; earlier PDFs of a period are kept as history."""
    conn.execute(sa.text("ALTER TABLE archive_entries ADD COLUMN render_key VARCHAR(64)"))
    sa.Table(
        "archive_history", sa.MetaData(), *_archive_columns(version=7),
        sa.UniqueConstraint("path", name="ux_archive_history_path"),
    ).create(conn)


def _migrate_8(conn: Connection) -> None:
    """Archive entries keep the report's HTML beside the PDF (its location, SHA-256 and size;
    NULL for PDFs archived before: no preview) and the run that archived them."""
    for table in ("archive_entries", "archive_history"):
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN html_path TEXT"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN html_sha256 VARCHAR(64)"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN html_size BIGINT"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN run_id INTEGER"))


def _migrate_9(conn: Connection) -> None:
    """The scheduler's held periods are remembered across restarts."""
    scheduler_holds.create(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _migrate_1, 2: _migrate_2, 3: _migrate_3, 4: _migrate_4, 5: _migrate_5,
    6: _migrate_6, 7: _migrate_7, 8: _migrate_8, 9: _migrate_9,
}


MIGRATION_LOCK = 0x1B1_5C4E
"""The PostgreSQL advisory lock key every migration step takes (``ibl-reports db upgrade``)."""

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
            if conn.dialect.name == "postgresql":
                # One migrator at a time (held until this step commits); a process that waited
                # finds the step done and goes on from there.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                if version > 1 and int(conn.execute(
                    sa.select(sa.func.max(schema_version.c.version))
                ).scalar() or 0) >= version:
                    continue
            MIGRATIONS[version](conn)
            conn.execute(schema_version.delete())
            conn.execute(schema_version.insert().values(version=version))
    return max(current, target)


def check_version(engine: Engine) -> int:
    """The schema version, if it is this version's; else one line saying what to do.

    PostgreSQL is shared by a fleet: its schema moves only by ``ibl-reports db upgrade`` (one
    migrator, under a lock), never as a side effect of a worker opening it.
    """
    current = _current_version(engine)
    if current > SCHEMA_VERSION:
        raise StateError(
            f"the state database has schema version {current}, newer than this ibl-reports "
            f"understands ({SCHEMA_VERSION}); upgrade ibl-reports or point [state] url elsewhere"
        )
    if current < SCHEMA_VERSION:
        raise SchemaOutdatedError(
            f"state database is at schema {current}, this version needs {SCHEMA_VERSION}: run "
            "`ibl-reports db upgrade`"
        )
    return current


def _current_version(engine: Engine) -> int:
    if not sa.inspect(engine).has_table("schema_version"):
        return 0
    with engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(value or 0)

