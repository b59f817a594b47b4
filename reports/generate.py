"""``generate`` for one report: collect, render and archive; nothing is mailed.

The stages are ``reports.run``'s (collect, the limited render, the archive); this module owns
their order for ``generate`` and the ``--json`` timings, which add up to ``total_s``: laps
charged in turn (``reports.timeline``), the render lap split into the render child's own stages
and ``worker_start_s`` (its start and the hand-over), and ``startup_s`` for the interpreter and
imports before the command ran.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.config import Config, ReportConfig
from reports.errors import UsageError
from reports.progress import StageProgress
from reports.report.build import RenderJob
from reports.report.periods import Clock, Period
from reports.run import (
    RENDER_STAGE,
    Window,
    _archive_pdf,
    _generated_on,
    _lease_wait_s,
    _recorded,
    _render_limited,
    collect_data,
    data_hash,
    open_ledger,
    resolve_period,
)


@dataclass(frozen=True)
class GenerateResult:
    """What ``generate`` made for one report."""

    report: str
    pdf: Path | str
    """The --out copy, the archived file, or an s3:// URL."""
    pages: int
    bytes: int
    period: Period
    requests: int
    timings: dict[str, float]
    sha256: str

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "report": self.report,
            "pdf": str(self.pdf),
            "pages": self.pages,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "requests": self.requests,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }



def generate_one(
    config: Config,
    report: ReportConfig,
    window: Window,
    *,
    out: Path | None = None,
    html_out: Path | None = None,
    clock: Clock,
    env: Mapping[str, str],
    progress: bool = False,
    pool: Any = None,
    ledger: Any = None,
) -> GenerateResult:
    """Collect, render and archive one report; mail nothing.

    A batch passes what it shares: ``pool`` (a started ``WorkerPool``) and ``ledger`` (an open
    ``Ledger``, left open); without them this run starts and closes its own.
    """
    from reports.state.runs import RunState
    from reports.timeline import Laps, process_age_s

    laps, startup_s = Laps(), process_age_s() if pool is None else None
    own = None
    if pool is None:  # one report: one render child, forked now and warmed while we fetch
        from reports.execute.oneshot import WarmWorker

        own = pool = WarmWorker(timeout_s=config.render.timeout_s,
                                memory_mb=config.render.memory_mb)
        laps.lap("worker_start_s")
    period = resolve_period(report, window, clock)
    with nullcontext(ledger) if ledger is not None else open_ledger(config) as ledger, \
            own if own is not None else nullcontext():
        run_id = ledger.start_run(report.name, report.org, period,
                                  wait_s=_lease_wait_s(config))
        with _recorded(ledger, run_id), StageProgress(progress) as bar:
            laps.lap("ledger_s")
            data = asyncio.run(collect_data(config, report, period, env, bar.update))
            laps.lap("fetch_s")
            digest = data_hash(data)
            ledger.transition(run_id, RunState.RENDERING, data_hash=digest)
            bar.update(RENDER_STAGE, 0, 1)
            laps.lap("ledger_s")
            rendered = _render_limited(
                config,
                RenderJob(report, data, config.templates.dir, _generated_on(report, clock),
                          want_html=html_out is not None),
                pool,
            )
            # the render child's own stages; the rest is its start, the hand-over and the exit
            laps.laps["worker_start_s"] = laps.laps.get("worker_start_s", 0.0) + (
                laps.lap("render") - sum(rendered.timings.values()))
            bar.update(RENDER_STAGE, 1, 1)
            path = _archive_pdf(config, ledger, report, period, rendered.pdf, digest)
            ledger.transition(run_id, RunState.ARCHIVED, detail=str(path))
            if out is not None:
                _write_copy(out, rendered.pdf)
            if html_out is not None and rendered.html is not None:
                _write_copy(html_out, rendered.html.encode("utf-8"))
            ledger.transition(run_id, RunState.DONE, detail="generated (not mailed)")
    laps.lap("archive_s")
    timings = {**{k: v for k, v in laps.laps.items() if k != "render"}, **rendered.timings}
    timings["total_s"] = laps.total() + (startup_s or 0.0)
    if startup_s is not None:  # the interpreter, imports and config before this function
        timings["startup_s"] = startup_s
    return GenerateResult(
        report=report.name, pdf=out or path, pages=rendered.pages, bytes=len(rendered.pdf),
        period=period, requests=data.requests, timings=timings,
        sha256=hashlib.sha256(rendered.pdf).hexdigest(),
    )


def _write_copy(path: Path, data: bytes) -> None:
    """``--out`` / ``--html``: written atomically; a failure names the file."""
    from reports.atomic import write_atomic

    try:
        write_atomic(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
