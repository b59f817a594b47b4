"""One scheduler per state database: a lock that dies with the process that holds it.

- SQLite file database: an OS file lock (``fcntl.flock``) on ``<db>.lock`` next to the database
  file; the holder's pid is written inside so the refusal can name it.
- PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection; the holder's pid travels in the
  connection's ``application_name`` so a second scheduler can name it.
- Anything else (``:memory:``, other dialects): a lock file in the working directory.

The kernel (or the database server) releases the lock when its holder dies, even by SIGKILL, so
a crashed scheduler never blocks the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from reports.errors import SchedulerLockError, StateError

LOCK_FILE_NAME = "ibl-reports-scheduler.lock"
# A fixed, arbitrary advisory-lock key reserved for the ibl-reports scheduler.
PG_LOCK_KEY = 0x2B0F_5C3D_1A6E_4F21
_APP_NAME_RE = re.compile(r"ibl-reports-scheduler pid=(\d+)")


class SchedulerLock(Protocol):
    """A held scheduler lock."""

    def release(self) -> None:
        """Give the lock up (idempotent)."""


class FileLock:
    """An exclusive ``flock`` on a file that holds the owner's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        """Take the lock, or raise SchedulerLockError naming the holder's pid."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(
                f"cannot open the scheduler lock file {self.path}: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise SchedulerLockError(pid) from None
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot lock {self.path}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock and close (the file stays: deleting it would race a new holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FileLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class PgAdvisoryLock:
    """``pg_try_advisory_lock`` held on a dedicated connection for the daemon's lifetime."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self._engine: Any = None

    def acquire(self) -> PgAdvisoryLock:
        """Take the lock, or raise SchedulerLockError naming the holder's pid when known."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError
        from sqlalchemy.pool import NullPool

        try:
            self._engine = create_engine(
                self.url, poolclass=NullPool,
                connect_args={"application_name": f"ibl-reports-scheduler pid={os.getpid()}"},
            )
            conn = self._engine.connect()
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_KEY}
            ).scalar()
            conn.commit()
            if not got:
                holder = conn.execute(
                    text(
                        "SELECT a.application_name FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted "
                        "AND l.objsubid = 1 "
                        "AND l.classid::bigint = (CAST(:k AS bigint) >> 32) "
                        "AND l.objid::bigint = (CAST(:k AS bigint) & 4294967295)"
                    ),
                    {"k": PG_LOCK_KEY},
                ).scalar()
                conn.close()
                self._engine.dispose()
                match = _APP_NAME_RE.search(holder or "")
                raise SchedulerLockError(int(match.group(1)) if match else None)
        except SQLAlchemyError as exc:
            raise StateError(
                f"cannot take the scheduler lock in the state database: {type(exc).__name__}"
            ) from exc
        self._conn = conn
        return self

    def release(self) -> None:
        """Unlock and close the dedicated connection."""
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()
        finally:
            conn.close()
            self._engine.dispose()


def lock_path_for(url: str, cwd: Path | None = None) -> Path | None:
    """The lock file for a state URL, or None when the database itself provides the lock."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return None
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and not (
        database.startswith("file:")
    ):
        db = Path(database)
        return db.with_name(db.name + ".lock")
    return (cwd or Path.cwd()) / LOCK_FILE_NAME


def acquire_scheduler_lock(url: str, *, cwd: Path | None = None) -> SchedulerLock:
    """Take the single-scheduler lock for the state database at ``url``."""
    path = lock_path_for(url, cwd)
    if path is None:
        return PgAdvisoryLock(url).acquire()
    return FileLock(path).acquire()
