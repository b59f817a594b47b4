"""The ledger's forward migrations, and the check that a database is at this version's schema.

The schema is versioned (``schema_version``); forward migrations run when a SQLite ledger opens
and, on PostgreSQL, by ``ibl-reports db upgrade`` (``check_version`` refuses an older schema
elsewhere), so an upgrade keeps every row. A database written by a newer version is refused.
Version 1 is frozen as it shipped; each later version is one migration on top of it. A new
(empty) database gets this version's schema at once instead (``create_current``: the same
tables, columns and indexes the migrations leave, in one transaction): on SQLite, ten steps meant
ten commits, each a disk flush, on every first run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from reports.errors import SchemaOutdatedError, StateError
from reports.state.schema import (
    SCHEMA_VERSION,
    archive_columns,
    audit_log,
    delivery_columns,
    gate_alerts,
    report_pauses,
    run_columns,
    run_events,
    runs,
    scheduler_holds,
    schema_version,
    working_index,
)
from reports.state.writes import begin_write


def _migrate_1(conn: Connection) -> None:
    """The first schema: every table; deliveries without run_id and pdf_sha256."""
    schema_version.create(conn)
    v1 = sa.MetaData()
    sa.Table("runs", v1, *run_columns(version=1)).create(conn)
    working_index(v1.tables["runs"], conn.dialect.name).create(conn)
    run_events.create(conn)
    sa.Table(
        "deliveries", v1,
        *delivery_columns(version=1),
        sa.UniqueConstraint("report", "period_start", "period_end", "recipient",
                            name="ux_deliveries_key"),
    ).create(conn)
    sa.Table(
        "archive_entries", v1, *archive_columns(version=1),
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
        "archive_entries_v5", v5, *archive_columns(version=5),
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
        "archive_history", sa.MetaData(), *archive_columns(version=7),
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


def _migrate_10(conn: Connection) -> None:
    """The gate's alerts are recorded when they go out. Until now they were inferred (a period
    with a held run had its held alert, one with a provisional delivery its provisional alert):
    those periods are recorded as told, so the upgrade sends no old alert again."""
    gate_alerts.create(conn)
    conn.execute(sa.text(
        "INSERT INTO gate_alerts (report, period_start, period_end, stage, alerted_at) "
        "SELECT report, period_start, period_end, 'held', MIN(updated_at) FROM runs "
        "WHERE state = 'held' GROUP BY report, period_start, period_end"))
    conn.execute(sa.text(
        "INSERT INTO gate_alerts (report, period_start, period_end, stage, alerted_at) "
        "SELECT report, period_start, period_end, 'provisional', MIN(provisional_sent_at) "
        "FROM deliveries WHERE provisional_sent_at IS NOT NULL "
        "GROUP BY report, period_start, period_end"))


def create_current(conn: Connection) -> None:
    """This version's schema on an empty database, as the migrations from version 1 leave it
    (``tests/test_ledger.py`` compares the two), stamped with ``SCHEMA_VERSION``. No table is
    looked for first: a process that lost the race to create them fails here and retries.
    One difference on PostgreSQL: a migrated database keeps version 5's rebuilt names for
    ``archive_entries``' primary key and id sequence (``archive_entries_v5_pkey``,
    ``archive_entries_v5_id_seq``), a new one has the plain names; nothing refers to either by
    name (a migration that does must look the name up)."""
    # ``runs`` with its partial index for this database, on a copy (``working_index``).
    current_runs = sa.Table("runs", sa.MetaData(), *run_columns(version=SCHEMA_VERSION))
    current_runs.create(conn)
    working_index(current_runs, conn.dialect.name).create(conn)
    metadata = schema_version.metadata
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t is not runs],
                        checkfirst=False)
    conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _migrate_1, 2: _migrate_2, 3: _migrate_3, 4: _migrate_4, 5: _migrate_5,
    6: _migrate_6, 7: _migrate_7, 8: _migrate_8, 9: _migrate_9, 10: _migrate_10,
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
    if current == 0 and target == SCHEMA_VERSION:
        if _created(engine):
            return target
        current = _current_version(engine)  # another process made it meanwhile
    for version in range(current + 1, target + 1):
        with begin_write(engine) as conn:  # SQLite too: a step's DDL commits once, or not
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


def _created(engine: Engine) -> bool:
    """``create_current`` in one transaction; False if another migrator (PostgreSQL: holding
    the lock meanwhile) made the schema first.

    SQLite: Python's driver opens a transaction only before INSERT, UPDATE or DELETE, so each
    CREATE would commit on its own (a disk flush each: 17 of them); ``begin_write`` holds them
    all, and the write lock from the start (a process that lost the race waits for it, then
    finds the tables there and retries)."""
    with begin_write(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            if sa.inspect(conn).has_table("schema_version"):
                return False
        create_current(conn)
    return True


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

