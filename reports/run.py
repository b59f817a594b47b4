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

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from reports.config import Config, ReportConfig
from reports.errors import ConfigError, ReportsError, UsageError
from reports.progress import StageProgress
from reports.report.build import Rendered, RenderJob, render_report
from reports.report.model import ReportData
from reports.report.periods import Clock, Period, custom, for_kind, today

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


@contextmanager
def _recorded(ledger: Any, run_id: int) -> Iterator[None]:
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
    """The ledger of ``[state]``: a new engine, closed when the ``with`` block ends."""
    from reports.state.ledger import Ledger

    stuck, lease = config.state.stuck_after_s, config.state.lease
    return Ledger(config.state.url, stuck_after_s=stuck, lease_s=lease)


def _lease_wait_s(config: Config) -> float:
    """How long a run waits for another attempt's lease: long enough for a dead one's to end."""
    return 2 * config.state.lease + 1


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


def _archive_pdf(
    config: Config, ledger: Any, report: ReportConfig, period: Period, pdf: bytes, digest: str
) -> str:
    from reports.delivery.archive import open_archive

    archived = open_archive(config.archive).write(report.org, report.name, period, pdf)
    ledger.record_archive(
        report.name, report.org, period, path=archived.location, sha256=archived.sha256,
        size=archived.size, data_hash=digest,
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
) -> GenerateResult:
    """Collect, render and archive one report; mail nothing.

    A batch passes what it shares: ``pool`` (a started ``WorkerPool``) and ``ledger`` (an open
    ``Ledger``, left open); without them this run starts and closes its own.
    """
    from reports.execute.worker import start_in_background
    from reports.state.runs import RunState

    t_start = time.perf_counter()
    if pool is None:  # a pool's owner has started it already
        start_in_background()  # the render workers' fork server warms up while we fetch
    period = resolve_period(report, window, clock)
    with nullcontext(ledger) if ledger is not None else open_ledger(config) as ledger:
        run_id = ledger.start_run(report.name, report.org, period,
                                  wait_s=_lease_wait_s(config))
        with _recorded(ledger, run_id), StageProgress(progress) as bar:
            t0 = time.perf_counter()
            data = asyncio.run(collect_data(config, report, period, env, bar.update))
            fetch_s = time.perf_counter() - t0
            digest = data_hash(data)
            ledger.transition(run_id, RunState.RENDERING, data_hash=digest)
            bar.update(RENDER_STAGE, 0, 1)
            rendered = _render_limited(
                config,
                RenderJob(report, data, config.templates.dir, _generated_on(report, clock),
                          want_html=html_out is not None),
                pool,
            )
            bar.update(RENDER_STAGE, 1, 1)
            path = _archive_pdf(config, ledger, report, period, rendered.pdf, digest)
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


# ---------------------------------------------------------------- send


@dataclass(frozen=True)
class SendOutcome:
    """What ``send`` did for one report and period."""

    report: str
    period: Period
    sent: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    pdf: Path | str | None = None
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
    from reports.delivery.messages import report_messages
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
    with open_ledger(config) as ledger:

        def done() -> bool:
            return not to and not force and ledger.period_done(report.name, period, recipients)

        run_id = None if done() else ledger.start_run(
            report.name, report.org, period, wait_s=_lease_wait_s(config), until=done
        )
        if run_id is None:
            return SendOutcome(
                report.name, period, skipped=tuple(recipients),
                note="nothing to send: every recipient already has this period's report",
            )
        if pool is None:
            start_in_background()  # the render workers' fork server warms up while we fetch
        with _recorded(ledger, run_id):
            data = asyncio.run(collect_data(config, report, period, env))
            digest = data_hash(data)
            ledger.transition(run_id, RunState.RENDERING, data_hash=digest)
            pdf, path, reused = _pdf_for(
                config, ledger, report, period, data, digest, clock, pool
            )
            ledger.transition(
                run_id, RunState.ARCHIVED, detail=("reused " if reused else "") + str(path)
            )
            ledger.transition(run_id, RunState.DELIVERING)
            messages = report_messages(config, report, period, data, pdf, recipients, clock())
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
    digest: str, clock: Clock, pool: Any = None,
) -> tuple[bytes, str, bool]:
    """The archived PDF if it was made from the same data and is intact, else a new one."""
    from reports.delivery.archive import open_archive

    entry = ledger.archive_entry(report.name, period)
    if entry is not None and entry.data_hash == digest:
        archive = open_archive(config.archive)
        if archive.verify([entry]).clean:
            return archive.read(entry), entry.path, True
    rendered = _render_limited(
        config, RenderJob(report, data, config.templates.dir, _generated_on(report, clock)), pool
    )
    return rendered.pdf, _archive_pdf(config, ledger, report, period, rendered.pdf, digest), False
