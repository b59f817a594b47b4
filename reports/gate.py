"""The freshness gate in a run: collect and judge, refuse an unended period, say what was decided.

``send`` refuses a period that has not ended (exit 2, nothing written), then collects and judges
the data (``reports.report.freshness``, with the older periods from
``reports.source.history`` only when the ratio rule needs them) before anything is rendered.
``generate`` judges the same way but never holds: it marks the PDF provisional instead. The
first send that holds a period alerts ``[alerts] recipients``, and so does the first send that
delivers a provisional report of it (each once per period, by hand or run by the scheduler,
recorded in the ledger when the alert went out). A send that holds a period, or sends it
provisional, notes it for the scheduler's re-checks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from reports.config import Config, ReportConfig
from reports.errors import UsageError
from reports.report.freshness import Verdict, settings_from, unended
from reports.report.model import ReportData
from reports.report.periods import Clock, Period, today

PROVISIONAL = "provisional"


def refuse_unended(report: ReportConfig, period: Period, clock: Clock) -> None:
    """A UsageError (exit 2) when ``period`` has not ended in the report's time zone."""
    now = today(clock, report.timezone)
    if unended(period, now):
        raise UsageError(
            f"report {report.name!r}: the period {period.start.isoformat()}.."
            f"{period.end.isoformat()} has not ended yet in {report.timezone} (today is "
            f"{now.isoformat()}); it can be sent from {(period.end + timedelta(1)).isoformat()}"
        )


