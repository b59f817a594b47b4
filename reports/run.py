"""One report run, top to bottom.

    period -> collect (API) -> analyse -> charts -> HTML -> PDF   [render worker, limited]
           -> archive (atomic, hashed) -> mail (one message per recipient, via the ledger)

``generate`` stops after the archive; ``send`` goes on to deliver, exactly once per recipient.
Every stage transition is written to the ledger (runs + run_events); a failure at any stage marks
the run failed and leaves nothing half-done: no PDF is archived from partial data and no mail is
sent for a run that did not archive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from reports.config import Config, ReportConfig
from reports.errors import ReportsError, UsageError
from reports.gate import PROVISIONAL, collect_judged, verdict_line
from reports.report.freshness import Verdict
from reports.report.model import ReportData
from reports.report.periods import Clock, Period, custom, for_kind, today

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
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


def data_hash(data: ReportData) -> str:
    """A stable hash of the collected data: equal hashes mean the same report."""
    payload = asdict(data)
    payload.pop("requests", None)
    payload.pop("extra", None)
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------- render (in the worker)


@dataclass(frozen=True)
class RenderJob:
    """Everything the render worker needs; picklable."""

    report: ReportConfig
    data: ReportData
    templates_dir: Path | None
    generated_on: date
    want_html: bool = False
    notice: Any = None
    """A ``reports.report.render.Notice`` on page 1 (a provisional report), or None."""


@dataclass(frozen=True)
class Rendered:
    """What the render worker returns."""

    pdf: bytes
    pages: int
    html: str | None
    timings: dict[str, float] = field(default_factory=dict)


def render_report(job: RenderJob) -> Rendered:
    """analyse -> charts -> HTML -> PDF; runs in a worker process with time and memory limits."""
    from reports.report.analysis import analyse
    from reports.report.charts import make_charts
    from reports.report.csvdata import csv_attachments
    from reports.report.fmt import period_label
    from reports.report.pdf import PdfMetadata, html_to_pdf
    from reports.report.render import Branding, render_html

    report, data = job.report, job.data
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    analysis = analyse(data, top_n=report.top_n)
    t1 = time.perf_counter()
    charts = make_charts(analysis, accent=report.accent_color, locale=report.locale)
    t2 = time.perf_counter()
    branding = Branding(
        org_name=report.org_name, logo=report.logo, accent_color=report.accent_color
    )
    html = render_html(
        analysis, charts, branding, templates_dir=job.templates_dir,
        generated_on=job.generated_on, locale=report.locale, notice=job.notice,
    )
    t3 = time.perf_counter()
    label = period_label(data.period, report.locale)
    marked = "Provisional: " if job.notice is not None and job.notice.kind == "provisional" else ""
    roots = [TEMPLATES_DIR] + ([job.templates_dir] if job.templates_dir else [])
    if report.logo is not None:
        roots.append(report.logo.parent)
    metadata = PdfMetadata(
        title=f"{marked}{report.org_name}: {report.period.capitalize()} report, {label}",
        author="ibl-reports",
        subject=f"Learning activity of {report.org_name}, {label}",
        created=datetime.combine(data.period.end, dtime(23, 59, 59), tzinfo=UTC),
        keywords=("ibl.ai", "report", report.org, report.period),
        lang=report.locale,
        identifier=f"{report.org}/{report.name}/{data.period.key}",
    )
    result = html_to_pdf(
        html, base_dir=TEMPLATES_DIR, allowed_roots=roots, metadata=metadata,
        attachments=csv_attachments(data),
    )
    t4 = time.perf_counter()
    timings.update(analyse_s=t1 - t0, charts_s=t2 - t1, html_s=t3 - t2, pdf_s=t4 - t3)
    return Rendered(
        pdf=result.data, pages=result.pages, html=html if job.want_html else None, timings=timings
    )


# ---------------------------------------------------------------- generate


@dataclass(frozen=True)
class GenerateResult:
    """What ``generate`` made for one report."""

    report: str
    pdf: Path
    pages: int
    bytes: int
    period: Period
    requests: int
    timings: dict[str, float]
    sha256: str
    gate: Verdict = field(default_factory=Verdict)
    """The freshness gate's verdict: when it failed, the PDF is marked provisional."""

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
        }


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


