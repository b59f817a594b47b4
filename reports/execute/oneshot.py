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
``start_wait_s`` is how long ``run`` (or ``submit``) waited for the child to finish warming up.
A child may also be started before the report is known (``WarmWorker.unadopted``: the PDF child,
as ``generate`` starts) and get its limits and the report's warm-up later (``adopt``).

``OneShot`` is the pair a single report uses, so that both cores work: one child imports
matplotlib and draws the charts, the other imports WeasyPrint and renders a tiny report of the
same look (``report.warmup``) meanwhile. Both get the job at once: the PDF child lays the report
out while the charts are drawn and writes the PDF when they arrive (``handover``). One child
doing both imported ~1.3 s of libraries, rendered a generic page, then drew and laid out
the report cold, all in sequence, while the other core sat idle after the fetch.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from reports.errors import RenderError, RenderTimeoutError
from reports.execute import handover
from reports.execute.cachedirs import prepare_environment
from reports.execute.warmups import import_pdf, pdf_warm_up, warm_charts, warm_pdf
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


Warm = Callable[[], "Sequence[Callable[[], object]] | None"]
"""A warm-up: runs before the child says it is ready (imports); the steps it returns run after,
one by one, only while no job is waiting (a job is never delayed by more than one step) and the
machine has a core to spare (on a busy machine a step costs more CPU than it saves); the first
only if no job came within ``WARM_UP_GRACE_S``."""


def cores_busy() -> bool:
    """Whether the machine has no core to spare: a later warm-up step would then take CPU from
    the fetch and the charts (1-minute load at twice the cores or more)."""
    return os.getloadavg()[0] >= 2 * (os.cpu_count() or 1)


def no_warm_up() -> None:
    """No warm-up (the job pays for its imports)."""


WARM_UP_GRACE_S = 1.0
"""How long a warm child waits for its job before it starts a warm-up step. A fetch as quick as
the embedded demo API's ends about when the children are ready: a warm-up report begun then
delayed the job by its layout (~1 s at load; ``worker_start_s`` 0.60 -> 1.98 s in
``bench/oneshot.py``). A job not there a second later is behind a slower fetch, which the
warm-up report then has time to fit in."""


@dataclass(frozen=True)
class Adopted:
    """What the parent sends a child it started before it knew the report (``WarmWorker.
    unadopted``): the memory limit of the job to come and the warm-up steps for that report."""

    memory_mb: int
    warm: Warm


def _warm(conn: multiprocessing.connection.Connection, warm: Warm, busy: Callable[[], bool],
          *, say_ready: bool = True) -> None:
    """Run ``warm``, say "ready", then its later steps while no job waits (GC off meanwhile)."""
    gc.freeze()  # the parent's objects: never collected here
    gc.disable()  # imports and warm-up build live objects only (~10% of their CPU)
    try:
        steps: Sequence[Callable[[], object]] = ()
        with contextlib.suppress(Exception):  # the job itself will say what is wrong
            steps = warm() or ()
        if say_ready:
            conn.send("ready")
        ran = False
        handover.attach(conn)  # a step may stop early when the job arrives
        for step in steps:
            if conn.poll(0 if ran else WARM_UP_GRACE_S) or busy():
                break
            with contextlib.suppress(Exception):
                step()
            ran = True
    finally:
        handover.attach(None)
        gc.enable()
    if ran and not conn.poll(0):  # the warm-up report's garbage, not the job's memory
        gc.collect()


