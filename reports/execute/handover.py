"""The one-shot's charts hand-over: the PDF child's job waits for the charts its parent forwards.

The parent (``oneshot.OneShot.render``) gives both children the job at once: the charts child
draws (``build.render_charts``), the PDF child runs ``render_awaiting_charts``, which lays the
report out meanwhile (``report.latecharts``) and then waits for a message on its connection to
the parent: ``charts(...)`` once the charts child is done, or ``failed(...)`` with the charts
child's error (it failed, died, or ran out of time or memory), which the PDF child raises.
Nothing hangs: a parent that dies closes the connection (``EOFError``), and the parent's time
limit covers both children, which it kills as a group when it is past.
"""

from __future__ import annotations

import multiprocessing.connection
from collections.abc import Sequence
from typing import Any

from reports.errors import RenderError

_parent: multiprocessing.connection.Connection | None = None
"""In a one-shot child, while it warms up or runs its job: the connection to the parent
(``attach``)."""

CHARTS = "charts"
FAILED = "failed"


def attach(conn: multiprocessing.connection.Connection | None) -> None:
    """Child side: the connection to the parent, for a warm-up that checks whether the job
    waits, or a job that receives more (None: neither is under way)."""
    global _parent
    _parent = conn


def job_waiting() -> bool:
    """Child side, while warming up: whether the parent has sent something (the job)."""
    return _parent is not None and _parent.poll(0)


def charts(drawn: Sequence[Any]) -> tuple[str, Any]:
    """The message that carries the drawn charts."""
    return CHARTS, tuple(drawn)


def failed(error: BaseException) -> tuple[str, Any]:
    """The message that says the charts will not come, and why."""
    return FAILED, str(error) or type(error).__name__


def charts_from_parent() -> tuple[Any, ...]:
    """Wait for the charts (raises the charts child's error, or if the parent is gone)."""
    if _parent is None:
        raise RenderError("no charts can arrive: this job has no parent to send them")
    try:
        kind, payload = _parent.recv()
    except (EOFError, OSError) as exc:
        raise RenderError("the charts never arrived: the parent process is gone") from exc
    if kind != CHARTS:
        raise RenderError(f"the charts could not be drawn: {payload}")
    return payload  # type: ignore[no-any-return]


def render_awaiting_charts(job: Any) -> Any:
    """``render_report(job)`` with the charts drawn by the other child meanwhile."""
    from reports.report.build import render_report

    return render_report(job, charts_later=charts_from_parent)