class _Progress:
    """A rich progress display on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                transient=True,
            )

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, stage: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(task, completed=done, total=total)


@contextmanager
def recorded(ledger: Any, run_id: int) -> Iterator[None]:
    """Any failure inside marks the run failed in the ledger (with its one-line error)."""
    from reports.state.runs import RunState

    try:
        yield
    except ReportsError as exc:
        ledger.transition(run_id, RunState.FAILED, error=str(exc))
        raise
    except BaseException as exc:
        ledger.transition(run_id, RunState.FAILED, error=f"interrupted: {exc!r}"[:500])
        raise


def open_ledger(config: Config, clock: Clock | None = None) -> Any:
    """The ledger of ``[state]``: a new engine, closed when the ``with`` block ends."""
    from reports.state.ledger import Ledger

    if clock is None:
        return Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)
    return Ledger(config.state.url, clock=clock, stuck_after_s=config.state.stuck_after_s)


def render_limited(config: Config, job: RenderJob, pool: Any = None) -> Rendered:
    """Render in a limited child: a warm ``WorkerPool`` worker if given, else a fresh one."""
    if pool is not None:
        return pool.run(render_report, job)  # type: ignore[no-any-return]
    from reports.execute.worker import run_limited

    return run_limited(
        render_report, job, timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb
    )


def generated_on(report: ReportConfig, clock: Clock) -> date:
    return today(clock, report.timezone)


def archive_pdf(
    config: Config, ledger: Any, report: ReportConfig, period: Period, pdf: bytes, digest: str,
    edition: str = "final",
) -> Path:
    from reports.delivery.archive import Archive

    archived = Archive(config.archive.dir).write(report.org, report.name, period, pdf, edition)
    ledger.record_archive(
        report.name, report.org, period, path=str(archived.path), sha256=archived.sha256,
        size=archived.size, data_hash=digest, edition=edition,
    )
    return archived.path


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
) -> GenerateResult:
    """Collect, render and archive one report; mail nothing (``pool``: a ``WorkerPool``)."""
    from reports.execute.worker import start_in_background
    from reports.state.runs import RunState

    t_start = time.perf_counter()
    if pool is None:  # a pool's owner has started it already
        start_in_background()  # the render workers' fork server warms up while we fetch
    period = resolve_period(report, window, clock)
    with open_ledger(config) as ledger:
        run_id = ledger.start_run(report.name, report.org, period)
        with recorded(ledger, run_id), _Progress(progress) as bar:
            t0 = time.perf_counter()
            data, verdict = asyncio.run(collect_judged(
                config, report, period, env, day=today(clock, report.timezone),
                on_progress=bar.update))
            fetch_s = time.perf_counter() - t0
            digest = data_hash(data)
            edition = "final" if verdict.ok else PROVISIONAL  # generate never holds: it marks
            ledger.transition(run_id, RunState.RENDERING, data_hash=digest,
                              gate=json.dumps(verdict.as_json(), sort_keys=True),
                              edition=None if verdict.ok else PROVISIONAL)
            bar.update(RENDER_STAGE, 0, 1)
            notice = None if verdict.ok else _notice(verdict, report.locale)
            rendered = render_limited(
                config,
                RenderJob(report, data, config.templates.dir, generated_on(report, clock),
                          want_html=html_out is not None, notice=notice),
                pool,
            )
            bar.update(RENDER_STAGE, 1, 1)
            path = archive_pdf(config, ledger, report, period, rendered.pdf, digest, edition)
            ledger.transition(run_id, RunState.ARCHIVED, detail=str(path))
            if out is not None:
                _write_copy(out, rendered.pdf)
            if html_out is not None and rendered.html is not None:
                _write_copy(html_out, rendered.html.encode("utf-8"))
            ledger.transition(run_id, RunState.DONE, detail="generated (not mailed)")
    timings = {"fetch_s": fetch_s, **rendered.timings}
    timings["total_s"] = time.perf_counter() - t_start
    return GenerateResult(
        report=report.name, pdf=out or path, pages=rendered.pages, bytes=len(rendered.pdf),
        period=period, requests=data.requests, timings=timings,
        sha256=hashlib.sha256(rendered.pdf).hexdigest(), gate=verdict,
    )


def _notice(verdict: Verdict, locale: str) -> Any:
    """The provisional banner of page 1."""
    from reports.report.render import Notice

    return Notice("provisional", verdict.banner(locale))


def _write_copy(path: Path, data: bytes) -> None:
    """``--out`` / ``--html``: written atomically; a failure names the file."""
    from reports.atomic import write_atomic

    try:
        write_atomic(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


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
) -> list[Outcome]:
    """``generate`` for one or many reports; one failure never stops the others."""

    def one(report: ReportConfig, **options: Any) -> Outcome:
        try:
            return Outcome(report.name, result=generate_one(
                config, report, window, clock=clock, env=env, **options,
            ))
        except ReportsError as exc:
            return Outcome(report.name, error=str(exc), exit_code=exc.exit_code)

    if len(reports) == 1:
        return [one(reports[0], out=out, html_out=html_out, progress=progress)]
    from concurrent.futures import ThreadPoolExecutor

    from reports.execute.worker import WorkerPool, default_workers, start_in_background

    start_in_background()  # once for the batch, while the first reports fetch
    workers = config.render.workers or default_workers()
    # Warm render workers reused across reports: only each worker's first render pays for
    # fonts, caches and lazy imports (bench/batch.py).
    renderers = WorkerPool(timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb)

    with renderers, ThreadPoolExecutor(max_workers=workers) as threads:
        return list(threads.map(lambda report: one(report, pool=renderers), reports))


# ---------------------------------------------------------------- send


def mail_summary(report: ReportConfig, data: ReportData) -> Any:
    """The email body's numbers, from the same analysis as the PDF."""
    from reports.delivery.summary import summarise
    from reports.report.analysis import analyse

    return summarise(
        analyse(data, top_n=report.top_n), title=f"{report.period.capitalize()} report",
        org_name=report.org_name, report_name=report.name, locale=report.locale,
        accent_color=report.accent_color,
    )


