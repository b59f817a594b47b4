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
from reports.errors import ConfigError, ReportsError, UsageError
from reports.report.model import ReportData
from reports.report.periods import Clock, Period, custom, for_kind, today
from reports.report.privacy import (
    NAMED_POLICY,
    PSEUDONYMOUS,
    Policy,
    apply_learners,
    policy_for,
)

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
    policy: Policy = NAMED_POLICY


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
    from reports.report.privacy import engagement_bands
    from reports.report.render import Branding, render_html
    from reports.report.suppress import plan

    report, policy = job.report, job.policy
    data = apply_learners(job.data, policy)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    hide = plan(data, policy.min_group_size)
    analysis = analyse(data, top_n=report.top_n, suppression=hide)
    t1 = time.perf_counter()
    charts = make_charts(analysis, accent=report.accent_color, locale=report.locale)
    t2 = time.perf_counter()
    branding = Branding(
        org_name=report.org_name, logo=report.logo, accent_color=report.accent_color
    )
    html = render_html(
        analysis, charts, branding, templates_dir=job.templates_dir,
        generated_on=job.generated_on, locale=report.locale, policy=policy,
        bands=engagement_bands(u.engagement_index for u in data.users),
    )
    t3 = time.perf_counter()
    label = period_label(data.period, report.locale)
    roots = [TEMPLATES_DIR] + ([job.templates_dir] if job.templates_dir else [])
    if report.logo is not None:
        roots.append(report.logo.parent)
    metadata = PdfMetadata(
        title=f"{report.org_name}: {report.period.capitalize()} report, {label}",
        author="ibl-reports",
        subject=f"Learning activity of {report.org_name}, {label}",
        created=datetime.combine(data.period.end, dtime(23, 59, 59), tzinfo=UTC),
        keywords=("ibl.ai", "report", report.org, report.period),
        lang=report.locale,
        identifier=f"{report.org}/{report.name}/{data.period.key}",
    )
    result = html_to_pdf(
        html, base_dir=TEMPLATES_DIR, allowed_roots=roots, metadata=metadata,
        attachments=csv_attachments(data, learners=_learner_list(policy), hide=hide),
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
def _recorded(ledger: Any, run_id: int) -> Iterator[None]:
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


def _ledger(config: Config, clock: Clock | None = None) -> Any:
    from reports.state.ledger import Ledger

    if clock is None:
        return Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)
    return Ledger(config.state.url, clock=clock, stuck_after_s=config.state.stuck_after_s)


def _render_limited(config: Config, job: RenderJob, pool: Any = None) -> Rendered:
    """Render in a limited child: a warm ``WorkerPool`` worker if given, else a fresh one."""
    if pool is not None:
        return pool.run(render_report, job)  # type: ignore[no-any-return]
    from reports.execute.worker import run_limited

    return run_limited(
        render_report, job, timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb
    )


def _generated_on(report: ReportConfig, clock: Clock) -> date:
    return today(clock, report.timezone)


def report_policy(config: Config, report: ReportConfig, env: Mapping[str, str]) -> Policy:
    """The report's learner privacy; the pseudonym key is loaded only when it is needed."""
    policy = policy_for(config.privacy, report)
    if policy.learners != PSEUDONYMOUS:
        return policy
    from reports.state.pseudonym_key import load_key

    return policy_for(config.privacy, report, load_key(config, env))


def _learner_list(policy: Policy) -> str | None:
    """The form of the per-learner CSV, or None when it is not attached."""
    return policy.learners if policy.learner_list_attached else None


def _render_key(config: Config, report: ReportConfig, policy: Policy, digest: str) -> str:
    from reports.delivery.renderkey import render_key
    from reports.state.pseudonym_key import fingerprint

    return render_key(
        data_hash=digest, report=report, privacy=config.privacy,
        templates_dir=config.templates.dir,
        key_fingerprint=fingerprint(policy.key) if policy.key else "",
    )


def _archive_pdf(
    config: Config, ledger: Any, report: ReportConfig, period: Period, pdf: bytes, digest: str,
    key: str,
) -> Path:
    """Archive ``pdf`` as the period's current PDF; an earlier one of another key stays."""
    from reports.delivery.archive import Archive

    archive = Archive(config.archive.dir)
    files = ledger.archive_files(report.name, period)
    plain = archive.path_for(report.org, report.name, period)
    same = next((f for f in files if f.render_key == key), None)
    first = not files or (same is not None and Path(same.path) == plain)
    archived = archive.write(report.org, report.name, period, pdf,
                             variant=None if first else key[:12])
    ledger.record_archive(
        report.name, report.org, period, path=str(archived.path), sha256=archived.sha256,
        size=archived.size, data_hash=digest, render_key=key,
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
    with _ledger(config) as ledger:
        run_id = ledger.start_run(report.name, report.org, period)
        with _recorded(ledger, run_id), _Progress(progress) as bar:
            t0 = time.perf_counter()
            data = asyncio.run(collect_data(config, report, period, env, bar.update))
            fetch_s = time.perf_counter() - t0
            digest = data_hash(data)
            ledger.transition(run_id, RunState.RENDERING, data_hash=digest)
            policy = report_policy(config, report, env)
            bar.update(RENDER_STAGE, 0, 1)
            rendered = _render_limited(
                config,
                RenderJob(report, data, config.templates.dir, _generated_on(report, clock),
                          want_html=html_out is not None, policy=policy),
                pool,
            )
            bar.update(RENDER_STAGE, 1, 1)
            path = _archive_pdf(config, ledger, report, period, rendered.pdf, digest,
                                _render_key(config, report, policy, digest))
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
        sha256=hashlib.sha256(rendered.pdf).hexdigest(),
    )


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


