"""One report run, top to bottom.

    period -> collect (API) -> analyse -> charts -> HTML -> PDF   [render worker, limited]
           -> archive (atomic, hashed) -> mail (one message per recipient, via the ledger)

``generate`` stops after the archive; ``send`` goes on to deliver, exactly once per recipient.
Every stage transition is written to the ledger (runs + run_events); a failure at any stage marks
the run failed and leaves nothing half-done: no PDF is archived from partial data and no mail is
sent for a run that did not archive.

The stages live in their packages (``source.collect``, ``report.build`` run by an
``execute.worker``, ``delivery.archive``, ``delivery.messages`` and ``delivery.mailer``); many
reports at once (``generate --all``) is ``reports.batch``; history and archive listings are
``reports.views``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports.atomic import write_copies
from reports.config import Config, ReportConfig
from reports.errors import ReportsError
from reports.gate import PROVISIONAL, fetch_judged, notice_for, verdict_line
from reports.progress import StageProgress
from reports.report.build import Rendered, RenderJob, render_report
from reports.report.datahash import data_hash
from reports.report.freshness import Verdict
from reports.report.gcpause import lifelong, paused
from reports.report.model import ReportData
from reports.report.periods import Clock, Period, custom, for_kind, today
from reports.report.privacy import PSEUDONYMOUS, Policy, policy_for

if TYPE_CHECKING:
    from reports.execute.oneshot import WarmWorker

RENDER_STAGE = "charts, HTML and PDF"


@dataclass(frozen=True)
class Window:
    """How the user chose the period: ``--as-of`` or ``--start/--end`` (or neither: today)."""

    as_of: date | None = None
    start: date | None = None
    end: date | None = None


def adhoc_report(org: str, period: str) -> ReportConfig:
    """A report for ``generate --org ORG --period P`` that is not in config.toml."""
    return ReportConfig.model_validate(
        {"name": f"{org}-{period}", "org": org, "period": period, "schedule": "0 7 * * 1"}
    )


def resolve_period(report: ReportConfig, window: Window, clock: Clock) -> Period:
    """The period a run covers, in the report's time zone."""
    if window.start is not None and window.end is not None:
        return custom(window.start, window.end)
    as_of = window.as_of or today(clock, report.timezone)
    return for_kind(report.period, as_of)


# ---------------------------------------------------------------- collect


async def collect_data(
    config: Config,
    report: ReportConfig,
    period: Period,
    env: Mapping[str, str],
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ReportData:
    """Fetch everything the report needs (never partial: any failure raises)."""
    from reports.source.client import client_from_config
    from reports.source.collect import collect

    async with client_from_config(config.api, env) as client:
        return await collect(
            client, report.org, period, page_size=config.api.page_size, on_progress=on_progress
        )


# ---------------------------------------------------------------- generate


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
    gate: Verdict = field(default_factory=Verdict)
    """The freshness gate's verdict: when it failed, the PDF is marked provisional."""
    overlapped: dict[str, float] = field(default_factory=dict)
    """Work beside the ``timings`` stages, not in their sum (one report's charts child)."""

    def gate_line(self) -> str | None:
        """The gate's verdict for stderr when a rule failed (None when the data is complete)."""
        return None if self.gate.ok else verdict_line(self.report, self.period, self.gate)

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
            "gate": {"ok": self.gate.ok, "failed": self.gate.as_json()["failed"]},
            "overlapped": {k: round(v, 4) for k, v in self.overlapped.items()},
        }


@contextmanager
def recorded(ledger: Any, run_id: int) -> Iterator[None]:
    """Any failure inside marks the run failed in the ledger (with its one-line error).

    The run's lease is renewed by a heartbeat meanwhile; a run another attempt took over (its
    lease ran out) is left to that attempt.
    """
    from reports.errors import StateError
    from reports.state.runs import RunState

    def failed(error: str) -> None:
        # A StateError here: no longer ours, the attempt that took it over records its outcome.
        with contextlib.suppress(StateError):
            ledger.transition(run_id, RunState.FAILED, error=error)

    with ledger.leased(run_id):
        try:
            yield
        except ReportsError as exc:
            failed(str(exc))
            raise
        except BaseException as exc:
            failed(f"interrupted: {exc!r}"[:500])
            raise


