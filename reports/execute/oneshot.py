"""Render workers for one report (``generate --report``), forked early and warmed meanwhile.

A single report need not pay for a fork server: the fork server is a fresh interpreter that
re-imports everything, and a child forked from it still renders cold (fonts, matplotlib's font
cache, WeasyPrint's first layout). ``WarmWorker`` forks this process once, before the fetch; the
child imports the render modules and renders a tiny page and a tiny chart while the parent
fetches, then waits for the one job. Limits as ``run_limited``: the child lowers its own
``RLIMIT_AS`` to ``memory_mb`` and becomes a process-group leader before the job; the parent kills
the group when the job runs past ``timeout_s``. Same errors (``RenderTimeoutError``,
``RenderMemoryError``, ``RenderError``) and the ``run(func, *args)`` shape of ``WorkerPool``.

A plain ``fork`` is only used while this process has a single thread (the CLI, before the fetch);
with other threads running (a test runner, a daemon) the child comes from the fork server.
``start_wait_s`` is how long ``run`` waited for the child to finish warming up.

``OneShot`` is the pair a single report uses, so that both cores work: one child imports
matplotlib and draws the charts, the other imports WeasyPrint and renders a tiny report of the
same look (``report.warmup``) meanwhile, then lays out the HTML and the PDF around those charts.
One child doing both imported ~1.3 s of libraries, rendered a generic page, then drew and laid out
the report cold, all in sequence, while the other core sat idle after the fetch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import importlib
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from reports.errors import RenderTimeoutError
from reports.execute.cachedirs import prepare_environment
from reports.execute.worker import (
    _KILL_GRACE_S,
    _call,
    _context,
    _kill_group,
    _limit_self,
    _result,
    start_child,
)

T = TypeVar("T")


CHART_MODULES = ("reports.report.build", "reports.report.charts", "matplotlib.figure",
                 "matplotlib.backends.backend_agg")
PDF_MODULES = ("reports.report.weasy", "reports.report.pdf", "reports.report.build",
               "reports.report.render", "reports.report.csvdata", "reports.report.analysis")

Warm = Callable[[], "Sequence[Callable[[], object]] | None"]
"""A warm-up: runs before the child says it is ready (imports); the steps it returns run after,
one by one, only while no job is waiting or announced (``WarmWorker.soon``: a job is never
delayed by more than one step) and the machine has a core to spare (on a busy machine a step
costs more CPU than it saves)."""


def warm_charts(language: str) -> None:
    """Import matplotlib and look up the chain's fonts at the charts' sizes (one-time costs that
    the first charts would pay; drawing a warm-up chart would cost more than it saves)."""
    with artist_docstrings_skipped():
        for name in CHART_MODULES:
            importlib.import_module(name)
    from reports.report.charts import warm_fonts
    from reports.report.fonts import chain_fonts_only

    chain_fonts_only()
    warm_fonts(language)


@contextlib.contextmanager
def artist_docstrings_skipped() -> Iterator[None]:
    """Inside the block, matplotlib's classes get no property list in their ``set`` docstring.

    Defining an ``Artist`` subclass writes one (``matplotlib.artist.kwdoc``: every setter's
    docstring, cleaned), ~40% of the CPU of importing ``matplotlib.figure``; a render child
    never reads a docstring. Nothing else changes: ``set`` keeps its signature.
    """
    import matplotlib.artist

    original = matplotlib.artist.kwdoc
    matplotlib.artist.kwdoc = _no_kwdoc
    try:
        yield
    finally:
        matplotlib.artist.kwdoc = original


def _no_kwdoc(artist: object) -> str:
    return ""


def warm_pdf(job: Any) -> list[Callable[[], object]]:
    """Import WeasyPrint; then, if there is time, render ``job`` (a ``warmup.warm_job`` of the
    same report, no charts): its fonts, hyphenation dictionary, stylesheets, table layout."""
    for name in PDF_MODULES:
        importlib.import_module(name)
    from reports.report.build import render_report

    return [functools.partial(render_report, dataclasses.replace(job, charts=()))]


def cores_busy() -> bool:
    """Whether the machine has no core to spare: a later warm-up step would then take CPU from
    the fetch and the charts (1-minute load at twice the cores or more)."""
    return os.getloadavg()[0] >= 2 * (os.cpu_count() or 1)


def no_warm_up() -> None:
    """No warm-up (the job pays for its imports)."""


def _warm(conn: multiprocessing.connection.Connection, warm: Warm, busy: Callable[[], bool]
          ) -> None:
    """Run ``warm``, say "ready", then its later steps while no job waits (GC off meanwhile)."""
    gc.freeze()  # the parent's objects: never collected here
    gc.disable()  # imports and warm-up build live objects only (~10% of their CPU)
    try:
        steps: Sequence[Callable[[], object]] = ()
        with contextlib.suppress(Exception):  # the job itself will say what is wrong
            steps = warm() or ()
        conn.send("ready")
        ran = False
        for step in steps:
            if conn.poll(0) or busy():
                break
            with contextlib.suppress(Exception):
                step()
            ran = True
    finally:
        gc.enable()
    if ran and not conn.poll(0):  # the warm-up report's garbage, not the job's memory
        gc.collect()


SOON = "soon"
"""What ``WarmWorker.soon`` sends: no warm-up step starts after it (the job is on its way)."""


def _serve_one(conn: multiprocessing.connection.Connection, memory_mb: int, warm: Warm,
               busy: Callable[[], bool]) -> None:
    """Child side: warm up, say so, then run the one job under the limits."""
    try:
        _warm(conn, warm, busy)
        job = conn.recv()
        while job == SOON:
            job = conn.recv()
        if job is None:
            return
        _limit_self(memory_mb)
        func, args = job
        conn.send(_call(func, args))
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def _start_context() -> BaseContext:
    if threading.active_count() == 1:
        prepare_environment()
        return multiprocessing.get_context("fork")
    return _context()


class WarmWorker:
    """One limited render child, started now and warmed while the caller does other work."""

    def __init__(
        self, *, timeout_s: float, memory_mb: int, warm: Warm = no_warm_up,
        busy: Callable[[], bool] = cores_busy,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.start_wait_s = 0.0
        self.conn, self.process = start_child(_start_context(), _serve_one, memory_mb, warm, busy)

    def __enter__(self) -> WarmWorker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child if it is still there (job never sent, or done)."""
        if self.process.exitcode is None:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(_KILL_GRACE_S)
        self.conn.close()
        if self.process.is_alive():
            _kill_group(self.process)

    def soon(self) -> None:
        """Say the job is on its way: the child starts no further warm-up step (one already
        under way finishes; the job waits for it)."""
        with contextlib.suppress(OSError):
            self.conn.send(SOON)

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in the warm child; raises like ``run_limited``."""
        t0 = time.perf_counter()
        kind, payload = self._exchange(func, args, t0)
        if kind == "timeout":
            self.kill()
            raise RenderTimeoutError(
                f"the render took longer than {self.timeout_s:g} s and was stopped"
            )
        if kind != "ok":
            self.process.join(_KILL_GRACE_S)
        return _result(  # type: ignore[no-any-return]
            kind, payload, self.process.exitcode, self.memory_mb
        )

    def _exchange(self, func: Callable[..., Any], args: tuple[Any, ...], t0: float) -> Any:
        deadline = t0 + self.timeout_s
        try:
            if not self.conn.poll(self.timeout_s):  # still warming up: counts against the limit
                return "timeout", None
            if self.conn.recv() != "ready":
                return "died", None
            self.start_wait_s = time.perf_counter() - t0
            self.conn.send((func, args))
            if not self.conn.poll(max(0.0, deadline - time.perf_counter())):
                return "timeout", None
            return self.conn.recv()
        except (EOFError, OSError):
            return "died", None

    def kill(self) -> None:
        """Kill the child's process group now."""
        self.conn.close()
        _kill_group(self.process)


