"""The messages of one send: the body's numbers and one message per recipient.

The email body shows the same numbers as the PDF (one analysis, ``mail_summary``); every
recipient gets their own message with a Message-ID derived from (report, period, recipient),
so a retry of the same delivery carries the same Message-ID. A provisional copy (sent despite
the freshness gate) has "[Provisional]" in its subject, its notice as the body's first line and a
Message-ID of its own; the final report that replaces it says so in its subject and first line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from reports.config import Config, ReportConfig
from reports.report.model import ReportData
from reports.report.periods import Period
from reports.report.privacy import NAMED_POLICY, Policy, apply_learners


def mail_summary(report: ReportConfig, data: ReportData, policy: Policy = NAMED_POLICY) -> Any:
    """The email body's numbers, from the same analysis as the PDF (and the same policy:
    learners' form, small groups suppressed)."""
    from reports.delivery.summary import summarise
    from reports.report.analysis import analyse
    from reports.report.fmt import report_title
    from reports.report.suppress import plan

    lang = report.lang
    data = apply_learners(data, policy)
    analysis = analyse(data, top_n=report.top_n, suppression=plan(data, policy.min_group_size))
    return summarise(
        analysis, title=report_title(data.period, lang.code),
        org_name=report.org_name, report_name=report.name, locale=report.locale,
        accent_color=report.accent_color, language=lang.code,
    )


def report_messages(
    config: Config, report: ReportConfig, period: Period, data: ReportData, pdf: bytes,
    recipients: Sequence[str], now: datetime, *, edition: str | None = None, notice: str = "",
    policy: Policy = NAMED_POLICY,
) -> dict[str, Any]:
    """One message per recipient, the PDF (and the CSV files if configured) attached.

    ``edition``: ``provisional``, or ``replacement`` (the final report replacing a provisional
    copy); ``notice``: the body's first line.
    """
    from dataclasses import replace

    from reports.addresses import parse_address
    from reports.delivery.mail import (
        Attachment,
        build_message,
        edition_subject,
        format_subject,
        make_message_id,
        render_bodies,
    )
    from reports.report.build import learner_list
    from reports.report.csvdata import csv_attachments
    from reports.report.fmt import period_label, period_title
    from reports.report.suppress import plan

    summary = replace(mail_summary(report, data, policy), notice=notice)
    text, html = render_bodies(summary, override_dir=config.templates.dir)
    subject = edition_subject(format_subject(
        config.email.subject, period_title=period_title(period, summary.language),
        org_name=report.org_name, period_label=period_label(period, report.locale),
        report=report.name, title=summary.title,
    ), edition or "final")
    provisional = edition == "provisional"
    key = f"{period.key}.provisional" if provisional else period.key
    domain = parse_address(config.email.from_, what="email.from").domain
    extras = (
        [Attachment(a.name, a.data, a.mime) for a in csv_attachments(
            apply_learners(data, policy), learners=learner_list(policy),
            hide=plan(data, policy.min_group_size))]
        if config.email.attach_csv else []
    )
    return {
        recipient: build_message(
            sender=config.email.from_, recipient=recipient, subject=subject, text_body=text,
            html_body=html, pdf=pdf,
            pdf_name=f"{report.name}_{period.key}{'_provisional' if provisional else ''}.pdf",
            message_id=make_message_id(report.name, key, recipient, domain),
            date=now, extra_attachments=extras, report=report.name, period_key=period.key,
            edition="provisional" if provisional else None, language=summary.lang_tag,
        )
        for recipient in recipients
    }
