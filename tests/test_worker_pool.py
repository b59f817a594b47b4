"""The warm worker pool: reuse across jobs, and the same limits and errors as run_limited."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reports.errors import RenderError, RenderMemoryError, RenderTimeoutError
from reports.execute.worker import WorkerPool
from tests._tasks import allocate_4gb, fail, inherited, loaded, sleep_forever


def pid_after(a: int) -> tuple[int, int]:
    return os.getpid(), a * 2


def die() -> None:
    os._exit(3)


def test_jobs_reuse_one_warm_worker() -> None:
    with WorkerPool(timeout_s=30, memory_mb=1500) as pool:
        results = [pool.run(pid_after, i) for i in range(5)]
    assert [value for _pid, value in results] == [0, 2, 4, 6, 8]
    assert len({pid for pid, _ in results}) == 1
    assert results[0][0] != os.getpid()


def test_a_worker_retires_after_max_jobs() -> None:
    with WorkerPool(timeout_s=30, memory_mb=1500, max_jobs=2) as pool:
        pids = [pool.run(pid_after, i)[0] for i in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_parallel_callers_get_separate_workers() -> None:
    with WorkerPool(timeout_s=30, memory_mb=1500) as pool, ThreadPoolExecutor(2) as threads:
        results = list(threads.map(lambda i: pool.run(pid_after, i), range(8)))
    assert [v for _p, v in results] == [i * 2 for i in range(8)]
    assert 1 <= len({p for p, _ in results}) <= 2


def test_errors_keep_the_worker_and_limits_replace_it() -> None:
    with WorkerPool(timeout_s=1.5, memory_mb=800) as pool:
        first, _ = pool.run(pid_after, 1)
        with pytest.raises(RenderError, match=r"^the render failed: ValueError: bad$") as info:
            pool.run(fail, "bad\nsecond line")
        assert type(info.value) is RenderError
        assert pool.run(pid_after, 1)[0] == first  # an exception does not cost the worker

        started = time.monotonic()
        with pytest.raises(RenderTimeoutError, match=r"longer than 1\.5 s"):
            pool.run(sleep_forever)
        assert time.monotonic() - started < 10
        after_timeout, _ = pool.run(pid_after, 1)
        assert after_timeout != first

        with pytest.raises(RenderMemoryError, match="limit 800 MiB"):
            pool.run(allocate_4gb)
        after_memory, value = pool.run(pid_after, 2)
        assert value == 4 and after_memory != after_timeout

        with pytest.raises(RenderError, match="exited with code 3"):
            pool.run(die)
        assert pool.run(pid_after, 3)[1] == 6


def pid_while(seconds: float) -> tuple[int, float, float]:
    """The worker's pid and when (monotonic) the job ran, ``seconds`` long."""
    start = time.monotonic()
    time.sleep(seconds)
    return os.getpid(), start, time.monotonic()


def test_a_sized_pool_never_runs_more_workers_than_its_size() -> None:
    # A batch calls from more threads than there are workers: the extra callers wait their
    # turn for a live worker instead of starting one each.
    with WorkerPool(timeout_s=30, memory_mb=1500, size=2) as pool, \
            ThreadPoolExecutor(6) as threads:
        runs = list(threads.map(lambda _i: pool.run(pid_while, 0.2), range(6)))
    assert len({pid for pid, _s, _e in runs}) == 2
    events = sorted([(s, 1) for _p, s, _e in runs] + [(e, -1) for _p, _s, e in runs])
    running = [sum(step for _t, step in events[: i + 1]) for i in range(len(events))]
    assert max(running) == 2


def test_a_killed_worker_frees_its_place_in_a_sized_pool() -> None:
    with WorkerPool(timeout_s=1.0, memory_mb=800, size=1) as pool, \
            ThreadPoolExecutor(2) as threads:
        hung = threads.submit(pool.run, sleep_forever)
        waiting = threads.submit(pool.run, pid_after, 5)
        with pytest.raises(RenderTimeoutError):
            hung.result(timeout=20)
        assert waiting.result(timeout=20)[1] == 10
        with pytest.raises(RenderError, match="exited with code 3"):
            pool.run(die)
        assert pool.run(pid_after, 1)[1] == 2


def test_a_worker_starts_with_what_a_render_imports_and_without_pyplot() -> None:
    # Imported once by the fork server (reports.execute.preload), not by every worker's first
    # report; pyplot, which the charts never use, is not imported at all.
    names = ("matplotlib.figure", "reports.report.chartrender", "jinja2", "babel.support",
             "reports.report.pdf", "reports.report.charts", "matplotlib.pyplot")
    with WorkerPool(timeout_s=30, memory_mb=1500) as pool:
        found = pool.run(loaded, names)
    assert found == {name: name != "matplotlib.pyplot" for name in names}


def test_a_worker_inherits_the_fork_servers_look_ups_and_frozen_heap() -> None:
    # The fork server's imports and look-ups are frozen (a worker's collections never walk, and
    # so never copy, the shared heap: tens of thousands of objects) and the first render's
    # one-time look-ups are done there once, not in every worker; but not the font map, whose
    # Pango FcInit thread a fork would leave behind.
    with WorkerPool(timeout_s=30, memory_mb=1500) as pool:
        found = pool.run(inherited)
    assert found.pop("frozen") > 100_000
    assert found == {"c_types": True, "font_config": False, "english": True}


def test_prestart_starts_the_workers_before_any_job() -> None:
    import multiprocessing

    before = {child.pid for child in multiprocessing.active_children()}
    with WorkerPool(timeout_s=30, memory_mb=1500, size=2) as pool, \
            ThreadPoolExecutor(2) as threads:
        pool.prestart()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            started = {c.pid for c in multiprocessing.active_children()} - before
            if len(started) == 2:
                break
            time.sleep(0.05)
        assert len(started) == 2
        pids = {pid for pid, _ in threads.map(lambda i: pool.run(pid_after, i), range(4))}
    assert pids <= started
