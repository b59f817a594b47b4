"""Kept chart figures: a chart drawn on the figure the previous report's chart was drawn on is
byte for byte the chart a new figure gives."""

from __future__ import annotations

from dataclasses import replace

from reports.report.analysis import Analysis, analyse
from reports.report.chartcanvas import forget
from reports.report.charts import make_charts
from reports.report.suppress import Suppression
from tests._sample import realistic

DPI = 40


def _pngs(a: Analysis, language: str) -> list[bytes]:
    return [c.png for c in make_charts(a, accent="#0072B2", dpi=DPI, locale=language,
                                       language=language)]


def test_charts_on_kept_figures_are_the_charts_on_new_ones() -> None:
    weekly = analyse(realistic(), top_n=6)
    gap = replace(weekly.daily[2], enrollments=None, unenrollments=None)
    # Each report changes what the next one finds on the kept figures: a line chart with its
    # x limits set and a shorter course chart (the kept figure is made taller next), then bars
    # with a missing day (shading, a 3-column legend) and hatched suppressed courses in another
    # language with the same fonts, then plain bars again.
    reports = [
        (analyse(realistic(kind="monthly"), top_n=4), "en"),
        (replace(analyse(realistic(), top_n=6, suppression=Suppression(k=60)),
                 daily=(*weekly.daily[:2], gap, *weekly.daily[3:])), "de"),
        (weekly, "en"),
    ]
    kept = [_pngs(a, language) for a, language in reports]
    new = []
    for a, language in reports:
        forget()
        new.append(_pngs(a, language))
    assert kept == new
    assert all(len(set(charts)) == 3 for charts in zip(*new, strict=True))  # all different


def test_a_figure_is_kept_per_font_list_and_the_least_recently_used_goes() -> None:
    # A batch's orgs alternate between font lists: each list keeps its own figure of a kind, so
    # coming back to a list draws on its figure again instead of building a new one.
    import matplotlib

    from reports.report.chartcanvas import KEPT_PER_KIND, chart_axes

    def figure(families: list[str], kind: str = "k") -> object:
        with matplotlib.rc_context({"font.family": families}):
            return chart_axes(kind, 2.0, DPI, 1)[0]

    forget()
    lists = [["DejaVu Sans"], ["DejaVu Sans", "Noto Sans CJK JP"], ["serif"], ["monospace"]]
    first = [figure(families) for families in lists[:KEPT_PER_KIND]]
    assert [figure(families) for families in lists[:KEPT_PER_KIND]] == first
    assert figure(["DejaVu Sans"], kind="other") is not first[0]  # kinds do not share
    figure(lists[KEPT_PER_KIND])  # one list too many: the least recently used (the first) goes
    assert figure(lists[1]) is first[1]
    assert figure(lists[0]) is not first[0]
    forget()