def _serve_one(conn: multiprocessing.connection.Connection, memory_mb: int | None, warm: Warm,
               busy: Callable[[], bool]) -> None:
    """Child side: warm up, say so, then run the one job under the limits (``memory_mb`` None:
    the parent sends them once it knows the report, ``Adopted``, with more warm-up steps)."""
    # Ctrl-C in the terminal reaches the whole process group: the parent handles it and ends
    # its children (here it would only print a traceback of an import under way)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _warm(conn, warm, busy)
        job = conn.recv()
        if isinstance(job, Adopted):
            memory_mb = job.memory_mb
            _warm(conn, job.warm, busy, say_ready=False)
            job = conn.recv()
        if job is None or memory_mb is None:  # done, or a job before its limits: never sent
            return
        _limit_self(memory_mb)
        func, args = job
        handover.attach(conn)  # the job may wait for more from us (the one-shot's charts)
        try:
            answer = _call(func, args)
        finally:
            handover.attach(None)
        conn.send(answer)
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
        self, *, timeout_s: float, memory_mb: int | None, warm: Warm = no_warm_up,
        busy: Callable[[], bool] = cores_busy,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.start_wait_s = 0.0
        self._deadline = 0.0
        self.conn, self.process = start_child(_start_context(), _serve_one, memory_mb, warm, busy)

    @classmethod
    def unadopted(cls, warm: Warm, busy: Callable[[], bool] = cores_busy) -> WarmWorker:
        """A child started before its limits are known: it runs ``warm`` (imports) now and
        takes no job until ``adopt`` gives it the limits."""
        return cls(timeout_s=0.0, memory_mb=None, warm=warm, busy=busy)

    @property
    def adopted(self) -> bool:
        """Whether the child has its limits (started with them, or ``adopt`` gave them)."""
        return self.memory_mb is not None

    def adopt(self, *, timeout_s: float, memory_mb: int, warm: Warm) -> bool:
        """Give an ``unadopted`` child its limits and the report's warm-up steps; False if it
        is gone (it then takes no job: start another)."""
        if self.conn.closed or self.process.exitcode is not None:
            return False
        try:
            self.conn.send(Adopted(memory_mb, warm))
        except OSError:
            return False
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        return True

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

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in the warm child; raises like ``run_limited``."""
        self.submit(func, *args)
        return self.result()  # type: ignore[no-any-return]

    def submit(self, func: Callable[..., Any], *args: Any, deadline: float | None = None
               ) -> None:
        """Hand ``func(*args)`` to the child once it is warm (waiting for that counts against
        the time limit, which ends at ``deadline`` if given); ``result`` waits for its answer."""
        if not self.adopted:
            raise RenderError("the render child was started early and never given its limits")
        t0 = time.perf_counter()
        self._deadline = t0 + self.timeout_s if deadline is None else deadline
        try:
            if not self.conn.poll(max(0.0, self._deadline - t0)):  # still warming up
                self._answer(("timeout", None))
            if self.conn.recv() != "ready":
                self._answer(("died", None))
            self.start_wait_s = time.perf_counter() - t0
            self.conn.send((func, args))
        except (EOFError, OSError):
            self._answer(("died", None))

    def tell(self, message: Any) -> None:
        """Send ``message`` to the job under way (``handover``); a child gone is not an error
        here: ``result`` says what happened to it."""
        with contextlib.suppress(OSError):
            self.conn.send(message)

    def result(self) -> Any:
        """The answer of the job ``submit`` handed over; raises like ``run_limited``."""
        try:
            if not self.conn.poll(max(0.0, self._deadline - time.perf_counter())):
                return self._answer(("timeout", None))
            return self._answer(self.conn.recv())
        except (EOFError, OSError):
            return self._answer(("died", None))

    def _answer(self, answer: tuple[str, Any]) -> Any:
        kind, payload = answer
        if kind == "timeout":
            self.kill()
            raise RenderTimeoutError(
                f"the render took longer than {self.timeout_s:g} s and was stopped"
            )
        if kind != "ok":
            self.process.join(_KILL_GRACE_S)
        return _result(kind, payload, self.process.exitcode, self.memory_mb or 0)

    def kill(self) -> None:
        """Kill the child's process group now."""
        self.conn.close()
        _kill_group(self.process)


def start_pdf_child() -> WarmWorker:
    """A PDF child started before the report is known (``cli.early``, as the process starts):
    it imports WeasyPrint and the render modules meanwhile, and ``OneShot(pdf=...)`` adopts it.
    """
    return WarmWorker.unadopted(import_pdf)


