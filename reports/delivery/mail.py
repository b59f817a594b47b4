"""Email messages: one per recipient, text + HTML bodies, the PDF attached.

Everything that becomes a header is checked first with the rules of ``reports.addresses``: a CR
or LF (also hidden in an RFC 2047 encoded word) is refused, and addresses are parsed strictly;
a refused value raises a MailAddressError naming the recipient.

The Message-ID of a report message is derived from (report, period, recipient), so every retry
of the same delivery carries the same Message-ID.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from reports.addresses import DOMAIN_RE, check_header_text, parse_address, show
from reports.errors import ConfigError, MailAddressError
from reports.lang import translations
from reports.report import BUILTIN_TEMPLATES

TEXT_TEMPLATE = "email/body.txt"
HTML_TEMPLATE = "email/body.html"

_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,150}$")


def make_message_id(report: str, period_key: str, recipient: str, domain: str) -> str:
    """The Message-ID of ``report`` for ``period_key`` to ``recipient``; the same on every try."""
    if not DOMAIN_RE.match(domain):
        raise MailAddressError(f"{show(domain)!r} is not a domain for a Message-ID")
    token = hashlib.sha256(
        f"{report}\x00{period_key}\x00{recipient.strip().lower()}".encode()
    ).hexdigest()[:24]
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", f"{report}.{period_key}")
    return f"<ibl-reports.{safe}.{token}@{domain}>"


@dataclass(frozen=True)
class Attachment:
    """An extra file attached besides the PDF (e.g. a CSV)."""

    filename: str
    data: bytes
    mime_type: str = "text/csv"


def _check_filename(name: str, recipient: str) -> str:
    if not _FILENAME_RE.match(name):
        raise MailAddressError(
            f"the attachment name {show(name)!r} must be letters, digits, '.', '_', '-' or "
            "spaces", recipient=show(recipient),
        )
    return name


def build_message(
    *, sender: str, recipient: str, subject: str, text_body: str, html_body: str, pdf: bytes,
    pdf_name: str, message_id: str, date: datetime,
    extra_attachments: Sequence[Attachment] = (), report: str | None = None,
    period_key: str | None = None, edition: str | None = None, language: str | None = None,
) -> EmailMessage:
    """One message to one recipient: text + HTML alternative, the PDF (and CSVs) attached.

    ``report``, ``period_key`` and ``edition`` (``provisional``) add X-IBL-Report /
    X-IBL-Period / X-IBL-Edition headers (they name the outbox file and let an operator filter
    what was sent). ``language`` (a BCP 47 tag) becomes the Content-Language header (RFC 3282),
    so a reader's client and screen reader pick the right language.
    """
    from_addr = parse_address(sender, what="sender address", recipient=recipient)
    to_addr = parse_address(recipient, what="recipient address")
    check_header_text(subject, what="subject", recipient=recipient)
    check_header_text(message_id, what="Message-ID", recipient=recipient)
    if not re.match(r"^<[^<>\s@]+@[^<>\s@]+>$", message_id):
        raise MailAddressError(f"{message_id!r} is not a Message-ID", recipient=recipient)
    if date.tzinfo is None:
        raise MailAddressError("the Date header needs an aware datetime", recipient=recipient)
    _check_filename(pdf_name, recipient)

    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = from_addr
    message["To"] = to_addr
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    for header, value in (("X-IBL-Report", report), ("X-IBL-Period", period_key),
                          ("X-IBL-Edition", edition)):
        if value is not None:
            check_header_text(value, what=header, recipient=recipient)
            message[header] = value
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text_body, subtype="plain", charset="utf-8")
    message.add_alternative(html_body, subtype="html", charset="utf-8")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name)
    for extra in extra_attachments:
        maintype, _, subtype = extra.mime_type.partition("/")
        message.add_attachment(extra.data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=_check_filename(extra.filename, recipient))
    if language is not None:  # after the body: set_content drops Content-* headers
        message["Content-Language"] = check_header_text(
            language, what="Content-Language", recipient=recipient)
    return message


def format_subject(template: str, *, period_title: str, org_name: str, period_label: str,
                   report: str, title: str | None = None) -> str:
    """The subject from the ``email.subject`` template (str.format fields); ``title`` is the
    report's title in its language (default: ``{period_title} report``)."""
    if title is None:
        title = f"{period_title} report"
    try:
        subject = template.format(period_title=period_title, org_name=org_name,
                                  period_label=period_label, report=report, title=title)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"the subject template {template!r} is invalid ({exc.__class__.__name__}: {exc}); "
            "fields: title, period_title, org_name, period_label, report", key="email.subject",
        ) from exc
    check_header_text(subject, what="subject")
    return subject


