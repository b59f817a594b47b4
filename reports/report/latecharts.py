"""The report laid out while its charts are drawn in another process (the one-shot's PDF child).

``render_overlapped(job, charts_later)`` analyses, plans the charts (``chartplan``: titles, alt
texts, tables, pixel sizes, no drawing), renders the HTML with each chart named by a URL instead
of its ``data:`` URI, and has WeasyPrint parse, cascade, build and lay it out with stand-ins of
the planned size (``lateimages``), then draws the pages and subsets the fonts. Only then, when
WeasyPrint needs the charts' pixels, does it wait for them (``charts_later()``). When they are
in, the HTML is rendered again with their ``data:`` URIs (the self-contained HTML that is
archived and written by ``--html``; ~15 ms warm) and must give WeasyPrint the HTML it laid out
(``inlineimages.lift_inline_images`` names a chart ``ibl-inline:N`` either way); the PDF is then
written from that layout with the real PNGs: the file ``build.render_report`` makes in one
process. Anything else
(a template that cannot show a chart before it is drawn, or shows it differently; a chart of
another size) renders the usual way from the self-contained HTML once the charts are in.

Timings: ``charts_s`` is the time spent waiting for the charts (the part of their drawing that
the analysis, the HTML and the layout here did not cover), ``html_s`` both HTML renders,
``pdf_s`` the rest; they add up to this function's wall time.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reports.errors import RenderError
from reports.report.build import (
    Rendered,
    RenderJob,
    analysed,
    pdf_inputs,
    report_html,
)
from reports.report.chartplan import DEFAULT_DPI, plan_charts
from reports.report.charts import Chart
from reports.report.lateimages import SCHEME, Arrival, LateImage, LateImageMismatch, LateImages


@dataclass(frozen=True)
class LateChart(Chart):
    """A chart laid out before it is drawn: its ``data_uri`` is a URL the PDF stage knows."""

    url: str = ""

    @property
    def data_uri(self) -> str:
        """The URL the HTML names it by until it is drawn."""
        return self.url


def render_overlapped(job: RenderJob, charts_later: Callable[[], Sequence[Any]], *,
                      wait_before_write: bool = False) -> Rendered:
    """``render_report(job)`` with the charts drawn elsewhere meanwhile (see the module doc;
    ``wait_before_write``: ``LateImages``')."""
    from reports.report.pdf import html_to_pdf

    t0 = time.perf_counter()
    data, hide, analysis = analysed(job)
    t1 = time.perf_counter()
    report = job.report
    nonce = secrets.token_hex(8)
    late = [
        LateChart(p.key, p.title, p.alt, b"", p.table, p.width_px, p.height_px,
                  url=f"{SCHEME}{nonce}/{i}")
        for i, p in enumerate(plan_charts(analysis, dpi=job.chart_dpi or DEFAULT_DPI,
                                          locale=report.locale, language=report.lang.code))
    ]
    inputs = pdf_inputs(job, data, hide)
    try:
        early: str | None = report_html(job, data, analysis, late)
    except RenderError:  # a template that needs the drawn chart: the usual way, below
        early = None
    t2 = time.perf_counter()
    arrived = _Arrived(job, data, analysis, charts_later)

    def arrive() -> Arrival:
        charts, html = arrived.get()
        if len(charts) != len(late):  # the rest: pdf.html_to_pdf checks the HTML
            raise LateImageMismatch("the charts drawn are not the ones laid out")
        return Arrival({c.url: chart.png for c, chart in zip(late, charts, strict=True)}, html)

    result = None
    if early is not None:
        images = [LateImage(c.url, c.width_px, c.height_px) for c in late]
        try:
            result = html_to_pdf(early, **inputs,
                                 late=LateImages(images, arrive, wait_before_write))
        except LateImageMismatch:
            result = None
    if result is None:
        result = html_to_pdf(arrived.get()[1], **inputs)
    total = time.perf_counter() - t0
    timings = {"analyse_s": t1 - t0, "charts_s": arrived.waited_s,
               "html_s": t2 - t1 + arrived.html_s}
    timings["pdf_s"] = max(0.0, total - sum(timings.values()))
    return Rendered(pdf=result.data, pages=result.pages, html=arrived.get()[1], timings=timings)


class _Arrived:
    """The drawn charts and the self-contained HTML around them, waited for once."""

    def __init__(self, job: RenderJob, data: Any, analysis: Any,
                 charts_later: Callable[[], Sequence[Any]]) -> None:
        self.job, self.data, self.analysis, self.later = job, data, analysis, charts_later
        self.waited_s = self.html_s = 0.0
        self._got: tuple[tuple[Any, ...], str] | None = None

    def get(self) -> tuple[tuple[Any, ...], str]:
        if self._got is None:
            t0 = time.perf_counter()
            charts = tuple(self.later())
            t1 = time.perf_counter()
            html = report_html(self.job, self.data, self.analysis, charts)
            self.waited_s, self.html_s = t1 - t0, time.perf_counter() - t1
            self._got = charts, html
        return self._got
