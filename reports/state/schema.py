"""The ledger's versioned schema: its tables, as of ``SCHEMA_VERSION``.

The forward migrations that build them, and the version check, are in
``reports.state.migrations``. Only portable SQLAlchemy Core constructs are used, so the same
tables live on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reports.errors import StateError

SCHEMA_VERSION = 10


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

def run_columns(*, version: int) -> list[sa.Column[Any]]:
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


runs = sa.Table("runs", _metadata, *run_columns(version=SCHEMA_VERSION))
WORKING = sa.text("state IN ('collecting', 'rendering', 'archived', 'delivering')")


def working_index(table: sa.Table, dialect: str) -> sa.Index:
    """At most one working run per (report, period): two processes cannot both start one. A
    partial unique index on ``table`` (``runs``), for ``dialect`` ("sqlite" or "postgresql":
    the same DDL on both). Made for the database at hand, not declared on ``runs``:
    naming ``postgresql_where`` makes SQLAlchemy import its PostgreSQL dialect (~30-50 ms of
    CPU) in every process that opens a SQLite ledger."""
    where: dict[str, Any] = {f"{dialect}_where": WORKING}
    return sa.Index(
        "ux_runs_working", table.c.report, table.c.period_start, table.c.period_end,
        unique=True, **where,
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

def delivery_columns(*, version: int) -> list[sa.Column[Any]]:
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
    *delivery_columns(version=SCHEMA_VERSION),
    sa.UniqueConstraint("report", "period_start", "period_end", "recipient",
                        name="ux_deliveries_key"),
    sa.Index("ix_deliveries_run", "run_id"),  # version 2
)

def archive_columns(*, version: int) -> list[sa.Column[Any]]:
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
    *archive_columns(version=SCHEMA_VERSION),
    sa.UniqueConstraint("report", "period_start", "period_end", "edition",
                        name="ux_archive_edition_key"),
)

# Version 7: earlier PDFs of a period, replaced by a re-render with another render key (another
# config, templates or data): kept so the archive still holds what each recipient got.
archive_history = sa.Table(
    "archive_history", _metadata,
    *archive_columns(version=SCHEMA_VERSION),
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

# Version 9: the held periods the scheduler looks after (the freshness gate), so a restart
# resumes them: when the period was first held, the last look, how often it was looked at again
# (``rechecks``), the scheduler's stop (``until``: the report's next fire time) and the stage it
# is in (held, waiting, provisional, given-up). A ``send`` that holds a period (or sends it
# provisional) writes its row too, so the scheduler also looks after a period held by hand. Which
# alerts went out is not here: ``gate_alerts`` (version 10) records them.
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

# Version 10: the freshness gate's alerts that went out, one row per (report, period, stage):
# ``held`` (the period's first hold) and ``provisional`` (its first provisional delivery). A row
# is written after its alert was sent, so a run that stopped between a delivery and its alert
# leaves the alert to the next run of the period.
gate_alerts = sa.Table(
    "gate_alerts", _metadata,
    sa.Column("report", sa.String(100), primary_key=True),
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("period_end", sa.Date, primary_key=True),
    sa.Column("stage", sa.String(16), primary_key=True),
    sa.Column("alerted_at", _UtcDateTime, nullable=False),
)