def open_ledger(config: Config) -> Any:
    """The ledger of ``[state]``, for one run (a ``with`` block).

    PostgreSQL: on this process's engine (``process_engine``: one connection pool per process,
    made after a fork), which stays open for the next run. SQLite: an engine of its own.
    """
    url, stuck, lease = config.state.url, config.state.stuck_after_s, config.state.lease
    # SQLAlchemy's import, the first time: objects for the life of the process, frozen (only
    # paused, the next collection would walk all of them: ~10 ms in a one-shot's parent).
    with lifelong() if "reports.state.ledger" not in sys.modules else nullcontext():
        from reports.state.engine import process_engine
        from reports.state.ledger import Ledger
    with paused():  # a new database's schema: live objects only
        engine = None if url.startswith("sqlite") else process_engine(url)
        return Ledger(url, stuck_after_s=stuck, lease_s=lease, engine=engine)


def lease_wait_s(config: Config) -> float:
    """How long a run waits for another attempt's lease: long enough for a dead one's to end."""
    return 2 * config.state.lease + 1


def render_limited(config: Config, job: RenderJob, pool: Any = None) -> Rendered:
    """Render in a limited child: a warm ``WorkerPool`` worker if given, else a fresh one."""
    if pool is not None:
        return pool.run(render_report, job)  # type: ignore[no-any-return]
    from reports.execute.worker import run_limited

    return run_limited(
        render_report, job, timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb
    )


def generated_on(report: ReportConfig, clock: Clock) -> date:
    """The report's today, printed as the generation date."""
    return today(clock, report.timezone)


def report_policy(config: Config, report: ReportConfig, env: Mapping[str, str]) -> Policy:
    """The report's learner privacy; the pseudonym key is loaded only when it is needed."""
    policy = policy_for(config.privacy, report)
    if policy.learners != PSEUDONYMOUS:
        return policy
    from reports.state.pseudonym_key import load_key

    return policy_for(config.privacy, report, load_key(config, env))


def render_key_of(config: Config, report: ReportConfig, policy: Policy, digest: str) -> str:
    """The render key of a report's PDF (data, config, templates, pseudonym key, version)."""
    from reports.delivery.renderkey import render_key
    from reports.state.pseudonym_key import fingerprint

    return render_key(
        data_hash=digest, report=report, privacy=config.privacy,
        templates_dir=config.templates.dir,
        key_fingerprint=fingerprint(policy.key) if policy.key else "",
    )


