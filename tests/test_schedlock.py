"""The single-scheduler lock: refuses a second holder, names its pid, dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reports.errors import SchedulerLockError
from reports.schedule.lock import LOCK_FILE_NAME, acquire_scheduler_lock, lock_path_for
from tests._pg import pg_url

HOLDER = (
    "import sys, time\n"
    "from reports.schedule.lock import acquire_scheduler_lock\n"
    "lock = acquire_scheduler_lock(sys.argv[1])\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


Holder = tuple[str, "subprocess.Popen[str]"]


@pytest.fixture(params=["sqlite", "postgresql"])
def holder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Holder]:
    """A lock held by another process, on SQLite (file lock) and PostgreSQL (advisory lock)."""
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else pg_url()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield url, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    proc.stdout.close()


def test_a_second_holder_is_refused_with_the_first_holders_pid(holder: Holder) -> None:
    url, proc = holder
    with pytest.raises(SchedulerLockError) as info:
        acquire_scheduler_lock(url)
    assert info.value.pid == proc.pid
    assert str(info.value) == f"another scheduler is already running (pid {proc.pid})"


def test_the_lock_is_released_when_the_holder_is_sigkilled(holder: Holder) -> None:
    url, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    lock = acquire_scheduler_lock(url)
    try:
        path = lock_path_for(url)
        if path is not None:
            assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(SchedulerLockError) as info:
            acquire_scheduler_lock(url, cwd=Path.cwd())
        assert info.value.pid == os.getpid()
    finally:
        lock.release()


def test_release_lets_the_next_holder_in_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    lock = acquire_scheduler_lock(url)
    with pytest.raises(SchedulerLockError):
        acquire_scheduler_lock(url)  # also refused within one process (separate open files)
    lock.release()
    lock.release()
    again = acquire_scheduler_lock(url)
    again.release()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:////srv/reports/state.db", Path("/srv/reports/state.db.lock"),
                     id="sqlite-file-next-to-db"),
        pytest.param("sqlite:///:memory:", Path("/work/x") / LOCK_FILE_NAME, id="memory-cwd"),
        pytest.param("sqlite://", Path("/work/x") / LOCK_FILE_NAME, id="sqlite-default-memory"),
        pytest.param("mysql://u:p@db/reports", Path("/work/x") / LOCK_FILE_NAME, id="other-cwd"),
        pytest.param("postgresql://u:p@db/reports", None, id="postgres-advisory"),
    ],
)
def test_where_the_lock_lives(url: str, expected: Path | None) -> None:
    assert lock_path_for(url, cwd=Path("/work/x")) == expected
