"""The one-report render worker (``WarmWorker``): forked early, same limits and errors."""

from __future__ import annotations

import pytest

from reports.errors import RenderError, RenderMemoryError, RenderTimeoutError
from reports.execute.oneshot import WarmWorker
from tests._tasks import allocate_4gb, fail, sleep_forever


def no_warm_up() -> None:
    """The tests below check limits, not warm-up (a real one costs seconds under load)."""


def add(a: int, b: int) -> int:
    return a + b


def test_runs_the_job_and_reports_the_wait_for_the_worker() -> None:
    with WarmWorker(timeout_s=60, memory_mb=1500, warm=no_warm_up) as worker:
        assert worker.run(add, 2, 3) == 5
        assert worker.start_wait_s >= 0
    assert worker.process.exitcode == 0


def test_a_job_past_the_time_limit_is_killed() -> None:
    worker = WarmWorker(timeout_s=1.0, memory_mb=1500, warm=no_warm_up)
    with worker, pytest.raises(RenderTimeoutError, match="longer than 1 s"):
        worker.run(sleep_forever)
    assert not worker.process.is_alive()


def test_a_job_over_the_memory_limit_is_stopped() -> None:
    worker = WarmWorker(timeout_s=60, memory_mb=300, warm=no_warm_up)
    with worker, pytest.raises(RenderMemoryError, match="300 MiB"):
        worker.run(allocate_4gb)


def test_an_exception_crosses_as_one_line() -> None:
    worker = WarmWorker(timeout_s=60, memory_mb=1500, warm=no_warm_up)
    with worker, pytest.raises(RenderError, match=r"the render failed: .*broken"):
        worker.run(fail, "the template is broken\nsecond line")


def test_a_worker_never_given_a_job_is_stopped_on_close() -> None:
    worker = WarmWorker(timeout_s=60, memory_mb=1500, warm=no_warm_up)
    worker.close()
    assert not worker.process.is_alive()
