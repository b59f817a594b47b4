"""A light, read-only look at the ledger's last runs and paused reports, for ``ibl-reports jobs``.

Importing SQLAlchemy costs ~0.35 s, more than the rest of ``jobs`` together, and listing the
schedule only needs one ``SELECT`` per report. For SQLite state URLs (the default) this module
reads the ``runs`` table with the standard library's ``sqlite3``, opening the file read-only: it
never creates, migrates or locks the database. Any other URL, a missing table or a schema newer
than ``MAX_SCHEMA`` returns ``None`` from ``sqlite_last_run`` and the caller uses the full
``Ledger`` instead. ``bench/startup.py`` measures the effect.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

MAX_SCHEMA = 10
"""The newest ledger schema whose ``runs`` table this module knows how to read."""


@dataclass(frozen=True)
class LastRun:
    """The columns of a ``runs`` row that ``jobs`` shows."""

    report: str
    state: str
    period_start: date
    period_end: date
    started_at: datetime
    finished_at: datetime | None
    error: str | None


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///...`` URL; ``None`` for other URLs or in-memory."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    path = rest.removeprefix("/").split("?", 1)[0]  # sqlite:///rel.db, sqlite:////abs.db
    if path in ("", ":memory:"):
        return None
    return Path(path)


def _utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def sqlite_last_run(url: str) -> Callable[[str], LastRun | None] | None:
    """A ``last_run(report)`` reader for an existing SQLite state database, else ``None``.

    Raises ``sqlite3.DatabaseError`` when the file is not a readable database.
    """
    path = sqlite_path(url)
    if path is None or not path.exists():
        return None
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not {"runs", "schema_version"} <= tables:
            return None
        version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        if version is None or version > MAX_SCHEMA:
            return None
        rows = conn.execute(
            "SELECT r.report, r.state, r.period_start, r.period_end, r.started_at,"
            " r.finished_at, r.error FROM runs r WHERE r.id = ("
            "  SELECT id FROM runs WHERE report = r.report"
            "  ORDER BY started_at DESC, id DESC LIMIT 1)"
        ).fetchall()
    latest = {
        row[0]: LastRun(
            report=row[0], state=row[1], period_start=date.fromisoformat(row[2]),
            period_end=date.fromisoformat(row[3]), started_at=_utc(row[4]) or datetime.min,
            finished_at=_utc(row[5]), error=row[6],
        )
        for row in rows
    }
    return latest.get


def sqlite_paused(url: str) -> set[str] | None:
    """The reports whose schedule is paused (the web UI's pause), from an existing SQLite state
    database read-only; ``None`` where ``sqlite_last_run`` would give ``None``."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return None
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "schema_version" not in tables:
            return None
        version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        if version is None or version > MAX_SCHEMA:
            return None
        if "report_pauses" not in tables:  # before schema version 4: nothing could be paused
            return set()
        return {row[0] for row in conn.execute("SELECT report FROM report_pauses")}