@dataclass(frozen=True)
class MailKpi:
    """One KPI of the email body, as on the PDF's first page."""

    label: str
    value: str
    change: str
    """The comparison, e.g. ``+8% (+92)``, ``no change`` or ``no previous data``."""
    direction: str = "none"
    """``up``, ``down``, ``flat`` or ``none``: the arrow."""
    tone: str = "neutral"
    """``good``, ``bad`` or ``neutral``: the colour of the comparison."""
    note: str = ""
    """The line under it, e.g. ``vs 1,112 in the week of Nov 2``."""


@dataclass(frozen=True)
class MailSummary:
    """What the email body shows: the headline numbers of the report."""

    title: str
    org_name: str
    period_label: str
    report_name: str
    kpis: list[tuple[str, str, str]] = field(default_factory=list)
    """(label, value, change text), e.g. ("Active users", "1,204", "+8% vs the week of Nov 2")."""
    highlights: list[str] = field(default_factory=list)
    language: str = "en"
    """The catalog the bodies are written from (``reports.lang``)."""
    lang_tag: str = "en"
    """BCP 47 tag for ``<html lang>`` and Content-Language."""
    direction: str = "ltr"
    """``ltr`` or ``rtl``, for ``<html dir>``."""
    notice: str = ""
    """The first line of the body when set: the report is provisional, or replaces one."""
    compared_with: str = ""
    """What the figures are compared with, after "vs": ``August``, ``the week of Nov 2``."""
    accent_color: str = "#0072B2"
    cards: list[MailKpi] = field(default_factory=list)
    """The KPIs with their arrows and colours (the HTML body's cards)."""


def email_reference() -> str:
    """What ``email/body.txt`` and ``email/body.html`` receive, as the README's Markdown."""
    from reports.report.template_vars import Variable, markdown_table

    summary = Variable(
        "summary", "The headline numbers of the report; `kpis` are (label, value, change text) "
        "triples, `cards` the same KPIs with their arrows and colours, `highlights` sentences, "
        "`notice` a first line or empty, `compared_with` what follows \"vs\".", MailSummary,
    )
    return markdown_table((summary,), (MailKpi,))


PROVISIONAL_PREFIX = "[Provisional] "
REPLACES_SUFFIX = " (final: replaces the provisional report)"


def edition_subject(subject: str, edition: str, language: str = "en") -> str:
    """The subject of a ``provisional`` report, of a ``replacement`` for one, or as is (in the
    report's ``language``; in English ``PROVISIONAL_PREFIX + subject``, ``subject +
    REPLACES_SUFFIX``)."""
    _ = translations(language).gettext
    if edition == "provisional":
        return _("[Provisional] %(subject)s") % {"subject": subject}
    if edition == "replacement":
        return _("%(subject)s (final: replaces the provisional report)") % {"subject": subject}
    return subject


def _notice_first(summary: MailSummary, text: str, html: str) -> tuple[str, str]:
    """The notice leads both bodies, even when a user's templates leave it out."""
    import markupsafe

    if not summary.notice:
        return text, html
    if not text.startswith(summary.notice):
        text = f"{summary.notice}\n\n{text}"
    escaped = str(markupsafe.escape(summary.notice))
    if escaped not in html:
        match = re.search(r"<body[^>]*>", html, re.IGNORECASE)
        tag = f"<p><strong>{escaped}</strong></p>"
        html = html[: match.end()] + tag + html[match.end():] if match else tag + html
    return text, html


def render_bodies(
    summary: MailSummary, templates_dir: Path = BUILTIN_TEMPLATES, *,
    override_dir: Path | None = None,
) -> tuple[str, str]:
    """The (text, HTML) bodies; templates in ``override_dir`` win over the built-in ones."""
    import jinja2  # lazy: building or checking a message needs no Jinja2

    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.FileSystemLoader(templates_dir))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(summary.language), newstyle=True)
    try:
        text = env.get_template(TEXT_TEMPLATE).render(summary=summary)
        html = env.get_template(HTML_TEMPLATE).render(summary=summary)
    except jinja2.TemplateError as exc:
        from reports.report.template_errors import describe

        raise ConfigError(f"cannot render the email: {describe(exc)}",
                          key="templates.dir") from exc
    return _notice_first(summary, text, html)
