"""PostgreSQL for tests: `IBL_TEST_PG_URL` names an empty database we may wipe (.ci/run starts a
local server and sets it). Without it the PostgreSQL cases are skipped on a developer machine."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

PG_ENV = "IBL_TEST_PG_URL"


def pg_url() -> str:
    """A clean PostgreSQL database URL, or skip the test when none is configured."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"set {PG_ENV} to run the PostgreSQL cases (.ci/run does)")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url