def archive_pdf(
    config: Config, ledger: Any, report: ReportConfig, period: Period, rendered: Rendered,
    digest: str, edition: str = "final", key: str | None = None, *, run_id: int | None = None,
) -> str:
    """Write the PDF and its HTML to the archive (a provisional one beside the final) and index
    them as the period's current one (made by ``run_id``); an earlier PDF of another render
    ``key`` stays as history."""
    from reports.delivery.archive import open_archive

    files = ledger.archive_files(report.name, period, edition)
    same = next((f for f in files if key and f.render_key == key), None)
    reuse_plain = same is not None and not same.path.endswith(f".{(key or '')[:12]}.pdf")
    variant = None if not files or reuse_plain or not key else key[:12]
    archived = open_archive(config.archive).write(
        report.org, report.name, period, rendered.pdf, edition, variant=variant,
        html=rendered.html.encode("utf-8"))
    ledger.record_archive(
        report.name, report.org, period, path=archived.location, sha256=archived.sha256,
        size=archived.size, data_hash=digest, edition=edition, render_key=key,
        html=archived.html, run_id=run_id,
    )
    return archived.location


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
    pdf_child: WarmWorker | None = None,
) -> GenerateResult:
    """Collect, render and archive one report; mail nothing.

    The run is recorded in the ledger once the data is in (a failed fetch is recorded as a
    failed run): the ledger's writes then overlap the render instead of delaying the fetch.
    A batch passes what it shares: ``pool`` (a started ``WorkerPool``) and ``ledger`` (an open
    ``Ledger``, left open); without them this run starts and closes its own. ``pdf_child``: the
    one-shot's PDF child, if it was started earlier (``execute.oneshot.start_pdf_child``).
    """
    from concurrent.futures import ThreadPoolExecutor

    from reports.timeline import Laps, process_age_s

    laps, startup_s = Laps(), process_age_s() if pool is None else None
    own: Any = None
    if pool is None:  # one report: two render children, forked first and warmed while we fetch
        from reports.execute.oneshot import OneShot
        from reports.report.warmup import warm_job

        # Imports build live objects only: collecting meanwhile is wasted CPU, and so is the
        # collection that would walk all of them once the collector is back (~80 ms, just as
        # the fetch begins): they are frozen instead. Once per process: the one-shot.
        with lifelong():
            if config.api.base_url == "embedded":  # the demo API (source.client.EMBEDDED)
                import numpy  # noqa: F401  (its dataset needs it, as the charts child does)
            own = OneShot(timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb,
                          warm_job=warm_job(report, config.templates.dir,
                                            policy_for(config.privacy, report)),
                          pdf=pdf_child)
            laps.lap("worker_start_s")
            _import_fetch(config)
        laps.lap("fetch_s")
    period = resolve_period(report, window, clock)
    with own if own is not None else nullcontext(), StageProgress(progress) as bar:
        with _failure_recorded(config, ledger, report, period):
            data, verdict = fetch_judged(
                config, report, period, env, day=today(clock, report.timezone),
                on_progress=bar.update)
            marked = None if verdict.ok else PROVISIONAL  # generate never holds: it marks
            policy = report_policy(config, report, env)
        laps.lap("fetch_s")
        bar.update(RENDER_STAGE, 0, 1)
        job = RenderJob(report, data, config.templates.dir, generated_on(report, clock),
                        notice=notice_for(verdict, report), policy=policy)
        # The render runs in the children while this thread writes the ledger, once the charts
        # are drawn (and waits for the render before leaving, whatever happens).
        with ThreadPoolExecutor(1, thread_name_prefix="render") as background:
            rendering = background.submit(_timed_render, config, job, own, pool)
            digest = data_hash(data)
            if own is not None:
                own.charts_drawn.wait()
            with nullcontext(ledger) if ledger is not None else open_ledger(config) as ledger:
                from reports.state.runs import RunState

                run_id = ledger.start_run(report.name, report.org, period,
                                          wait_s=lease_wait_s(config))
                with recorded(ledger, run_id):
                    ledger.transition(run_id, RunState.RENDERING, data_hash=digest,
                                      edition=marked,
                                      gate=json.dumps(verdict.as_json(), sort_keys=True))
                    # What the archive needs of this process, while the PDF child works.
                    key = render_key_of(config, report, policy, digest)
                    import reports.delivery.archive  # noqa: F401
                    laps.lap("ledger_s")
                    rendered, render_s = rendering.result()
                    laps.charge_render(render_s, rendered.timings)
                    bar.update(RENDER_STAGE, 1, 1)
                    path = archive_pdf(config, ledger, report, period, rendered, digest,
                                       marked or "final", key, run_id=run_id)
                    ledger.transition(run_id, RunState.ARCHIVED, detail=str(path))
                    copies = [(out, rendered.pdf)] if out is not None else []
                    if html_out is not None:
                        copies.append((html_out, rendered.html.encode("utf-8")))
                    write_copies(background, copies)
                    ledger.transition(run_id, RunState.DONE, detail="generated (not mailed)")
    laps.lap("archive_s")
    timings = {**{k: v for k, v in laps.laps.items() if k != "render"}, **rendered.timings}
    timings["total_s"] = laps.total() + (startup_s or 0.0)
    if startup_s is not None:  # the interpreter, imports and config before this function
        timings["startup_s"] = startup_s
    return GenerateResult(
        report=report.name, pdf=out or path, pages=rendered.pages, bytes=len(rendered.pdf),
        period=period, requests=data.requests, timings=timings,
        sha256=hashlib.sha256(rendered.pdf).hexdigest(), gate=verdict,
        overlapped=own.charts_timings if own is not None else {},
    )


@contextmanager
def _failure_recorded(config: Config, ledger: Any, report: ReportConfig, period: Period
                      ) -> Iterator[None]:
    """A failure before the run is recorded (the fetch) is still a failed run in the ledger."""
    try:
        yield
    except BaseException as exc:
        error = str(exc) if isinstance(exc, ReportsError) else f"interrupted: {exc!r}"[:500]
        # Best effort: a ledger that cannot be written, or a live run of the same period,
        # must not hide the error the user needs.
        with contextlib.suppress(ReportsError), \
                nullcontext(ledger) if ledger is not None else open_ledger(config) as opened:
            from reports.state.runs import RunState

            run_id = opened.start_run(report.name, report.org, period)
            opened.transition(run_id, RunState.FAILED, error=error)
        raise


def _import_fetch(config: Config) -> None:
    """Import what the fetch needs (after the fork: the render children need none of it, and
    they are the longer path). NumPy, which the demo API's dataset needs as the charts child
    does, was imported before the fork, so the child inherits it. httpx's own command line
    (click, rich and pygments, ~0.05 s), which this process never runs, is left out: httpx
    imports it only if it can."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    import reports.source.client

    if config.api.base_url == reports.source.client.EMBEDDED:
        import reports.source.mock.app


def _timed_render(config: Config, job: RenderJob, own: Any, pool: Any
                  ) -> tuple[Rendered, float]:
    """The render (in the one-shot's children or the pool) and its wall time."""
    t0 = time.perf_counter()
    rendered = own.render(job) if own is not None else render_limited(config, job, pool)
    return rendered, time.perf_counter() - t0
