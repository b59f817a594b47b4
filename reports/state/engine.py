"""The ledger's database: the engine for a ``[state] url`` and the base every ledger part shares.

The same code runs on SQLite (WAL, busy_timeout, foreign keys on) and PostgreSQL. Opening a
SQLite store migrates its schema (see ``reports.state.migrations``); a PostgreSQL one, shared by a
fleet, is migrated only by ``ibl-reports db upgrade`` (``upgrade=True``), and opening it at an
older schema is refused with one line saying so. ``process_engine`` keeps one engine per process
and URL, made anew in a forked child (a pool child must not share its parent's connections), so
a worker opens its connection pool once, not once per run; a PostgreSQL schema found current
through that engine is not checked again by the process (a newer schema installed meanwhile is
seen when the process restarts: run ``db upgrade`` with the workers stopped). The URL is only
ever shown with its password hidden; secrets are never written here.
"""

from __future__ import annotations

import os
import threading
import weakref
from datetime import UTC, datetime
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from reports.errors import StateError
from reports.report.periods import Clock
from reports.state.migrations import check_version, migrate
from reports.state.writes import begin_write

SQLITE_BUSY_TIMEOUT_S = 30.0


def utcnow() -> datetime:
    """The ledger's default clock: now, in UTC."""
    return datetime.now(UTC)


def create_state_engine(url: str, **pool: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        engine = sa.create_engine(url, **pool)
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


_process_engines: dict[str, tuple[int, Engine]] = {}
_process_lock = threading.Lock()


def process_engine(url: str) -> Engine:
    """This process's engine for ``url``: made on first use, and again after a fork.

    A child forked with its parent's engine drops the inherited pool without closing its
    connections (they are the parent's) and makes its own (call it in Celery's
    ``worker_process_init`` so the child connects before its first task).
    """
    with _process_lock:
        held = _process_engines.get(url)
        if held is not None:
            pid, engine = held
            if pid == os.getpid():
                return engine
            engine.dispose(close=False)
        # Every run of the process (a local send --all runs several at once, each with its
        # heartbeat) shares this pool: past its 5 kept connections it opens more, never waits.
        engine = create_state_engine(url, max_overflow=-1)
        _process_engines[url] = (os.getpid(), engine)
        return engine


_current_schema: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
"""The engines (so: URL and process) whose PostgreSQL schema was found current."""


def checked_version(engine: Engine) -> int:
    """``check_version`` once per engine: with ``process_engine``'s, once per process and URL
    (two small queries saved on every later open, a worker's every task). Only a current schema
    is remembered: an older one is refused, and looked at again on the next open."""
    with _process_lock:
        seen = _current_schema.get(engine)
    if seen is not None:
        return seen
    version = check_version(engine)
    with _process_lock:
        _current_schema[engine] = version
    return version


def _safe_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say nothing of it rather than leak a password
        return "(unparsable URL)"


class LedgerStore:
    """One open state database: the engine, the clock and the helpers every ledger part uses.

    Opening it migrates a SQLite schema; a PostgreSQL one is migrated only with ``upgrade``
    (``ibl-reports db upgrade``), else an older schema raises SchemaOutdatedError. ``engine``:
    a shared engine (``process_engine``), left open by ``close``. A database it cannot open or
    migrate raises StateError and leaves no connection of its own behind.
    """

    def __init__(
        self, url: str, *, clock: Clock = utcnow, engine: Engine | None = None,
        upgrade: bool = False,
    ) -> None:
        self.url = _safe_url(url)
        self._clock = clock
        # The attempt token of every run this store started: its writes are fenced by it.
        self._attempts: dict[int, str] = {}
        self._owned = engine is None
        self._engine = create_state_engine(url) if engine is None else engine
        try:
            if upgrade or self._engine.dialect.name == "sqlite":
                self.schema_version = migrate(self._engine)
            else:
                self.schema_version = checked_version(self._engine)
        except StateError:
            self.close()
            raise
        except SQLAlchemyError as exc:
            self.close()
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StateError(f"cannot open the state database {self.url}: "
                             f"{exc.__class__.__name__}: {reason}") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def close(self) -> None:
        """Release the database connections (a shared engine stays open for the next store)."""
        if self._owned:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _now(self) -> datetime:
        return self._clock()

    def _begin(self) -> Any:
        """A write transaction: on SQLite a fence's read and the write it allows are one step."""
        return begin_write(self._engine)

    def _fail(self, what: str, exc: SQLAlchemyError) -> StateError:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return StateError(f"{what} failed on {self.url}: {exc.__class__.__name__}: {reason}")

    def _fence(self, conn: Any, run_id: int, state: str, where: str) -> None:
        """In ``conn``'s transaction: ``run_id`` is still in ``state`` and still this attempt's.

        On PostgreSQL the run row is read ``FOR SHARE``: nobody can take the run over (mark it
        stale) until this transaction commits, so a write fenced here never lands after a
        takeover. Raises StateError otherwise (nothing is written).
        """
        from reports.state.schema import runs

        query = sa.select(runs.c.state, runs.c.attempt).where(runs.c.id == run_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        token = self._attempts.get(run_id)
        if row is None or row.state != state or (token is not None and row.attempt != token):
            now = "gone" if row is None else row.state
            raise StateError(f"{where}: run {run_id} is no longer this attempt's ({now}; its "
                             "lease ran out and another attempt took over), so nothing is sent")

    def _select(self, query: sa.Select[Any]) -> list[sa.RowMapping]:
        try:
            with self._engine.connect() as conn:
                return list(conn.execute(query).mappings().all())
        except SQLAlchemyError as exc:
            raise self._fail("reading", exc) from exc
