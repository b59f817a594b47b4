"""One render worker for one report (``generate --report``), forked early and warmed meanwhile.

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
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import multiprocessing.connection
import threading
import time
from collections.abc import Callable
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from reports.errors import RenderError, RenderTimeoutError
from reports.execute.worker import (
    _KILL_GRACE_S,
    PRELOAD,
    _call,
    _context,
    _kill_group,
    _limit_self,
    _result,
    prepare_environment,
)

T = TypeVar("T")


def warm_up() -> None:
    """Import the render modules and pay the first-use costs: fonts, a chart, a page."""
    for name in PRELOAD:
        importlib.import_module(name)
    import io

    import matplotlib.pyplot as plt
    import weasyprint

    from reports.report.pdf import _font_config

    figure, axes = plt.subplots(figsize=(2, 1))
    axes.bar([0, 1], [1, 2])
    axes.set_title("warm")
    figure.savefig(io.BytesIO(), format="png")
    plt.close(figure)
    weasyprint.HTML(string="<p style='font-family: sans-serif'>warm <b>up</b></p>").write_pdf(
        font_config=_font_config()
    )


def _serve_one(
    conn: multiprocessing.connection.Connection, memory_mb: int, warm: Callable[[], None]
) -> None:
    """Child side: warm up, say so, then run the one job under the limits."""
    try:
        with contextlib.suppress(Exception):  # the job itself will say what is wrong
            warm()
        conn.send("ready")
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
        self, *, timeout_s: float, memory_mb: int, warm: Callable[[], None] = warm_up
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.start_wait_s = 0.0
        context = _start_context()
        self.conn, child_end = context.Pipe(duplex=True)
        self.process = context.Process(  # type: ignore[attr-defined]
            target=_serve_one, args=(child_end, memory_mb, warm), daemon=True
        )
        try:
            self.process.start()
        except OSError as exc:
            self.conn.close()
            raise RenderError(f"the render worker could not be started: {exc}") from exc
        finally:
            child_end.close()

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
