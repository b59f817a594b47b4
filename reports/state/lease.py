"""A run's lease: who owns a working run, proven by a heartbeat rather than a process id.

``start_run`` gives a run an attempt token and ``lease_until`` (the database's now + the lease);
while the run works, a ``Heartbeat`` thread renews the lease every third of it. A run whose lease
ran out belongs to nobody: its process died (killed, OOM, a lost machine, a zombie nobody reaped:
a process id can lie, the clock of the database cannot), and the next attempt of the same period
marks it failed and takes over. A heartbeat that finds its run taken over stops and says so;
the attempt's remaining writes are refused by the fence (``LedgerStore._fence``).

PostgreSQL's ``now()`` is the clock on a fleet (workers' clocks may differ); SQLite, which only
one machine uses, takes the ledger's clock.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def new_attempt() -> str:
    """A token naming one attempt at one run."""
    return secrets.token_hex(16)


def db_now(conn: Connection, fallback: Callable[[], datetime]) -> datetime:
    """The database's now (PostgreSQL), else ``fallback()`` (SQLite: one machine, one clock)."""
    if conn.dialect.name == "postgresql":
        value = conn.execute(sa.select(sa.func.now())).scalar_one()
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return fallback()


class Heartbeat:
    """Calls ``renew()`` every ``every_s`` in a daemon thread until stopped or renew says no.

    ``lost`` is set when ``renew`` returns False (the run was taken over or finished) or keeps
    failing past the lease; errors of one renewal are retried at the next beat.
    """

    def __init__(self, renew: Callable[[], bool], *, every_s: float, lease_s: float) -> None:
        self._renew = renew
        self._every = every_s
        self._lease = lease_s
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="run-lease", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(self._every + 5)

    def _beat(self) -> None:
        import time

        last_ok = time.monotonic()
        while not self._stop.wait(self._every):
            try:
                if not self._renew():
                    self.lost.set()
                    return
                last_ok = time.monotonic()
            except Exception:  # the database is briefly away: the next beat tries again
                if time.monotonic() - last_ok > self._lease:
                    self.lost.set()
                    return
