"""PostgreSQL for tests: `IBL_TEST_PG_URL` names a database on a server where the test user may
create databases (.ci/run starts a local server and sets it). Every pytest process (each xdist
worker, each concurrent run) gets a database of its own, made from that URL on first use and
dropped at exit; each test starts from an empty schema. Without the variable the PostgreSQL
cases are skipped on a developer machine."""

from __future__ import annotations

import atexit
import os

import pytest
import sqlalchemy as sa

PG_ENV = "IBL_TEST_PG_URL"

_own: dict[str, str] = {}


def _process_database(base_url: str) -> str:
    """This process's own database on the server `base_url` points at (made once)."""
    if base_url in _own:
        return _own[base_url]
    base = sa.engine.make_url(base_url)
    name = f"{base.database}_{os.getpid()}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()

    def drop() -> None:
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except sa.exc.SQLAlchemyError:
            pass  # the server may already be gone at the end of a CI run
        finally:
            engine.dispose()

    atexit.register(drop)
    url = base.set(database=name).render_as_string(hide_password=False)
    _own[base_url] = url
    return url


def pg_url() -> str:
    """A clean PostgreSQL database URL of this process, or skip when none is configured."""
    base_url = os.environ.get(PG_ENV)
    if not base_url:
        pytest.skip(f"set {PG_ENV} to run the PostgreSQL cases (.ci/run does)")
    url = _process_database(base_url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url
