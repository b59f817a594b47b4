"""Render in this process, with a time limit: what a Celery pool child does.

A prefork pool child is a daemonic process: it may not start children of its own ("daemonic
processes are not allowed to have children", celery#1709), so the render worker of
``reports.execute.worker`` cannot be used there. The child itself is the limited process:
its ``RLIMIT_AS`` is set once when it starts (``celery_app``'s ``worker_process_init``), Celery's
soft/hard time limits bound the whole task, and ``InProcessRenderer`` bounds the render with an
interval timer (``SIGALRM``, main thread only). It has the ``run(func, job)`` shape of
``WorkerPool`` so ``send.send_report`` takes either, and raises the same errors:

    RenderTimeoutError   the render ran past timeout_s
    RenderMemoryError    MemoryError (the address-space limit was hit)
    RenderError          any other exception, as one line
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

from reports.errors import RenderError, RenderMemoryError, RenderTimeoutError
from reports.report import gcpause

T = TypeVar("T")


class _Expired(BaseException):
    """Raised by the timer inside the render (a BaseException, so no library swallows it)."""


class InProcessRenderer:
    """``run(func, *args)`` here, at most ``timeout_s`` seconds, with the cyclic GC paused."""

    def __init__(self, *, timeout_s: float, memory_mb: int) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` or the RenderError that says what went wrong."""
        timed = threading.current_thread() is threading.main_thread()

        def expire(_signum: int, _frame: FrameType | None) -> None:
            raise _Expired

        previous: Any = None
        if timed:
            previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
        try:
            with gcpause.paused():
                return func(*args)
        except _Expired:
            raise RenderTimeoutError(
                f"the render took longer than {self.timeout_s:g} s and was stopped"
            ) from None
        except MemoryError:
            raise RenderMemoryError(
                f"the render ran out of memory (limit {self.memory_mb} MiB)"
            ) from None
        except RenderError:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
            raise RenderError(line) from exc
        finally:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            gcpause.settle()
