"""The one-report render workers (``WarmWorker``, ``OneShot``): forked early, warmed while the
parent fetches, same limits and errors; two children give the PDF one process gives."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reports.config import ReportConfig
from reports.errors import RenderError, RenderMemoryError, RenderTimeoutError
from reports.execute.oneshot import WarmWorker
from reports.report.build import render_charts, render_report
from reports.report.privacy import PSEUDONYMOUS, Policy
from reports.report.warmup import warm_job
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


def _slow_steps(marks: Path) -> list[Callable[[], object]]:
    """A warm-up whose 50 later steps would take 50 s: one marker file each."""
    return [functools.partial(_step, marks / f"step{i}") for i in range(50)]


def _step(mark: Path) -> None:
    mark.touch()
    time.sleep(1.0)


def never_busy() -> bool:
    """A machine with cores to spare (the real check reads the load average)."""
    return False


def test_warm_up_steps_stop_once_the_job_waits(tmp_path: Path) -> None:
    with WarmWorker(timeout_s=60, memory_mb=1500, busy=never_busy,
                    warm=functools.partial(_slow_steps, tmp_path)) as worker:
        for _ in range(600):  # no job yet: the steps run
            if any(tmp_path.iterdir()):
                break
            time.sleep(0.05)
        assert worker.run(add, 2, 3) == 5
    assert 0 < len(list(tmp_path.iterdir())) < 50  # the job ran after the step under way


def _steps_after_go(marks: Path) -> list[Callable[[], object]]:
    """The slow steps, once the test says go (so that it speaks first)."""
    for _ in range(1200):
        if (marks / "go").exists():
            break
        time.sleep(0.05)
    return _slow_steps(marks)


def test_no_warm_up_step_starts_once_the_job_is_announced(tmp_path: Path) -> None:
    """``soon()`` (the one-shot says it when the charts start): a warm-up report not begun by
    then is skipped, so it takes no CPU from the charts and the job does not wait for it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    with WarmWorker(timeout_s=60, memory_mb=1500, busy=never_busy,
                    warm=functools.partial(_steps_after_go, marks)) as worker:
        worker.soon()
        (marks / "go").touch()
        t0 = time.perf_counter()
        assert worker.run(add, 2, 3) == 5
        assert time.perf_counter() - t0 < 30  # not after the 50 one-second steps
    assert [m.name for m in marks.iterdir()] == ["go"]


def test_charts_drawn_in_another_process_give_the_same_pdf() -> None:
    """``OneShot`` draws the charts in one child (``render_charts``) and hands them to the
    other's ``render_report``: the same bytes as one render (the warm-up report at a low
    resolution stands in for a real one; in-process, the plumbing is the e2e tests')."""
    report = ReportConfig(name="acme-weekly", org="acme-university", period="weekly",
                          schedule="0 6 * * 1", display_name="Acme University")
    job = dataclasses.replace(
        warm_job(report, None, Policy(PSEUDONYMOUS, 10, True)), chart_dpi=50)
    charted = render_charts(job)
    split = render_report(dataclasses.replace(job, charts=charted.charts))
    whole = render_report(job)
    assert len(charted.charts) == 3 and set(charted.timings) == {"analyse_s", "charts_s"}
    assert split.pdf == whole.pdf and split.pages == whole.pages >= 3


def test_artist_docstrings_are_skipped_only_inside_the_block() -> None:
    """The charts child imports matplotlib without writing every ``set`` docstring (CPU);
    the classes keep their ``set`` signature, and ``kwdoc`` is itself again afterwards."""
    import inspect

    import matplotlib.artist

    from reports.execute.oneshot import artist_docstrings_skipped

    original = matplotlib.artist.kwdoc
    with artist_docstrings_skipped():
        class Quiet(matplotlib.artist.Artist):
            def set_shade(self, shade: float) -> None:
                """Set the shade."""

    class Loud(matplotlib.artist.Artist):
        def set_shade(self, shade: float) -> None:
            """Set the shade."""

    assert matplotlib.artist.kwdoc is original
    assert "shade" in inspect.signature(Quiet.set).parameters
    assert "shade" not in (Quiet.set.__doc__ or "")
    assert "shade: unknown" in (Loud.set.__doc__ or "")


@pytest.mark.parametrize("language", ["ja", "ar"])
def test_charts_drawn_among_the_chain_fonts_only_are_the_same(language: str) -> None:
    """The charts child lets matplotlib score only the chains' fonts (CPU): the same fonts win,
    in a CJK-first and an Arabic-first chain."""
    from matplotlib import font_manager

    from reports.report.fonts import chain_fonts_only

    report = ReportConfig(name="r", org="o", period="weekly", schedule="0 6 * * 1",
                          language=language)
    job = dataclasses.replace(
        warm_job(report, None, Policy(PSEUDONYMOUS, 10, True)), chart_dpi=50)
    manager = font_manager.fontManager
    manager._findfont_cached.cache_clear()
    everything = render_charts(job).charts
    full = chain_fonts_only()
    try:
        manager._findfont_cached.cache_clear()
        assert len(manager.ttflist) < len(full) / 4
        assert render_charts(job).charts == everything
    finally:
        manager.ttflist = full
        manager._findfont_cached.cache_clear()