@dataclass(frozen=True)
class SendOutcome:
    """What ``send`` did for one report and period."""

    report: str
    period: Period
    sent: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    pdf: Path | None = None
    reused: bool = False
    note: str = ""
    test_reply: str | None = None
    """The server's reply to a test copy (``send --to``); None for a real send."""

    @property
    def exit_code(self) -> int:
        """0 when every due recipient got the report, 1 otherwise."""
        return 1 if self.failures else 0

    def lines(self) -> list[str]:
        """What to tell the user on stdout, in the order it happened: the PDF, then the mail."""
        head = f"{self.report} {self.period.start.isoformat()}..{self.period.end.isoformat()}"
        out = []
        if self.pdf is not None:
            how = "reused archived PDF" if self.reused else "archived"
            out.append(f"{head}: {how} {self.pdf}")
        if self.test_reply is not None:
            out.append(f"{head}: test copy sent to {', '.join(self.sent)} (server replied "
                       f"{self.test_reply}); no delivery recorded")
        elif self.sent:
            out.append(f"{head}: sent to {', '.join(self.sent)}")
        if self.skipped:
            out.append(f"{head}: already delivered to {', '.join(self.skipped)}")
        if self.note:
            out.append(f"{head}: {self.note}")
        return out

    def failure_lines(self) -> list[str]:
        """One line per failed recipient, for stderr."""
        return [f"{self.report}: {line}" for line in self.failures]


def mail_summary(report: ReportConfig, data: ReportData, policy: Policy = NAMED_POLICY) -> Any:
    """The email body's numbers, from the same analysis as the PDF (and the same policy)."""
    from reports.delivery.summary import summarise
    from reports.report.analysis import analyse
    from reports.report.suppress import plan

    data = apply_learners(data, policy)
    analysis = analyse(data, top_n=report.top_n, suppression=plan(data, policy.min_group_size))
    return summarise(
        analysis, title=f"{report.period.capitalize()} report",
        org_name=report.org_name, report_name=report.name, locale=report.locale,
        accent_color=report.accent_color,
    )


def _messages(
    config: Config, report: ReportConfig, period: Period, data: ReportData, pdf: bytes,
    recipients: Sequence[str], now: datetime, policy: Policy,
) -> dict[str, Any]:
    from reports.delivery.mail import (
        Attachment,
        build_message,
        format_subject,
        make_message_id,
        parse_address,
        render_bodies,
    )
    from reports.report.csvdata import csv_attachments
    from reports.report.fmt import period_label, period_title
    from reports.report.suppress import plan

    summary = mail_summary(report, data, policy)
    text, html = render_bodies(summary, override_dir=config.templates.dir)
    subject = format_subject(
        config.email.subject, period_title=period_title(period), org_name=report.org_name,
        period_label=period_label(period, report.locale), report=report.name,
    )
    domain = parse_address(config.email.from_, what="email.from").domain
    extras = (
        [Attachment(a.name, a.data, a.mime) for a in csv_attachments(
            apply_learners(data, policy), learners=_learner_list(policy),
            hide=plan(data, policy.min_group_size))]
        if config.email.attach_csv else []
    )
    return {
        recipient: build_message(
            sender=config.email.from_, recipient=recipient, subject=subject, text_body=text,
            html_body=html, pdf=pdf, pdf_name=f"{report.name}_{period.key}.pdf",
            message_id=make_message_id(report.name, period.key, recipient, domain),
            date=now, extra_attachments=extras, report=report.name, period_key=period.key,
        )
        for recipient in recipients
    }