def report_messages(
    config: Config, report: ReportConfig, period: Period, data: ReportData, pdf: bytes,
    recipients: Sequence[str], now: datetime, *, edition: str | None = None, notice: str = "",
) -> dict[str, Any]:
    """One message per recipient; ``edition`` ``provisional`` or ``replacement`` (of one) marks
    the subject, ``notice`` is the body's first line."""
    from dataclasses import replace

    from reports.delivery.mail import (
        Attachment,
        build_message,
        edition_subject,
        format_subject,
        make_message_id,
        parse_address,
        render_bodies,
    )
    from reports.report.csvdata import csv_attachments
    from reports.report.fmt import period_label, period_title

    summary = replace(mail_summary(report, data), notice=notice)
    text, html = render_bodies(summary, override_dir=config.templates.dir)
    subject = edition_subject(format_subject(
        config.email.subject, period_title=period_title(period), org_name=report.org_name,
        period_label=period_label(period, report.locale), report=report.name,
    ), edition or "final")
    provisional = edition == PROVISIONAL
    key = f"{period.key}.provisional" if provisional else period.key
    domain = parse_address(config.email.from_, what="email.from").domain
    extras = (
        [Attachment(a.name, a.data, a.mime) for a in csv_attachments(data)]
        if config.email.attach_csv else []
    )
    return {
        recipient: build_message(
            sender=config.email.from_, recipient=recipient, subject=subject, text_body=text,
            html_body=html, pdf=pdf,
            pdf_name=f"{report.name}_{period.key}{'_provisional' if provisional else ''}.pdf",
            message_id=make_message_id(report.name, key, recipient, domain),
            date=now, extra_attachments=extras, report=report.name, period_key=period.key,
            edition=PROVISIONAL if provisional else None,
        )
        for recipient in recipients
    }


# ---------------------------------------------------------------- history and archive


def history(config: Config, *, report: str | None, limit: int) -> list[dict[str, Any]]:
    """Recent runs with their deliveries, newest first (for ``ibl-reports runs``)."""
    with open_ledger(config) as ledger:
        out = []
        for run in ledger.runs(report, limit=limit):
            deliveries = [
                {"recipient": d.recipient, "state": str(d.state), "attempts": d.attempts,
                 "reply": d.smtp_reply, "message_id": d.message_id,
                 "edition": d.edition or "final"}
                for d in ledger.deliveries(run.report, period=run.period)
            ]
            out.append({
                "id": run.id, "report": run.report, "org": run.org,
                "period_start": run.period_start.isoformat(),
                "period_end": run.period_end.isoformat(), "state": str(run.state),
                "started_at": run.started_at.isoformat(timespec="seconds"),
                "finished_at": run.finished_at.isoformat(timespec="seconds")
                if run.finished_at else None,
                "error": run.error, "deliveries": deliveries,
                "edition": run.edition or "final", **_gate_view(run),
            })
        return out


def _gate_view(run: Any) -> dict[str, Any]:
    """A run's freshness verdict and the reason it was held or sent provisional."""
    if not run.gate:
        return {"gate": None, "reason": None}
    verdict = Verdict.from_json(json.loads(run.gate))
    return {"gate": verdict.as_json(), "reason": None if verdict.ok else verdict.reason()}


def archive_listing(config: Config, *, report: str | None) -> list[dict[str, Any]]:
    """Archived PDFs (for ``archive list``)."""
    with open_ledger(config) as ledger:
        return [
            {"report": e.report, "org": e.org, "period_start": e.period_start.isoformat(),
             "period_end": e.period_end.isoformat(), "path": e.path, "sha256": e.sha256,
             "size": e.size, "created_at": e.created_at.isoformat(timespec="seconds"),
             "edition": e.edition}
            for e in ledger.archive_entries(report)
        ]


def archive_verify(config: Config) -> tuple[list[str], int]:
    """Problems found by re-hashing every archived file, and how many were checked."""
    from reports.delivery.archive import Archive

    with open_ledger(config) as ledger:
        entries = ledger.archive_entries()
        result = Archive(config.archive.dir).verify(entries)
        return result.lines(), len(entries)


def archive_prune(
    config: Config, older_than: str, *, clock: Clock, dry_run: bool = False,
    confirm_all: bool = False,
) -> list[Any]:
    """Delete archived PDFs whose period ended more than ``older_than`` ago (the records;
    ``dry_run``: what would go). Deleting every file needs ``confirm_all``."""
    from reports.delivery.archive import Archive, parse_duration

    with open_ledger(config) as ledger:
        return Archive(config.archive.dir).prune(
            ledger, parse_duration(older_than), today=clock().astimezone(UTC).date(),
            dry_run=dry_run, confirm_all=confirm_all,
        )