class OneShot:
    """Two warm children for one report: charts in one, HTML and PDF in the other.

    ``render(job)`` returns what ``render_report(job)`` would, with the stages of both children
    in its timings (``analyse_s`` counts both analyses); the time limit covers both, one after
    the other. ``start_wait_s``: how long the two were waited for, hand-overs included.
    ``charts_drawn`` is set once the charts child is done (or failed): work of the caller's that
    can wait (the ledger) then shares the cores with the PDF child only, not with the charts and
    the PDF child's warm-up.
    """

    def __init__(self, *, timeout_s: float, memory_mb: int, warm_job: Any) -> None:
        self.timeout_s = timeout_s
        self.charts = WarmWorker(timeout_s=timeout_s, memory_mb=memory_mb,
                                 warm=functools.partial(warm_charts, warm_job.report.lang.code))
        try:
            self.pdf = WarmWorker(timeout_s=timeout_s, memory_mb=memory_mb,
                                  warm=functools.partial(warm_pdf, warm_job))
        except BaseException:
            self.charts.close()
            raise
        self.start_wait_s = 0.0
        self.charts_drawn = threading.Event()

    def __enter__(self) -> OneShot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop both children."""
        self.charts.close()
        self.pdf.close()

    def render(self, job: Any) -> Any:
        """``render_report(job)`` across the two children (raises like ``run_limited``)."""
        from reports.report.build import render_charts, render_report

        t0 = time.perf_counter()
        # A warm-up report not begun by now would draw CPU from the charts and make the PDF
        # wait for its end: the PDF child goes without it.
        self.pdf.soon()
        try:
            charted = self.charts.run(render_charts, job)
        finally:
            self.charts_drawn.set()
        self.charts.close()  # done: its memory goes back before the PDF is laid out
        self.pdf.timeout_s = max(0.1, self.timeout_s - (time.perf_counter() - t0))
        rendered = self.pdf.run(render_report, dataclasses.replace(job, charts=charted.charts))
        timings = dict(rendered.timings)
        for key, value in charted.timings.items():
            timings[key] = timings.get(key, 0.0) + value
        spent = time.perf_counter() - t0
        self.start_wait_s = max(0.0, spent - sum(timings.values()))
        return dataclasses.replace(rendered, timings=timings)
