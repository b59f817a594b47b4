"""The one-report render workers (``WarmWorker``, ``OneShot``): forked early, warmed while the
parent fetches, same limits and errors; two children working at once give the PDF one process
gives."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reports.config import ReportConfig
from reports.errors import RenderError, RenderMemoryError, RenderTimeoutError
from reports.execute.oneshot import OneShot, WarmWorker
from reports.report.build import RenderJob, render_charts, render_report
from reports.report.privacy import PSEUDONYMOUS, Policy
from reports.report.warmup import warm_job
from tests._tasks import (
    allocate_4gb,
    charts_that_eat_memory,
    charts_that_fail,
    fail,
    sleep_forever,
    slow_charts,
)


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


def _no_spare_core() -> bool:
    """As ``oneshot.cores_busy`` on a loaded machine: the children take no warm-up step."""
    return True


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


def test_no_warm_up_step_starts_when_the_job_comes_at_once(tmp_path: Path) -> None:
    """A job handed over as soon as the child is ready (a quick fetch) finds it idle: the first
    warm-up step waits ``WARM_UP_GRACE_S`` for a job, so none is under way to delay it."""
    with WarmWorker(timeout_s=60, memory_mb=1500, busy=never_busy,
                    warm=functools.partial(_slow_steps, tmp_path)) as worker:
        assert worker.run(add, 2, 3) == 5
    assert list(tmp_path.iterdir()) == []


def _demo_job(**changes: object) -> RenderJob:
    """The warm-up report at a low resolution (it stands in for a real one)."""
    report = ReportConfig(name="acme-weekly", org="acme-university", period="weekly",
                          schedule="0 6 * * 1", display_name="Acme University")
    return dataclasses.replace(
        warm_job(report, None, Policy(PSEUDONYMOUS, 10, True)), chart_dpi=50, **changes)


def test_charts_drawn_in_another_process_give_the_same_pdf() -> None:
    """``OneShot`` draws the charts in one child (``render_charts``) while the other lays the
    report out (``render_report`` with ``charts_later``) and writes the PDF once they arrive:
    the same bytes and HTML as one render (in-process here; the children below)."""
    job = _demo_job()
    charted = render_charts(job)
    arrived: list[str] = []

    def later() -> tuple[object, ...]:
        arrived.append("charts")
        return charted.charts

    split = render_report(job, charts_later=later)
    whole = render_report(job)
    assert len(charted.charts) == 3 and set(charted.timings) == {"analyse_s", "charts_s"}
    assert arrived == ["charts"]
    assert split.pdf == whole.pdf and split.pages == whole.pages >= 3
    assert split.html == whole.html and "data:image/png;base64," in split.html
    assert set(split.timings) == {"analyse_s", "charts_s", "html_s", "pdf_s"}


def test_a_template_that_shows_a_chart_otherwise_is_rendered_the_usual_way(
        tmp_path: Path) -> None:
    """A user's charts partial that prints the PNG's size cannot be laid out before the chart
    is drawn (the two HTMLs differ in more than the image URLs): the PDF is made from the
    self-contained HTML once the charts are in, still the one-process file."""
    partials = tmp_path / "partials"
    partials.mkdir()
    (partials / "charts.html.j2").write_text(
        '{% for chart in charts %}<p>{{ chart.title }}: {{ chart.png|length }} bytes</p>'
        '<img src="{{ chart.data_uri }}" alt="{{ chart.alt }}">{% endfor %}', "utf-8")
    job = _demo_job(templates_dir=tmp_path)
    charted = render_charts(job)
    split = render_report(job, charts_later=lambda: charted.charts)
    whole = render_report(job)
    assert split.pdf == whole.pdf and split.html == whole.html
    assert f"{len(charted.charts[0].png)} bytes" in split.html


def test_the_one_shot_lays_out_while_the_charts_are_drawn() -> None:
    """Both children get the job at once: the PDF child's analysis, HTML and layout happen
    while the charts are drawn (here a second longer), so it waits for them less than the
    charts child took; the PDF is the one-process file and the timings add up to the render's
    wall time."""
    job = _demo_job()
    # No warm-up report: one begun while the charts child still imports (under load) would
    # delay the PDF child's start by its layout, which is not what this measures.
    with OneShot(timeout_s=120, memory_mb=1500, warm_job=job,
                 draw=functools.partial(slow_charts, 1.0), busy=_no_spare_core) as shot:
        # both warm first (a child still importing would start its part late)
        assert shot.charts.conn.poll(60) and shot.pdf.conn.poll(60)
        t0 = time.perf_counter()
        rendered = shot.render(job)
        wall = time.perf_counter() - t0
    assert rendered.pdf == render_report(job).pdf
    assert rendered.timings["charts_s"] < 1.0 + sum(shot.charts_timings.values())
    assert sum(rendered.timings.values()) + shot.start_wait_s == pytest.approx(wall, abs=0.01)
    assert not shot.pdf.process.is_alive() and not shot.charts.process.is_alive()


@pytest.mark.parametrize(("draw", "error"), [
    (charts_that_fail, RenderError), (charts_that_eat_memory, RenderMemoryError)])
def test_a_charts_child_that_fails_stops_the_pdf_child(draw: Callable[..., object],
                                                       error: type[RenderError]) -> None:
    """The charts child's error is the render's, at once; the PDF child, which would wait for
    the charts, is stopped (not left hanging until the time limit)."""
    job = _demo_job()
    with OneShot(timeout_s=60, memory_mb=400, warm_job=job, draw=draw) as shot:
        t0 = time.perf_counter()
        with pytest.raises(error) as raised:
            shot.render(job)
        assert time.perf_counter() - t0 < 30
        shot.pdf.process.join(5)
        assert not shot.pdf.process.is_alive()
    assert "font is broken" in str(raised.value) or "memory" in str(raised.value)


def test_the_pdf_child_raises_what_the_parent_says_about_the_charts() -> None:
    """``handover``: the PDF child's wait ends with the charts, the charts child's error, or an
    error if the parent is gone, never in a hang."""
    import multiprocessing

    from reports.execute import handover

    ours, theirs = multiprocessing.Pipe()
    handover.attach(theirs)
    try:
        ours.send(handover.charts(["a", "b"]))
        assert handover.charts_from_parent() == ("a", "b")
        ours.send(handover.failed(RenderError("the render failed: ValueError: no font")))
        with pytest.raises(RenderError, match=r"could not be drawn: the render failed: .*no font"):
            handover.charts_from_parent()
        ours.close()
        with pytest.raises(RenderError, match="the parent process is gone"):
            handover.charts_from_parent()
    finally:
        handover.attach(None)
        theirs.close()


def test_artist_docstrings_are_skipped_only_inside_the_block() -> None:
    """The charts child imports matplotlib without writing every ``set`` docstring and
    signature (CPU); ``set`` takes the same keywords, and a class defined afterwards gets
    both again."""
    import inspect

    import matplotlib.artist

    from reports.execute.warmups import artist_docstrings_skipped

    original = matplotlib.artist.kwdoc
    with artist_docstrings_skipped():
        class Quiet(matplotlib.artist.Artist):
            def set_shade(self, shade: float) -> None:
                """Set the shade."""
                self.shade = shade

        class QuietChild(Quiet):
            pass

    class Loud(matplotlib.artist.Artist):
        def set_shade(self, shade: float) -> None:
            """Set the shade."""

    class LoudChild(Quiet):
        def set_tone(self, tone: str) -> None:
            """Set the tone."""

    assert matplotlib.artist.kwdoc is original
    assert "shade" not in inspect.signature(Quiet.set).parameters
    assert "shade" not in (Quiet.set.__doc__ or "")
    quiet = QuietChild()
    quiet.set(shade=0.5)
    assert quiet.shade == 0.5
    assert "shade" in inspect.signature(Loud.set).parameters
    assert "shade: unknown" in (Loud.set.__doc__ or "")
    assert {"shade", "tone"} <= set(inspect.signature(LoudChild.set).parameters)


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


def test_a_warm_up_report_stops_before_writing_once_the_job_waits() -> None:
    """The PDF child's warm-up report is laid out around blank charts; once the job is waiting
    it stops there (its writing is skipped), so the job waits for its layout at most."""
    import multiprocessing
    import struct

    from reports.execute import handover
    from reports.execute.warmups import WarmUpCut, charts_unless_job

    job = _demo_job()
    ours, theirs = multiprocessing.Pipe()
    handover.attach(theirs)
    try:
        blank = charts_unless_job(job)
        assert [c.key for c in blank] == [c.key for c in render_charts(job).charts]
        assert all(struct.unpack(">II", c.png[16:24]) == (c.width_px, c.height_px)
                   for c in blank)
        ours.send(("job", ()))
        with pytest.raises(WarmUpCut):
            charts_unless_job(job)
    finally:
        handover.attach(None)
        ours.close()
        theirs.close()


def test_a_pdf_child_gone_before_the_job_fails_the_render_without_a_hang() -> None:
    """The caller waits for ``charts_drawn`` (to write the ledger): a render that fails before
    the charts start still sets it, and says the worker is gone."""
    job = _demo_job()
    with OneShot(timeout_s=60, memory_mb=1500, warm_job=job) as shot:
        shot.pdf.kill()
        with pytest.raises(RenderError, match="worker"):
            shot.render(job)
        assert shot.charts_drawn.is_set()


def _slow_imports() -> None:
    """A child whose imports take a second (as the PDF child's do, against the charts')."""
    time.sleep(1.0)


def test_the_child_ready_first_is_handed_its_job_first() -> None:
    """``OneShot.render`` gives the job first to whichever child is warm: a charts child
    ready before the PDF child starts drawing instead of waiting for the other's imports."""
    from reports.execute.oneshot import by_readiness

    slow = WarmWorker(timeout_s=60, memory_mb=1500, warm=_slow_imports)
    quick = WarmWorker(timeout_s=60, memory_mb=1500, warm=no_warm_up)
    with slow, quick:
        deadline = time.perf_counter() + 60
        assert by_readiness([slow, quick], deadline) == [quick, slow]
        assert quick.run(add, 1, 2) == 3
        assert by_readiness([quick, slow], deadline) == [quick, slow]  # both "gone" or ready
        assert slow.run(add, 2, 3) == 5
