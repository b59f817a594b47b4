"""Alerts: the one message sent to ``[alerts] recipients`` when a scheduled run fails, or when
a period is held by the freshness gate, sent provisional, goes stale or is given up."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reports.config import Config
from reports.errors import MailError
from reports.logs import log_event
from reports.schedule.firetimes import RunRequest
from reports.schedule.runner import RunOutcome

# The daemon's events keep one logger name, whichever module of the stage logs them.
log = logging.getLogger("reports.schedule.scheduler")

Alerter = Callable[[str, str], None]
"""Sends one alert message: (subject, text)."""


def mail_alerter(config: Config, env: Mapping[str, str], backend: Any = None) -> Alerter | None:
    """The default Alerter: mail ``[alerts] recipients`` (None when there are none), through
    ``backend`` or the one ``[email]`` configures."""
    recipients = list(config.alerts.recipients)
    if not recipients:
        return None

    def send(subject: str, text: str) -> None:
        from reports.delivery.backends import backend_from_config
        from reports.delivery.mailer import send_alert

        report = send_alert(backend or backend_from_config(config.email, env),
                            config.email.from_, recipients, subject, text)
        if report.failed:
            raise MailError("the alert was not delivered: " + "; ".join(report.lines()))

    return send


def alert_failed_run(
    alerter: Alerter | None, config: Config, request: RunRequest, outcome: RunOutcome
) -> None:
    """Send the one alert for a failed run, if there is an alerter; log whether it went out."""
    if alerter is None:
        return
    subject, text = alert_message(config, request, outcome)
    try:
        alerter(subject, text)
    except Exception as exc:  # an alert that cannot be sent is logged, never fatal
        log_event(log, "alert.failed", level=logging.ERROR, report=request.report,
                  period=request.period.key, error=f"{type(exc).__name__}: {exc}")
    else:
        log_event(log, "alert.sent", report=request.report, period=request.period.key,
                  recipients=len(config.alerts.recipients))


def alert_message(config: Config, request: RunRequest, outcome: RunOutcome) -> tuple[str, str]:
    """The subject and text of the one alert sent for a failed run."""
    subject = f"ibl-reports: {request.report} failed for {request.period.key}"
    command = (
        f"ibl-reports --config {config.source} send --report {request.report} "
        f"--as-of {request.as_of.isoformat()}"
    )
    lines = [
        f"The {request.reason} run of report {request.report!r} for the period "
        f"{request.period.start.isoformat()} to {request.period.end.isoformat()} failed.",
        "",
        f"Error: {outcome.error or outcome.kind.value}",
    ]
    if outcome.output_tail:
        lines += ["", "Last output of the run:", outcome.output_tail]
    lines += [
        "",
        "What to do:",
        "  1. Read the error above and the scheduler log; fix its cause (API key, API",
        "     availability, SMTP settings, disk space).",
        "  2. Send the period again; recipients who already got it are skipped:",
        f"       {command}",
        "  3. Or restart the scheduler: its catch-up re-sends missed periods",
        "     (catch_up = latest or all).",
        "",
        "You get this message once per failed run.",
    ]
    return subject, "\n".join(lines)


_HOLD_TEXT = {
    "held": ("held", "was held by the freshness gate: its data is not complete yet. The "
             "scheduler checks a scheduled period again every hold_retry_every and applies "
             "on_stale after hold_for; a period held by a manual send goes out when it is "
             "sent again after the data has arrived. You get this message once per period."),
    "provisional": ("sent provisional", "was sent marked provisional{to}, although the "
                    "freshness gate found its data not complete yet (by send --provisional, or "
                    "by the scheduler after hold_for). You get this message once per period."),
    "stale": ("still held", "is still held after hold_for (on_stale = \"alert\"); the scheduler "
              "keeps checking and sends it when the data is complete."),
    "skipped": ("skipped", "was not sent: its data was still not complete when it was given "
                "up (on_stale = \"skip\", or the next period came)."),
}


def alert_hold(alerter: Alerter | None, config: Config, request: RunRequest, kind: str,
               reason: str, *, rules: Sequence[str] = (), recipients: int | None = None) -> bool:
    """The one alert for a period that was held, sent provisional, went stale or was skipped;
    whether it went out.

    ``rules`` names the gate's failed rules (when the sender knows them); ``recipients`` is how
    many got a provisional report.
    """
    if alerter is None:
        return False
    title, what = _HOLD_TEXT[kind]
    count = "" if recipients is None else (
        f" to {recipients} recipient" + ("" if recipients == 1 else "s"))
    period = f"{request.period.start.isoformat()} to {request.period.end.isoformat()}"
    base = (f"ibl-reports --config {config.source} send --report {request.report} "
            f"--as-of {request.as_of.isoformat()}")
    lines = [
        textwrap.fill(f"The report {request.report!r} for the period {period} "
                      + what.format(to=count), 72),
        "",
    ]
    if rules:
        lines.append("Failed rules: " + ", ".join(rules))
    lines += [f"Reason: {reason or 'see the scheduler log'}", ""]
    if kind == "provisional":
        lines += [
            "The final report follows, once, to everyone who got the provisional one:",
            "when the data has arrived (a scheduled period is checked again every",
            "hold_retry_every), or when the figures are real (a true drop) and the rule",
            "is turned off for this report in [reports.freshness] (or its threshold",
            "lowered). To send it by hand:",
            f"       {base}",
        ]
    else:
        lines += [
            "To send it now anyway, marked provisional:",
            f"       {base} --provisional",
            "If the figures are real (a true drop), turn the rule off for this report in",
            "[reports.freshness] (or lower its threshold) and send again:",
            f"       {base}",
        ]
    subject = f"ibl-reports: {request.report} {title} for {request.period.key}"
    try:
        alerter(subject, "\n".join(lines))
    except Exception as exc:  # an alert that cannot be sent is logged, never fatal
        log_event(log, "alert.failed", level=logging.ERROR, report=request.report,
                  period=request.period.key, error=f"{type(exc).__name__}: {exc}")
        return False
    log_event(log, "alert.sent", report=request.report, period=request.period.key,
              kind=kind, recipients=len(config.alerts.recipients))
    return True
