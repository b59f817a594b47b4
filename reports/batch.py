"""``generate`` for many reports (``--all``): one failure never stops the others.

The batch shares what a report run would otherwise set up for itself: one ledger engine, one
fork server (which imports and looks up once what every render needs, ``execute.preload``) and
a pool of one warm render worker per core. Each report runs in a thread of its own, more of them
than workers: while the workers render, the next reports fetch in this process and wait their
turn for a worker, and the last ones archive, so the workers never wait for a fetch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports.config import Config, ReportConfig
from reports.errors import ReportsError
from reports.report.periods import Clock
from reports.run import GenerateResult, Window, generate_one, open_ledger

if TYPE_CHECKING:
    from reports.execute.oneshot import WarmWorker

FETCH_AHEAD = 2
"""Reports per render worker fetched (or being fetched) ahead of the renders."""


@dataclass(frozen=True)
class Outcome:
    """One report of a ``generate`` call: a result or an error."""

    report: str
    result: GenerateResult | None = None
    error: str | None = None
    exit_code: int = 0

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object of this report."""
        if self.result is not None:
            return self.result.as_json()
        return {"report": self.report, "error": self.error}


def generate_many(
    config: Config,
    reports: Sequence[ReportConfig],
    window: Window,
    *,
    out: Path | None = None,
    html_out: Path | None = None,
    clock: Clock,
    env: Mapping[str, str],
    progress: bool = False,
    pdf_child: WarmWorker | None = None,
) -> list[Outcome]:
    """``generate`` for one or many reports; one failure never stops the others. ``pdf_child``:
    a one-shot's PDF child started early (``cli.early``), for one report only."""

    def one(report: ReportConfig, **options: Any) -> Outcome:
        try:
            return Outcome(report.name, result=generate_one(
                config, report, window, clock=clock, env=env, **options,
            ))
        except ReportsError as exc:
            return Outcome(report.name, error=str(exc), exit_code=exc.exit_code)

    if len(reports) == 1:
        return [one(reports[0], out=out, html_out=html_out, progress=progress,
                    pdf_child=pdf_child)]
    if pdf_child is not None:  # a batch renders in its pool
        pdf_child.close()
    from concurrent.futures import ThreadPoolExecutor

    from reports.execute.worker import WorkerPool, default_workers, start_in_background

    start_in_background()  # once for the batch, while the first reports fetch
    try:
        ledger = open_ledger(config)  # one engine (and connection pool) for the whole batch
    except ReportsError as exc:  # as when each report opened it: every report says why
        return [Outcome(r.name, error=str(exc), exit_code=exc.exit_code) for r in reports]
    workers = config.render.workers or default_workers()
    # Warm render workers reused across reports: only each worker's first render pays for
    # fonts, caches and lazy imports (bench/batch.py). More reports are under way than there
    # are workers: the next ones fetch (in this process) while the workers render, and wait
    # their turn for a worker, so no worker idles through a fetch or an archive.
    renderers = WorkerPool(timeout_s=config.render.timeout_s,
                           memory_mb=config.render.memory_mb, size=workers)
    renderers.prestart()  # ready when the fork server is, before the first data is in
    under_way = min(len(reports), workers * (1 + FETCH_AHEAD))

    with ledger, renderers, ThreadPoolExecutor(max_workers=under_way) as threads:
        return list(threads.map(
            lambda report: one(report, pool=renderers, ledger=ledger), reports
        ))
