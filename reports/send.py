"""``send``: one report's period, judged by the freshness gate, delivered exactly once.

    refuse an unended period (exit 2, nothing written)
    -> collect + judge (``reports.gate``) -> held (exit 3, the run recorded held, the period
       noted for the scheduler's re-checks, the first hold of the period alerted, nothing else)
    -> render (or reuse the archived PDF) -> archive -> mail (via the ledger; a provisional
       delivery noted for the re-checks and alerted once per period, a final one ends them)

``--provisional`` sends a period the gate holds, marked provisional: a banner on page 1,
"[Provisional]" in the subject, its own Message-ID, the PDF archived beside the final one. When
the data is complete, the next send delivers the final report, once, to everyone, saying to those
who got the provisional copy that it replaces it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from reports.config import Config, ReportConfig
from reports.errors import ConfigError
from reports.gate import (
    PROVISIONAL,
    banner_for,
    fetch_judged,
    head,
    held_line,
    note_hold,
    refuse_unended,
    replaces_line,
    tell_alerts,
)
from reports.report.build import RenderJob
from reports.report.datahash import data_hash
from reports.report.freshness import Verdict
from reports.report.model import ReportData
from reports.report.periods import Clock, Period, today
from reports.report.privacy import Policy
from reports.run import (
    Window,
    archive_pdf,
    generated_on,
    lease_wait_s,
    open_ledger,
    recorded,
    render_key_of,
    render_limited,
    report_policy,
    resolve_period,
)


@dataclass(frozen=True)
class SendOutcome:
    """What ``send`` did for one report and period."""

    report: str
    period: Period
    sent: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    pdf: str | None = None
    reused: bool = False
    note: str = ""
    test_reply: str | None = None
    """What became of a test copy (``send --to``): the server's reply, or the outbox file;
    None for a real send."""
    held: Verdict | None = None
    """The gate's verdict when it held the period (nothing was sent)."""
    edition: str | None = None

    @property
    def exit_code(self) -> int:
        """0 when every due recipient got the report, 1 on a failure, 3 when held."""
        if self.held is not None:
            return 3
        return 1 if self.failures else 0

    def lines(self) -> list[str]:
        """What to tell the user on stdout, in the order it happened: the PDF, then the mail."""
        head_ = head(self.report, self.period)
        out = []
        if self.pdf is not None:
            how = "reused archived PDF" if self.reused else "archived"
            out.append(f"{head_}: {how} {self.pdf}")
        what = "sent provisional to" if self.edition == PROVISIONAL else "sent to"
        if self.test_reply is not None:
            out.append(f"{head_}: test copy sent to {', '.join(self.sent)} ({self.test_reply}); "
                       "no delivery recorded")
        elif self.sent:
            out.append(f"{head_}: {what} {', '.join(self.sent)}")
        if self.skipped:
            out.append(f"{head_}: already delivered to {', '.join(self.skipped)}")
        if self.note:
            out.append(f"{head_}: {self.note}")
        return out

    def failure_lines(self) -> list[str]:
        """For stderr: the held line, or one line per failed recipient."""
        if self.held is not None:
            return [held_line(self.report, self.period, self.held)]
        return [f"{self.report}: {line}" for line in self.failures]


