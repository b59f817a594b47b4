"""The email body's numbers: the PDF's first page (KPIs, comparison, highlights) as plain values.

Built from the same analysis and KPI cards as the PDF, so the email and the report agree; every
change says what it is compared with (``vs August``, ``vs the week of Nov 2``).
"""

from __future__ import annotations

from reports.delivery.mail import MailKpi, MailSummary
from reports.lang import number, resolve, translations
from reports.report import fmt
from reports.report.analysis import Analysis
from reports.report.highlights import highlights
from reports.report.render import kpi_cards


def summarise(
    analysis: Analysis, *, title: str, org_name: str, report_name: str, locale: str = "en",
    accent_color: str = "#0072B2", language: str = "en",
) -> MailSummary:
    """The MailSummary of one report's analysis, in ``language`` (a catalog of reports.lang)."""
    _ = translations(language).gettext
    compared = fmt.compared_with(analysis.period, analysis.previous_period, locale, language)
    cards = []
    for card in kpi_cards(analysis, locale, language):
        note = _("vs %(previous)s in %(compared)s") % {
            "previous": number(card.previous, language), "compared": _nowrap_tail(compared),
        } if card.previous else card.note
        cards.append(MailKpi(card.label, card.value, card.delta, card.direction, card.tone, note))
    return MailSummary(
        title=title,
        org_name=org_name,
        period_label=fmt.period_label(analysis.period, locale),
        report_name=report_name,
        kpis=[(c.label, c.value, _("%(change)s vs %(compared)s") % {
            "change": c.change, "compared": compared} if c.direction != "none" else c.change)
            for c in cards],
        highlights=list(highlights(analysis, locale=locale, language=language)),
        compared_with=compared,
        accent_color=accent_color,
        cards=cards,
        language=language,
        lang_tag=resolve(locale, language).tag,
        direction=resolve(locale, language).direction,
    )


def _nowrap_tail(text: str) -> str:
    """``text`` with its last two words joined by a no-break space (``Nov 2`` stays whole)."""
    head, sep, tail = text.rpartition(" ")
    return f"{head}\u00a0{tail}" if sep else text
