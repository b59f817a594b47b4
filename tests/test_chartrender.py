"""The charts' canvas (``chartrender``): glyph bitmaps and font lookups kept, the same pixels
as matplotlib's own Agg canvas, in Latin and Arabic script, drawn once and again from the kept
bitmaps."""

from __future__ import annotations

from dataclasses import replace

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.report import chartrender
from reports.report.analysis import Analysis, analyse
from reports.report.chartcanvas import forget, new_figure
from reports.report.chartlayout import fit
from reports.report.chartplan import plan_charts
from reports.report.charts import FIGURES, PAD, _style, _texts
from tests._sample import realistic

DPI = 72
LONG_NAME = "Ünïcode " + "Advanced Topics in Very Long Course Naming " * 5


def _analysis(kind: str) -> Analysis:
    a = analyse(realistic(kind=kind), top_n=10)
    first = replace(a.top_courses[0], name=LONG_NAME)
    gap = replace(a.daily[2], enrollments=None, unenrollments=None)
    return replace(a, top_courses=(first, *a.top_courses[1:]),
                   daily=(*a.daily[:2], gap, *a.daily[3:]))


def _pixels(fig: Figure) -> bytes:
    fig.canvas.draw()
    return bytes(fig.canvas.buffer_rgba())  # type: ignore[attr-defined]


@pytest.mark.parametrize(("language", "kind"), [("de", "monthly"), ("ar", "weekly")])
def test_charts_on_the_chart_canvas_are_matplotlibs_pixels(language: str, kind: str) -> None:
    a = _analysis(kind)
    plans = plan_charts(a, dpi=DPI, locale=language, language=language)
    assert len(plans) == 3
    with _style(language, _texts(a, language, language)):
        for plan in plans:
            figure, w_pad = FIGURES[plan.key]
            ours = figure(a, plan, "#0072B2", DPI, language, language)
            forget()  # two figures, not the one kept figure twice
            theirs = figure(a, plan, "#0072B2", DPI, language, language)
            FigureCanvasAgg(theirs)  # matplotlib's own canvas and renderer
            assert isinstance(ours.canvas, chartrender.ChartCanvas)
            fit(ours, pad=PAD, w_pad=w_pad)
            fit(theirs, pad=PAD, w_pad=w_pad)
            assert ours.subplotpars.__dict__ == theirs.subplotpars.__dict__, plan.key
            expected = _pixels(theirs)
            assert _pixels(ours) == expected, plan.key
            assert _pixels(ours) == expected, plan.key  # every glyph from a kept bitmap


def test_turned_and_placed_text_is_matplotlibs_pixels() -> None:
    """Texts at angles, at every fraction of a pixel (the kept bitmaps are per fraction),
    at several sizes, in Latin and Arabic, drawn twice."""
    chartrender._glyphs.clear()
    figures: list[Figure] = []
    for _ in range(2):
        fig = new_figure(1.5, 97)
        for i in range(24):
            fig.text(0.013 + i * 0.0413, 0.1 + (i % 7) * 0.1037, f"Ag 0{i} مرحبا",
                     rotation=(0, 90, 33, -12)[i % 4], fontsize=6 + i % 5 * 1.7,
                     family=["DejaVu Sans", "Noto Sans Arabic"], parse_math=False)
        figures.append(fig)
    FigureCanvasAgg(figures[1])
    expected = _pixels(figures[1])
    kept_before = len(chartrender._glyphs)
    assert _pixels(figures[0]) == expected
    assert len(chartrender._glyphs) > kept_before
    assert _pixels(figures[0]) == expected