def fetch_judged(
    config: Config,
    report: ReportConfig,
    period: Period,
    env: Mapping[str, str],
    *,
    day: date | None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[ReportData, Verdict]:
    """Everything the report needs (never partial) and the gate's verdict on it.

    ``day`` (the report's today) adds the ``period_ended`` rule; requests made for the older
    periods count in the data's ``requests``. The fetch runs in ``asyncio.run``, with its
    result kept out of the loop's main task: ``asyncio.run`` formats that task when it puts the
    SIGINT handler back (``signal`` turns the old handler, which names the task, into a
    message), and a task that returned the data would be formatted with all of it (~10 ms of
    CPU for a demo org, thrown away).
    """
    from reports.source.client import client_from_config
    from reports.source.collect import collect
    from reports.source.history import HistoryCache, judge_collected

    settings = settings_from(config.freshness_for(report))
    cache = HistoryCache()
    box: list[tuple[ReportData, Verdict]] = []

    async def main() -> None:
        async with client_from_config(config.api, env) as client:
            data = await collect(client, report.org, period, page_size=config.api.page_size,
                                 on_progress=on_progress)
            box.append((data, await judge_collected(client, data, settings, today=day,
                                                    cache=cache)))

    asyncio.run(main())
    data, verdict = box[0]
    if cache.requests:
        data = replace(data, requests=data.requests + cache.requests)
    return data, verdict


def head(report: str, period: Period) -> str:
    """``acme-weekly 2026-11-09..2026-11-15``: how the CLI names a report's period."""
    return f"{report} {period.start.isoformat()}..{period.end.isoformat()}"


def held_line(report: str, period: Period, verdict: Verdict) -> str:
    """The one line ``send`` prints when the gate holds a period."""
    return (f"{head(report, period)}: held: {verdict.reason()} (send --provisional to send it "
            "now, marked provisional)")


def verdict_line(report: str, period: Period, verdict: Verdict) -> str:
    """The line ``generate`` prints on stderr: the gate's verdict on what it made."""
    if verdict.ok:
        return f"{head(report, period)}: freshness gate: {verdict.reason()}"
    return (f"{head(report, period)}: freshness gate: {verdict.reason()}; the PDF is marked "
            "provisional")


def alert_gate(
    config: Config, report: ReportConfig, period: Period, verdict: Verdict, env: Mapping[str, str],
    *, backend: Any, now: datetime, recipients: int | None = None,
) -> bool:
    """Tell ``[alerts] recipients`` that ``period`` is held, or, with ``recipients``, that it was
    sent provisional to that many: the report, the period, the failed rules and their reason.
    Whether the alert went out."""
    from reports.schedule.alerts import alert_hold, mail_alerter
    from reports.schedule.firetimes import RunRequest

    request = RunRequest(report.name, now, period.end + timedelta(days=1), period, reason="send")
    return alert_hold(
        mail_alerter(config, env, backend), config, request,
        "held" if recipients is None else PROVISIONAL, verdict.reason(),
        rules=list(dict.fromkeys(f.rule for f in verdict.failed)), recipients=recipients)


def tell_alerts(
    config: Config, ledger: Any, report: ReportConfig, period: Period, verdict: Verdict,
    env: Mapping[str, str], *, backend: Any, clock: Clock, held: bool,
) -> None:
    """The gate's alerts a send owes ``[alerts]``, each once per period and recorded when it
    went out (``reports.state.gatealerts``): the held alert when this send ``held`` the period,
    and the provisional alert once anyone has a provisional copy, whichever send of the period
    finds it untold (a send that stopped between its deliveries and the alert leaves it to the
    next one)."""
    from reports.state.gatealerts import HELD

    if held and ledger.alerted_at(report.name, period, HELD) is None and alert_gate(
            config, report, period, verdict, env, backend=backend, now=clock()):
        ledger.record_alerted(report.name, period, HELD)
    got = ledger.provisional_recipients(report.name, period)
    if got and ledger.alerted_at(report.name, period, PROVISIONAL) is None and alert_gate(
            config, report, period, _provisional_verdict(ledger, report, period, verdict), env,
            backend=backend, now=clock(), recipients=len(got)):
        ledger.record_alerted(report.name, period, PROVISIONAL)


def _provisional_verdict(ledger: Any, report: ReportConfig, period: Period,
                         verdict: Verdict) -> Verdict:
    """The verdict a provisional copy was sent under: this send's, or, when its data is complete
    (the final report), the latest provisional run's, as the ledger kept it."""
    if not verdict.ok:
        return verdict
    for run in ledger.runs(report.name, limit=50):
        if run.period == period and run.edition == PROVISIONAL and run.gate:
            return Verdict.from_json(json.loads(run.gate))
    return verdict


def note_hold(ledger: Any, report: ReportConfig, period: Period, verdict: Verdict, clock: Clock,
              *, state: str) -> None:
    """Note that a send held ``period`` (``state`` held) or sent it provisional, so the
    scheduler looks again at it like at its own holds, until the report's next fire time after
    the period's (a period past it is left alone: ``send`` finishes it by hand)."""
    from reports.schedule.firetimes import hold_until
    from reports.state.holds import HoldRecord

    now = clock()
    until = hold_until(report, period)
    if until is not None and until <= now:
        return
    ledger.note_hold(HoldRecord(report.name, period, period.end + timedelta(days=1), now, now,
                                until, 0, state, verdict.reason()))


def banner_for(verdict: Verdict, report: ReportConfig) -> str:
    """The provisional banner in the report's language, dates and numbers in its locale."""
    return verdict.banner(report.locale, report.lang.code)


def notice_for(verdict: Verdict, report: ReportConfig) -> Any:
    """The provisional banner of page 1 (a ``reports.report.render.Notice``), or None."""
    if verdict.ok:
        return None
    from reports.report.render import Notice

    return Notice("provisional", banner_for(verdict, report))


def replaces_line(report: ReportConfig, period: Period, sent_at: datetime) -> str:
    """The first line of a final report that replaces the provisional one sent at ``sent_at``
    (on page 1 of its PDF and first in its mail), in the report's language."""
    from reports.lang import translations
    from reports.report.fmt import long_date, period_label
    from reports.report.periods import local_date

    _ = translations(report.lang.code).gettext
    return _("This final report replaces the provisional report of %(period)s sent on "
             "%(date)s.") % {"period": period_label(period, report.locale),
                             "date": long_date(local_date(sent_at, report.timezone),
                                               report.locale)}