def send_report(
    config: Config,
    report: ReportConfig,
    *,
    as_of: date | None = None,
    force: bool = False,
    to: str | None = None,
    provisional: bool = False,
    clock: Clock,
    env: Mapping[str, str],
    backend: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    pool: Any = None,
) -> SendOutcome:
    """Judge, generate (or reuse) the period's PDF, archive it, and deliver it exactly once.

    Recipients who already have this period's report are skipped (``force`` sends again to all).
    ``to`` sends a test copy to one address and leaves the ledger's deliveries untouched.
    ``provisional`` sends despite the freshness gate, marked provisional. ``pool`` renders (a
    ``WorkerPool``, or an ``InProcessRenderer`` in a Celery pool child); without it a fresh
    limited child does.
    """
    from reports.delivery.backends import backend_from_config
    from reports.delivery.mailer import deliver
    from reports.execute.worker import start_in_background
    from reports.state.runs import RunState

    period = resolve_period(report, Window(as_of=as_of), clock)
    refuse_unended(report, period, clock)
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
            report.name, report.org, period, wait_s=lease_wait_s(config), until=done
        )
        if run_id is None:
            return SendOutcome(
                report.name, period, skipped=tuple(recipients),
                note="nothing to send: every recipient already has this period's report",
            )
        if pool is None:
            start_in_background()  # the render workers' fork server warms up while we fetch
        with recorded(ledger, run_id):
            data, verdict = fetch_judged(
                config, report, period, env, day=today(clock, report.timezone))
            gate = json.dumps(verdict.as_json(), sort_keys=True)
            if not verdict.ok and not provisional:
                ledger.transition(run_id, RunState.HELD, error=verdict.reason(), gate=gate)
                if not to:
                    note_hold(ledger, report, period, verdict, clock, state="held")
                    tell_alerts(config, ledger, report, period, verdict, env, backend=backend,
                                clock=clock, held=True)
                return SendOutcome(report.name, period, held=verdict)
            edition = None if verdict.ok else PROVISIONAL
            if edition and not to and not force and ledger.period_done(
                    report.name, period, recipients, edition=PROVISIONAL):
                ledger.transition(run_id, RunState.HELD, error=verdict.reason(), gate=gate)
                tell_alerts(config, ledger, report, period, verdict, env, backend=backend,
                            clock=clock, held=False)
                return SendOutcome(
                    report.name, period, skipped=tuple(recipients),
                    note="nothing to send: every recipient has the provisional report, and the "
                         f"data is still incomplete ({verdict.reason()})")
            digest = data_hash(data)
            ledger.transition(run_id, RunState.RENDERING, data_hash=digest, gate=gate,
                              edition=edition)
            policy = report_policy(config, report, env)
            pdf, path, reused = _pdf_for(config, ledger, report, period, data, digest, clock,
                                         verdict if edition else None, policy, pool, run_id)
            ledger.transition(
                run_id, RunState.ARCHIVED, detail=("reused " if reused else "") + str(path)
            )
            ledger.transition(run_id, RunState.DELIVERING)
            messages = _messages(config, ledger, report, period, data, pdf, recipients, clock,
                                 verdict if edition else None, policy)
            note = "the data is complete: sent as the final report" if (
                provisional and not edition) else ""
            if to:
                receipt = backend.send(messages[to], to)
                ledger.transition(run_id, RunState.DONE, detail=f"test copy to {to}")
                return SendOutcome(report.name, period, sent=(to,), pdf=path, reused=reused,
                                   test_reply=receipt.said(), edition=edition)
            result = deliver(
                ledger, backend, report.name, period, messages,
                max_attempts=config.email.max_attempts, backoff_s=config.email.retry_backoff_s,
                force=force, run_id=run_id, sleep=sleep, edition=edition,
            )
            if result.ok:
                ledger.transition(run_id, RunState.DONE, detail=f"sent {len(result.sent)}"
                                  + (" provisional" if edition else ""))
            else:
                ledger.transition(run_id, RunState.FAILED, error="; ".join(result.lines()))
            if edition and result.sent:  # the scheduler sends the final report when it can
                note_hold(ledger, report, period, verdict, clock, state=PROVISIONAL)
            elif not edition and result.ok:  # the final report went out: nothing to look after
                ledger.drop_hold(report.name, period)
            tell_alerts(config, ledger, report, period, verdict, env, backend=backend,
                        clock=clock, held=False)
    return SendOutcome(
        report.name, period, sent=result.sent, skipped=result.skipped,
        failures=tuple(result.lines()), pdf=path, reused=reused, note=note, edition=edition,
    )


def _messages(
    config: Config, ledger: Any, report: ReportConfig, period: Period, data: ReportData,
    pdf: bytes, recipients: list[str], clock: Clock, held: Verdict | None, policy: Policy,
) -> dict[str, Any]:
    """The messages of this send: provisional ones, or the final one (replacing for some)."""
    from reports.delivery.messages import report_messages

    if held is not None:
        return report_messages(config, report, period, data, pdf, recipients, clock(),
                               edition=PROVISIONAL, notice=banner_for(held, report),
                               policy=policy)
    replacing = ledger.provisional_recipients(report.name, period)
    plain = [r for r in recipients if r not in replacing]
    messages = report_messages(config, report, period, data, pdf, plain, clock(), policy=policy)
    for recipient in recipients:
        if recipient in replacing:
            notice = replaces_line(report, period, replacing[recipient])
            messages.update(report_messages(config, report, period, data, pdf, [recipient],
                                            clock(), edition="replacement", notice=notice,
                                            policy=policy))
    return {r: messages[r] for r in recipients}


def _pdf_for(
    config: Config, ledger: Any, report: ReportConfig, period: Period, data: ReportData,
    digest: str, clock: Clock, held: Verdict | None, policy: Policy, pool: Any = None,
    run_id: int | None = None,
) -> tuple[bytes, str, bool]:
    """The archived PDF of this edition if it has the same render key (same data, config,
    templates, pseudonym key, version) and is intact, else a new one."""
    from reports.delivery.archive import open_archive
    from reports.report.render import Notice

    edition = PROVISIONAL if held is not None else "final"
    notice = Notice("provisional", banner_for(held, report)) if held is not None else None
    if held is None and (replacing := ledger.provisional_recipients(report.name, period)):
        # The final PDF says itself that it replaces the provisional one (first sent then).
        notice = Notice("replaces", replaces_line(report, period, min(replacing.values())))
    # The notice comes from the ledger, not the data: it is part of what the PDF is.
    key = render_key_of(config, report, policy,
                        digest if notice is None else f"{digest}|{notice.kind}|{notice.text}")
    archive = open_archive(config.archive)
    for entry in ledger.archive_files(report.name, period, edition):
        if entry.render_key == key and archive.verify([entry]).clean:
            if not entry.current:  # an earlier PDF of this key: current again
                ledger.record_archive(
                    report.name, report.org, period, path=entry.path, sha256=entry.sha256,
                    size=entry.size, data_hash=digest, edition=edition, render_key=key,
                    html=(entry.html_path, entry.html_sha256 or "", entry.html_size or 0)
                    if entry.html_path else None, run_id=entry.run_id,
                )
            return archive.read(entry), entry.path, True
    rendered = render_limited(config, RenderJob(
        report, data, config.templates.dir, generated_on(report, clock), notice=notice,
        policy=policy), pool)
    path = archive_pdf(config, ledger, report, period, rendered, digest, edition=edition,
                       key=key, run_id=run_id)
    return rendered.pdf, path, False
