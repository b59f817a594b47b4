"""The read-only last-run reader keeps up with the ledger's schema."""

from __future__ import annotations

from reports.schedule.lastrun import MAX_SCHEMA
from reports.state.schema import SCHEMA_VERSION


def test_the_fast_reader_knows_the_newest_schema() -> None:
    # A migration that forgets MAX_SCHEMA makes `jobs` fall back to the slow path silently.
    assert MAX_SCHEMA == SCHEMA_VERSION
