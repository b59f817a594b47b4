"""The render worker: run one render in a child process with a time and a memory limit.

A render (charts, HTML, PDF) runs in a child forked from a ``forkserver`` that has already
imported WeasyPrint and matplotlib, so each child starts in milliseconds and no render can take
the scheduler down with it. The child lowers its own ``RLIMIT_AS`` to ``memory_mb`` and becomes a
process-group leader; on timeout the parent kills the whole group.

    run_limited(func, *args, timeout_s=..., memory_mb=...)  -> result, or
        RenderTimeoutError   the child ran past timeout_s and was killed
        RenderMemoryError    MemoryError in the child, or it was killed (SIGKILL/SIGABRT)
        RenderError          any other exception in the child (its first line), or a crash

``render_many`` runs a batch on a few workers; one failure does not stop the others.
``WorkerPool`` keeps warm workers for a batch of reports, with the same limits and errors.

Garbage collection: a job runs with the cyclic GC paused (``reports.report.gcpause``); a one-shot
child exits right after it, a pool worker collects after sending its answer, while it waits.

Caches: ``_context`` calls ``reports.execute.cachedirs.prepare_environment`` before the fork
server starts, so matplotlib and fontconfig keep their caches even when ``$HOME`` is not writable.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any, Generic, NoReturn, TypeVar

from reports.errors import RenderError, RenderMemoryError, RenderTimeoutError
from reports.execute.cachedirs import prepare_environment
from reports.report import gcpause

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

PRELOAD = ("reports.execute.preload",)
"""Modules the fork server imports once, so every render child starts warm: the render modules
and what a first render would import or look up (``reports.execute.preload``)."""

_KILL_GRACE_S = 5.0


@functools.cache
def _context() -> BaseContext:
    prepare_environment()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def start_in_background() -> None:
    """Start the fork server now, in a thread, so its imports (~1.5 s) overlap the fetch."""
    from multiprocessing import forkserver

    _context()
    threading.Thread(
        target=forkserver.ensure_running, name="forkserver-start", daemon=True
    ).start()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _call(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    """Run ``func(*args)`` with the cyclic GC paused: ("ok", result) or (kind, one-line message)."""
    try:
        with gcpause.paused():
            return "ok", func(*args)
    except MemoryError:
        return "memory", "ran out of memory"
    except RenderError as exc:
        return "error", exc.message.splitlines()[0] if exc.message else "render failed"
    except BaseException as exc:  # everything crosses the process boundary as one line
        return "error", f"{type(exc).__name__}: {_first_line(exc)}"


def _limit_self(memory_mb: int) -> None:
    import resource

    os.setpgrp()  # our own group, so a timeout kills anything we start too
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(
    conn: multiprocessing.connection.Connection,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    memory_mb: int,
) -> None:
    """Child side: limit memory, run, send back ("ok", result) or (kind, message)."""
    _limit_self(memory_mb)
    try:
        conn.send(_call(func, args))
    finally:
        conn.close()


def _serve(conn: multiprocessing.connection.Connection, memory_mb: int) -> None:
    """Pool worker side: limit memory once, then run jobs until told to stop (``None``)."""
    _limit_self(memory_mb)
    try:
        while (job := conn.recv()) is not None:
            func, args = job
            answer = _call(func, args)
            conn.send(answer)
            if answer[0] == "memory":
                return  # the heap may be in a bad state: the parent starts a new worker
            gcpause.settle()  # the job ran with the GC paused: collect now, while idle
    except EOFError:
        pass
    finally:
        conn.close()


def start_child(
    context: BaseContext, target: Callable[..., None], *args: Any
) -> tuple[multiprocessing.connection.Connection, multiprocessing.process.BaseProcess]:
    """Start ``target(child_end, *args)`` in a daemon child; our end of a duplex pipe and the
    child. A child that cannot be started is a ``RenderError`` (e.g. the fork server died)."""
    conn, child_end = context.Pipe(duplex=True)
    process = context.Process(  # type: ignore[attr-defined]
        target=target, args=(child_end, *args), daemon=True
    )
    try:
        process.start()
    except OSError as exc:
        conn.close()
        raise RenderError(f"the render worker could not be started: {exc}") from exc
    finally:
        child_end.close()
    return conn, process


def _kill_group(process: multiprocessing.process.BaseProcess) -> None:
    pid = process.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.join(_KILL_GRACE_S)


def run_limited(
    func: Callable[..., T], *args: Any, timeout_s: float, memory_mb: int
) -> T:
    """Run ``func(*args)`` in a child limited to ``timeout_s`` seconds and ``memory_mb`` MiB.

    ``func``, ``args`` and the result must be picklable (module-level functions, plain data).
    As with any non-fork start method, the program's main module must guard its entry point
    with ``if __name__ == "__main__":`` (console scripts and ``python -m`` modules do).
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(  # type: ignore[attr-defined]
        target=_child, args=(sender, func, args, memory_mb), daemon=True
    )
    deadline = time.monotonic() + timeout_s
    try:
        process.start()
    except OSError as exc:  # e.g. the fork server died; the caller gets one of ours
        receiver.close()
        raise RenderError(f"the render worker could not be started: {exc}") from exc
    finally:
        sender.close()
    try:
        if not receiver.poll(max(0.0, deadline - time.monotonic())):
            _kill_group(process)
            raise RenderTimeoutError(
                f"the render took longer than {timeout_s:g} s and was stopped"
            )
        try:
            kind, payload = receiver.recv()
        except EOFError:
            kind, payload = "died", None
        process.join(_KILL_GRACE_S)
    finally:
        receiver.close()
        if process.is_alive():
            _kill_group(process)
    return _result(kind, payload, process.exitcode, memory_mb)  # type: ignore[no-any-return]