def send_report(
    config: Config,
    report: ReportConfig,
    *,
    as_of: date | None = None,
    force: bool = False,
    to: str | None = None,
    clock: Clock,
    env: Mapping[str, str],
    backend: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    pool: Any = None,
) -> SendOutcome:
    """Generate (or reuse) the period's PDF, archive it, and deliver it exactly once.

    Recipients who already have this period's report are skipped (``force`` sends again to all).
    ``to`` sends a test copy to one address and leaves the ledger's deliveries untouched.
    ``pool`` renders (a ``WorkerPool``, or an ``InProcessRenderer`` in a Celery pool child);
    without it a fresh limited child does.
    """
    from reports.delivery.mailer import backend_from_config, deliver
    from reports.execute.worker import start_in_background
    from reports.state.runs import RunState

    period = resolve_period(report, Window(as_of=as_of), clock)
    backend = backend or backend_from_config(config.email, env)
    recipients = [to] if to else list(report.recipients)
    if not recipients:
        raise ConfigError(
            f"report {report.name!r} has no recipients", file=str(config.source),
            key="reports.recipients",
        )
    with _ledger(config) as ledger:
        if not to and not force and ledger.period_done(report.name, period, recipients):
            return SendOutcome(
                report.name, period, skipped=tuple(recipients),
                note="nothing to send: every recipient already has this period's report",
            )
        run_id = ledger.start_run(report.name, report.org, period)
        if pool is None:
            start_in_background()  # the render workers' fork server warms up while we fetch
        with _recorded(ledger, run_id):
            data = asyncio.run(collect_data(config, report, period, env))
            digest = data_hash(data)
            ledger.transition(run_id, RunState.RENDERING, data_hash=digest)
            policy = report_policy(config, report, env)
            pdf, path, reused = _pdf_for(
                config, ledger, report, period, data, digest, clock, policy, pool
            )
            ledger.transition(
                run_id, RunState.ARCHIVED, detail=("reused " if reused else "") + str(path)
            )
            ledger.transition(run_id, RunState.DELIVERING)
            messages = _messages(config, report, period, data, pdf, recipients, clock(), policy)
            if to:
                receipt = backend.send(messages[to], to)
                ledger.transition(run_id, RunState.DONE, detail=f"test copy to {to}")
                return SendOutcome(report.name, period, sent=(to,), pdf=path, reused=reused,
                                   test_reply=receipt.reply)
            result = deliver(
                ledger, backend, report.name, period, messages,
                max_attempts=config.email.max_attempts,
                backoff_s=config.email.retry_backoff_s, force=force, run_id=run_id, sleep=sleep,
            )
            if result.ok:
                ledger.transition(run_id, RunState.DONE, detail=f"sent {len(result.sent)}")
            else:
                ledger.transition(run_id, RunState.FAILED, error="; ".join(result.lines()))
    return SendOutcome(
        report.name, period, sent=result.sent, skipped=result.skipped,
        failures=tuple(result.lines()), pdf=path, reused=reused,
    )


def _pdf_for(
    config: Config, ledger: Any, report: ReportConfig, period: Period, data: ReportData,
    digest: str, clock: Clock, policy: Policy, pool: Any = None,
) -> tuple[bytes, Path, bool]:
    """The archived PDF if it has the same render key (same data, config, templates, version)
    and is intact, else a new one."""
    from reports.delivery.archive import Archive

    key = _render_key(config, report, policy, digest)
    archive = Archive(config.archive.dir)
    for entry in ledger.archive_files(report.name, period):
        if entry.render_key == key and archive.verify([entry]).clean:
            if not entry.current:  # an earlier PDF of this key: current again
                ledger.record_archive(
                    report.name, report.org, period, path=entry.path, sha256=entry.sha256,
                    size=entry.size, data_hash=digest, render_key=key,
                )
            return archive.read(entry), Path(entry.path), True
    rendered = _render_limited(config, RenderJob(
        report, data, config.templates.dir, _generated_on(report, clock), policy=policy,
    ), pool)
    path = _archive_pdf(config, ledger, report, period, rendered.pdf, digest, key)
    return rendered.pdf, path, False


# ---------------------------------------------------------------- history and archive


def history(config: Config, *, report: str | None, limit: int) -> list[dict[str, Any]]:
    """Recent runs with their deliveries, newest first (for ``ibl-reports runs``)."""
    with _ledger(config) as ledger:
        out = []
        for run in ledger.runs(report, limit=limit):
            deliveries = [
                {"recipient": d.recipient, "state": str(d.state), "attempts": d.attempts,
                 "reply": d.smtp_reply, "message_id": d.message_id}
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
            })
        return out


def archive_listing(config: Config, *, report: str | None) -> list[dict[str, Any]]:
    """Archived PDFs (for ``archive list``)."""
    with _ledger(config) as ledger:
        return [
            {"report": e.report, "org": e.org, "period_start": e.period_start.isoformat(),
             "period_end": e.period_end.isoformat(), "path": e.path, "sha256": e.sha256,
             "size": e.size, "created_at": e.created_at.isoformat(timespec="seconds"),
             "current": e.current}
            for e in ledger.archive_entries(report)
        ]


def archive_verify(config: Config) -> tuple[list[str], int]:
    """Problems found by re-hashing every archived file, and how many were checked."""
    from reports.delivery.archive import Archive

    with _ledger(config) as ledger:
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

    with _ledger(config) as ledger:
        return Archive(config.archive.dir).prune(
            ledger, parse_duration(older_than), today=clock().astimezone(UTC).date(),
            dry_run=dry_run, confirm_all=confirm_all,
        )