def by_readiness(workers: Sequence[WarmWorker], deadline: float) -> list[WarmWorker]:
    """``workers``, those that said "ready" (or are gone) first, else in the order given;
    waits until one of them has (or ``deadline``, a ``time.perf_counter()`` value). A job
    handed to a child that waits for another's imports would sit idle meanwhile."""
    gone = [w.conn for w in workers if w.conn.closed]  # killed: ``submit`` says so at once
    ready = gone or multiprocessing.connection.wait(
        [w.conn for w in workers], timeout=max(0.0, deadline - time.perf_counter()))
    return sorted(workers, key=lambda w: w.conn not in ready)


class OneShot:
    """Two warm children for one report: charts in one, HTML and PDF in the other, at once.

    ``render(job)`` hands the job to both (first to the one ready first: ``by_readiness``):
    the charts child draws, the PDF child analyses, renders the HTML and lays the report out
    around the charts' planned size meanwhile (``report.latecharts``); the parent forwards the
    charts, or the charts child's error, to the PDF child (``handover``), which then writes
    the PDF. It returns what ``render_report(job)`` would. One time limit covers both
    children. The timings are the PDF child's (its ``charts_s``: the wait for the charts), so
    that overlapped time counts once;
    ``charts_timings`` keeps the charts child's own. ``start_wait_s``: the rest of the render's
    wall time (waiting for the children to be ready, the hand-overs). ``charts_drawn`` is set
    once the charts child is done (or failed): work of the caller's that can wait (the ledger)
    then shares the cores with the PDF child only.
    """

    def __init__(self, *, timeout_s: float, memory_mb: int, warm_job: Any,
                 draw: Callable[[Any], Any] | None = None,
                 busy: Callable[[], bool] = cores_busy, pdf: WarmWorker | None = None) -> None:
        """``draw``: what the charts child runs on the job (``build.render_charts``, which
        returns a ``Charted``; module-level, so that it can be sent to the child). ``busy``:
        whether the children skip their later warm-up steps (``WarmWorker``). ``pdf``: a PDF
        child started earlier (``start_pdf_child``) to adopt, or None to start one now (also
        if it is gone)."""
        self.timeout_s = timeout_s
        self.draw = draw
        self.charts = WarmWorker(timeout_s=timeout_s, memory_mb=memory_mb,
                                 warm=functools.partial(warm_charts, warm_job.report.lang.code),
                                 busy=busy)
        try:
            if pdf is not None and pdf.adopt(timeout_s=timeout_s, memory_mb=memory_mb,
                                             warm=functools.partial(pdf_warm_up, warm_job)):
                self.pdf = pdf
            else:
                if pdf is not None:
                    pdf.close()
                self.pdf = WarmWorker(timeout_s=timeout_s, memory_mb=memory_mb,
                                      warm=functools.partial(warm_pdf, warm_job), busy=busy)
        except BaseException:
            self.charts.close()
            raise
        self.start_wait_s = 0.0
        self.charts_timings: dict[str, float] = {}
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
        """``render_report(job)`` across the two children (raises like ``run_limited``; a
        failed charts child's error first)."""
        from reports.report.build import render_charts

        t0 = time.perf_counter()
        deadline = t0 + self.timeout_s
        draw = self.draw or render_charts
        try:  # whatever happens, the caller waiting for the charts stops waiting
            charts_first = by_readiness([self.pdf, self.charts], deadline)[0] is self.charts
            if charts_first:  # it draws while the PDF child finishes its imports
                self.charts.submit(draw, job, deadline=deadline)
            try:
                self.pdf.submit(handover.render_awaiting_charts, job, deadline=deadline)
            except BaseException:
                self.charts.kill()
                raise
            try:
                if not charts_first:
                    self.charts.submit(draw, job, deadline=deadline)
                charted = self.charts.result()
            except BaseException as exc:
                self.pdf.tell(handover.failed(exc))  # it stops waiting, with this error
                self.pdf.kill()
                raise
        finally:
            self.charts_drawn.set()
        self.pdf.tell(handover.charts(charted.charts))
        self.charts.close()  # done: its memory goes back before the PDF is written
        self.charts_timings = dict(charted.timings)
        rendered = self.pdf.result()
        spent = time.perf_counter() - t0
        self.start_wait_s = max(0.0, spent - sum(rendered.timings.values()))
        return rendered