def _result(kind: str, payload: Any, exitcode: int | None, memory_mb: int) -> Any:
    """The child's answer as a value, or the RenderError that says what went wrong."""
    if kind == "ok":
        return payload
    if kind == "memory":
        raise RenderMemoryError(
            f"the render ran out of memory (limit {memory_mb} MiB) and was stopped"
        )
    if kind == "error":
        raise RenderError(f"the render failed: {payload}")
    _raise_for_exit(exitcode, memory_mb)


def _raise_for_exit(exitcode: int | None, memory_mb: int) -> NoReturn:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if -exitcode in (signal.SIGKILL, signal.SIGABRT):
            raise RenderMemoryError(
                f"the render worker was killed by {name}, most likely out of memory "
                f"(limit {memory_mb} MiB)"
            )
        raise RenderError(f"the render worker crashed with {name}")
    raise RenderError(f"the render worker exited with code {exitcode} without a result")


@dataclass(frozen=True)
class Outcome(Generic[I, T]):
    """The result of one item of a batch: ``value`` or ``error``."""

    item: I
    value: T | None = None
    error: RenderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _PoolWorker:
    """One long-lived worker process and the parent's end of its pipe."""

    def __init__(self, context: BaseContext, memory_mb: int) -> None:
        self.conn, self.process = start_child(context, _serve, memory_mb)
        self.jobs = 0

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout_s: float) -> Any:
        """("ok"|"memory"|"error", payload), ("timeout", None) or ("died", None)."""
        self.jobs += 1
        try:
            self.conn.send((func, args))
            if not self.conn.poll(timeout_s):
                return "timeout", None
            return self.conn.recv()
        except (EOFError, OSError):
            return "died", None

    def stop(self) -> None:
        """Ask the worker to finish; kill its group if it does not."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(_KILL_GRACE_S)
        self.conn.close()
        if self.process.is_alive():
            _kill_group(self.process)

    def kill(self) -> None:
        self.conn.close()
        _kill_group(self.process)


class WorkerPool:
    """Render workers reused across jobs (``generate --all``), limited like ``run_limited``.

    Each worker lowers its own ``RLIMIT_AS`` once and runs one job at a time; a job that runs
    past ``timeout_s`` gets its worker's process group killed, a worker that ran out of memory or
    died is replaced, and a worker retires after ``max_jobs`` jobs (bounding any slow leak).
    Reusing warm workers saves the first-render cost (~0.3 s: fonts, caches, lazy imports) of
    every report after the first per worker. Thread-safe: call ``run`` from several threads;
    with ``size`` they may outnumber the workers (a batch fetches ahead while they render).
    """

    def __init__(
        self, *, timeout_s: float, memory_mb: int, max_jobs: int = 100, size: int = 0
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_jobs = max_jobs
        self.size = size
        """At most this many workers at once (0: one per caller); more callers wait their turn."""
        self._idle: list[_PoolWorker] = []
        self._live = 0
        self._turn = threading.Condition()
        self._closed = False

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every idle worker (busy ones stop when their job returns)."""
        with self._turn:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            self._gone(worker.stop)

    def _take(self) -> _PoolWorker:
        """An idle worker, a new one while fewer than ``size`` live, or wait for one."""
        with self._turn:
            self._turn.wait_for(lambda: self._idle or not self.size or self._live < self.size)
            if self._idle:
                return self._idle.pop()
            self._live += 1
        try:
            return _PoolWorker(_context(), self.memory_mb)
        except BaseException:
            self._gone()
            raise

    def prestart(self) -> None:
        """Start the ``size`` workers now, one after the other in a thread of their own, so that
        they are ready once the fork server is, not when the first jobs come."""
        def start() -> None:
            while True:
                with self._turn:
                    if self._closed or self._live >= self.size:
                        return
                    self._live += 1
                try:
                    worker = _PoolWorker(_context(), self.memory_mb)
                except RenderError:
                    return self._gone()  # a job that comes will say why
                self._give_back(worker)

        threading.Thread(target=start, name="pool-prestart", daemon=True).start()

    def _gone(self, end: Callable[[], None] | None = None) -> None:
        """A worker ended (by ``end``, if given): its place goes to the next caller waiting."""
        try:
            if end is not None:
                end()
        finally:
            with self._turn:
                self._live -= 1
                self._turn.notify()

    def _give_back(self, worker: _PoolWorker) -> None:
        with self._turn:
            if not self._closed and worker.jobs < self.max_jobs:
                self._idle.append(worker)
                self._turn.notify()
                return
        self._gone(worker.stop)

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a warm worker; raises like ``run_limited``."""
        worker = self._take()
        kind, payload = worker.call(func, args, self.timeout_s)
        if kind in ("ok", "error"):
            self._give_back(worker)
        elif kind == "timeout":
            self._gone(worker.kill)
            raise RenderTimeoutError(
                f"the render took longer than {self.timeout_s:g} s and was stopped"
            )
        else:  # "memory" (the worker exits by itself) or "died"
            worker.process.join(_KILL_GRACE_S)
            self._gone(worker.kill)
        return _result(  # type: ignore[no-any-return]
            kind, payload, worker.process.exitcode, self.memory_mb
        )


def default_workers() -> int:
    """One worker per core (``[render] workers = 0``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def render_many(
    func: Callable[[I], T],
    items: Iterable[I],
    *,
    workers: int,
    timeout_s: float,
    memory_mb: int,
) -> list[Outcome[I, T]]:
    """Run ``func(item)`` for every item, ``workers`` children at a time, in input order."""
    batch: Sequence[I] = list(items)

    def one(item: I) -> Outcome[I, T]:
        try:
            value = run_limited(func, item, timeout_s=timeout_s, memory_mb=memory_mb)
        except RenderError as exc:
            return Outcome(item, error=exc)
        return Outcome(item, value=value)

    if not batch:
        return []
    with ThreadPoolExecutor(max_workers=max(1, workers or default_workers())) as pool:
        return list(pool.map(one, batch))
