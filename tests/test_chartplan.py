"""The chart plan: everything about a report's charts but their pixels, without drawing; the
one-shot lays the report out from it, so it must be what ``make_charts`` then draws."""

from __future__ import annotations

import sys

import pytest

from reports.report.analysis import analyse
from reports.report.chartplan import canvas_px, plan_charts
from reports.report.charts import make_charts
from tests._sample import empty, realistic


@pytest.mark.parametrize(("top_n", "dpi", "kind", "locale", "language"), [
    (1, 20, "weekly", "en", "en"), (3, 33, "monthly", "de", "de"), (15, 72, "weekly", "ar", "ar"),
    (7, 150, "weekly", "en", "en")])
def test_the_plan_is_what_is_drawn(top_n: int, dpi: int, kind: str, locale: str,
                                   language: str) -> None:
    """Same charts, words, tables and pixel sizes as the drawn charts (matplotlib's canvas
    truncates inches x dpi: 20, 33 and 72 dpi give fractional products)."""
    analysis = analyse(realistic(kind=kind), top_n=top_n)
    plans = plan_charts(analysis, dpi=dpi, locale=locale, language=language)
    charts = make_charts(analysis, accent="#0072B2", dpi=dpi, locale=locale, language=language)
    assert [(p.key, p.title, p.alt, p.table, p.width_px, p.height_px) for p in plans] == [
        (c.key, c.title, c.alt, c.table, c.width_px, c.height_px) for c in charts]
    assert len(plans) == 3


def test_a_report_with_nothing_to_draw_plans_nothing() -> None:
    assert plan_charts(analyse(empty(), top_n=5)) == []
    assert [p.key for p in plan_charts(analyse(empty(with_previous=True), top_n=5))] == [
        "period-comparison"]


def test_planning_needs_no_matplotlib() -> None:
    """The PDF child plans the charts without importing matplotlib (~0.4 s of CPU)."""
    import subprocess

    code = ("import sys; from reports.report.analysis import analyse; "
            "from reports.report.chartplan import plan_charts; "
            "from tests._sample import realistic; "
            "assert len(plan_charts(analyse(realistic(), top_n=5))) == 3; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pixels_are_counted_as_matplotlib_counts_them() -> None:
    assert canvas_px(6.8, 150) == 1020
    assert canvas_px(1.64, 20) == 32  # 32.8: truncated
    assert canvas_px(2.3, 50) == 115  # 114.99999999999999: within matplotlib's 1e-8
