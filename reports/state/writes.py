"""A write transaction on the state database: one that holds what it read until it commits.

On PostgreSQL ``engine.begin()`` is that already (a fence reads the run ``FOR SHARE``). Python's
SQLite driver opens a transaction only before an INSERT, UPDATE or DELETE: a read that decides a
write (the lease fence, "is this run still this attempt's?") would run outside it, and another
process could take the run over between the read and the write. ``begin_write`` starts SQLite's
transaction with ``BEGIN IMMEDIATE``, which takes the write lock first: other writers wait
(``busy_timeout``) until it commits, readers are not blocked (WAL), and every statement in it,
reads included, is one atomic step. It also makes many statements one commit (one disk flush).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()``, holding SQLite's write lock from the first statement."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn
