"""The light last-run reader used by ``ibl-reports jobs`` agrees with the Ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from reports.report.periods import Period, PeriodKind
from reports.schedule.lastrun import sqlite_last_run, sqlite_path
from reports.state.ledger import Ledger
from reports.state.runs import RunState

WEEK1 = Period(date(2026, 4, 6), date(2026, 4, 12), PeriodKind.WEEKLY)
WEEK2 = Period(date(2026, 4, 13), date(2026, 4, 19), PeriodKind.WEEKLY)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///state.db", Path("state.db"), id="relative"),
        pytest.param("sqlite:////var/lib/r/state.db", Path("/var/lib/r/state.db"), id="absolute"),
        pytest.param("sqlite+pysqlite:///s.db?timeout=5", Path("s.db"), id="driver-and-query"),
        pytest.param("sqlite://", None, id="memory"),
        pytest.param("sqlite:///:memory:", None, id="memory-explicit"),
        pytest.param("postgresql://u:p@h/db", None, id="postgres"),
    ],
)
def test_sqlite_path(url: str, expected: Path | None) -> None:
    assert sqlite_path(url) == expected


def test_reads_the_same_last_run_as_the_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    start = datetime(2026, 4, 20, 5, tzinfo=UTC)
    ticks = iter(start + timedelta(seconds=i) for i in range(100))
    with Ledger(url, clock=lambda: next(ticks)) as ledger:
        first = ledger.start_run("weekly", "acme", WEEK1)
        ledger.transition(first, RunState.FAILED, error="the API said 503")
        second = ledger.start_run("weekly", "acme", WEEK2)
        ledger.transition(second, RunState.RENDERING)
        other = ledger.start_run("monthly", "acme", WEEK1)
        ledger.transition(other, RunState.FAILED, error="boom")
        expected = {name: ledger.last_run(name) for name in ("weekly", "monthly")}
    before = (tmp_path / "state.db").read_bytes()

    last_run = sqlite_last_run(url)

    assert last_run is not None
    for name, record in expected.items():
        light = last_run(name)
        assert record is not None and light is not None
        assert (light.state, light.period_start, light.period_end) == (
            record.state.value, record.period_start, record.period_end)
        assert (light.started_at, light.finished_at, light.error) == (
            record.started_at, record.finished_at, record.error)
    assert last_run("never-ran") is None
    assert (tmp_path / "state.db").read_bytes() == before  # read-only


def test_not_a_database_raises_and_a_missing_file_is_none(tmp_path: Path) -> None:
    import sqlite3

    assert sqlite_last_run(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "bad.db").write_bytes(b"not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        sqlite_last_run(f"sqlite:///{tmp_path / 'bad.db'}")
