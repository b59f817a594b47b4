"""The report stage in one call: collected data -> analysis -> charts -> HTML -> PDF bytes.

``render_report`` is what a render worker runs (in a child with time and memory limits); a
``RenderJob`` carries everything it needs and is picklable. Pure: no network, database or mail,
only the template folders WeasyPrint reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from reports.config import ReportConfig
from reports.report.model import ReportData
from reports.report.privacy import NAMED_POLICY, Policy, apply_learners

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
"""The built-in templates (``templates/`` at the repository root): the PDF's base folder."""


@dataclass(frozen=True)
class RenderJob:
    """Everything the render worker needs; picklable."""

    report: ReportConfig
    data: ReportData
    templates_dir: Path | None
    generated_on: date
    notice: Any = None
    """A ``reports.report.render.Notice`` on page 1 (a provisional report), or None."""
    chart_dpi: int | None = None
    """Resolution of the chart images (None: the charts module's default); the page layout
    does not depend on it."""
    policy: Policy = NAMED_POLICY
    """The learners' form and small-group suppression (see privacy.py, suppress.py)."""
    charts: tuple[Any, ...] | None = None
    """The report's ``charts.Chart`` list when another process drew it already
    (``render_charts``); None: ``render_report`` draws them."""


@dataclass(frozen=True)
class Rendered:
    """What the render worker returns."""

    pdf: bytes
    pages: int
    html: str
    """The HTML the PDF was made from (archived beside it, the web UI's preview)."""
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Charted:
    """What a charts worker returns: the charts of a job and the time they took."""

    charts: tuple[Any, ...]
    timings: dict[str, float] = field(default_factory=dict)


def analysed(job: RenderJob) -> tuple[ReportData, Any, Any]:
    from reports.report.analysis import analyse
    from reports.report.suppress import plan

    data = apply_learners(job.data, job.policy)
    hide = plan(data, job.policy.min_group_size)
    return data, hide, analyse(data, top_n=job.report.top_n, suppression=hide)


def _charts_of(job: RenderJob, analysis: Any) -> tuple[Any, ...]:
    from reports.report.charts import make_charts

    report = job.report
    return tuple(make_charts(
        analysis, accent=report.accent_color, locale=report.locale, language=report.lang.code,
        **({"dpi": job.chart_dpi} if job.chart_dpi else {})))


def render_charts(job: RenderJob) -> Charted:
    """Only the charts of ``job`` (for a process that draws while another warms up the PDF)."""
    t0 = time.perf_counter()
    _data, _hide, analysis = analysed(job)
    t1 = time.perf_counter()
    charts = _charts_of(job, analysis)
    return Charted(charts, {"analyse_s": t1 - t0, "charts_s": time.perf_counter() - t1})


def render_report(job: RenderJob, *,
                  charts_later: Callable[[], Sequence[Any]] | None = None,
                  wait_before_write: bool = False) -> Rendered:
    """analyse -> charts -> HTML -> PDF; runs in a worker process with time and memory limits.

    With ``job.charts`` given (drawn by ``render_charts`` elsewhere) it draws none and its
    ``charts_s`` is 0. With ``charts_later`` instead (another process is drawing them; calling
    it waits for them and raises that process's error), the report is laid out meanwhile
    (``latecharts``): the same PDF and HTML, ``charts_s`` the time spent waiting for them; they
    are waited for when the write needs their pixels, or right after the layout with
    ``wait_before_write`` (a warm-up that stops there if the job is waiting)."""
    if charts_later is not None and job.charts is None:
        from reports.report.latecharts import render_overlapped

        return render_overlapped(job, charts_later, wait_before_write=wait_before_write)
    from reports.report.pdf import html_to_pdf

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data, hide, analysis = analysed(job)
    t1 = time.perf_counter()
    charts = list(job.charts if job.charts is not None else _charts_of(job, analysis))
    t2 = time.perf_counter()
    html = report_html(job, data, analysis, charts)
    t3 = time.perf_counter()
    result = html_to_pdf(html, **pdf_inputs(job, data, hide))
    t4 = time.perf_counter()
    timings.update(analyse_s=t1 - t0, charts_s=t2 - t1, html_s=t3 - t2, pdf_s=t4 - t3)
    return Rendered(
        pdf=result.data, pages=result.pages, html=html, timings=timings
    )


def report_html(job: RenderJob, data: ReportData, analysis: Any, charts: Sequence[Any]) -> str:
    """The report's HTML around ``charts`` (``render.render_html`` with the job's settings)."""
    from reports.report.privacy import engagement_bands
    from reports.report.render import Branding, render_html

    report = job.report
    branding = Branding(
        org_name=report.org_name, logo=report.logo, accent_color=report.accent_color
    )
    return render_html(
        analysis, charts, branding, templates_dir=job.templates_dir,
        generated_on=job.generated_on, locale=report.locale, language=report.language,
        notice=job.notice,
        policy=job.policy, bands=engagement_bands(u.engagement_index for u in data.users),
    )


def pdf_inputs(job: RenderJob, data: ReportData, hide: Any) -> dict[str, Any]:
    """``html_to_pdf``'s arguments but the HTML: base folder, allowed roots, metadata, CSVs."""
    from reports.lang import translations
    from reports.report.csvdata import csv_attachments
    from reports.report.fmt import period_label, report_title
    from reports.report.pdf import PdfMetadata

    report, policy, lang = job.report, job.policy, job.report.lang
    _ = translations(lang.code).gettext
    label = period_label(data.period, report.locale)
    provisional = job.notice is not None and job.notice.kind == "provisional"
    roots = [TEMPLATES_DIR] + ([job.templates_dir] if job.templates_dir else [])
    if report.logo is not None:
        roots.append(report.logo.parent)
    title = _("%(org)s: %(title)s, %(period)s") % {
        "org": report.org_name, "title": report_title(data.period, lang.code), "period": label}
    metadata = PdfMetadata(
        title=_("Provisional: %(reason)s") % {"reason": title} if provisional else title,
        author="ibl-reports",
        subject=_("Learning activity of %(org)s, %(period)s") % {
            "org": report.org_name, "period": label},
        created=datetime.combine(data.period.end, dtime(23, 59, 59), tzinfo=UTC),
        keywords=("ibl.ai", "report", report.org, report.period),
        lang=lang.tag,
        identifier=f"{report.org}/{report.name}/{data.period.key}",
    )
    return {"base_dir": TEMPLATES_DIR, "allowed_roots": roots, "metadata": metadata,
            "attachments": csv_attachments(data, learners=learner_list(policy), hide=hide)}


def learner_list(policy: Policy) -> str | None:
    """The form of the per-learner CSV, or None when it is not attached."""
    return policy.learners if policy.learner_list_attached else None
