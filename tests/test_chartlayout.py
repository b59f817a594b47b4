"""Chart margins: ``chartlayout.fit`` chooses what ``tight_layout`` would, and nothing drawn
leaves the figure, whatever the script or the length of a course name."""

from __future__ import annotations

from dataclasses import replace

import pytest
from matplotlib.figure import Figure

from reports.report.analysis import Analysis, analyse
from reports.report.chartcanvas import forget
from reports.report.chartlayout import fit
from reports.report.chartplan import plan_charts
from reports.report.charts import FIGURES, PAD, _style, _texts
from tests._sample import realistic

LONG_NAME = "Ünïcode " + "Advanced Topics in Very Long Course Naming " * 5  # 222 characters
DPI = 72


def _analysis(kind: str) -> Analysis:
    a = analyse(realistic(kind=kind), top_n=10)
    first = replace(a.top_courses[0], name=LONG_NAME)
    return replace(a, top_courses=(first, *a.top_courses[1:]))


def _params(fig: Figure) -> list[float]:
    p = fig.subplotpars
    return [p.left, p.right, p.bottom, p.top, p.wspace]


@pytest.mark.parametrize(
    ("language", "kind"),
    [("en", "monthly"), ("de", "weekly"), ("ar", "weekly")],
)
def test_fit_gives_tight_layouts_margins_and_nothing_drawn_leaves_the_figure(
    language: str, kind: str,
) -> None:
    a = _analysis(kind)
    assert len(LONG_NAME) > 200
    plans = plan_charts(a, dpi=DPI, locale=language, language=language)
    assert len(plans) == 3
    with _style(language, _texts(a, language, language)):
        for plan in plans:
            figure, w_pad = FIGURES[plan.key]
            fitted = figure(a, plan, "#0072B2", DPI, language, language)
            forget()  # two figures, not the one kept figure twice
            tight = figure(a, plan, "#0072B2", DPI, language, language)
            fit(fitted, pad=PAD, w_pad=w_pad)
            tight.tight_layout(pad=PAD, w_pad=w_pad)
            name = plan.key
            assert _params(fitted) == pytest.approx(_params(tight), abs=1e-9), name
            # Every text, tick label, title and bar label where it is drawn (titles at full
            # width, not collapsed as for the layout).
            drawn = fitted.get_tightbbox()
            width, height = fitted.get_size_inches()
            tolerance = 0.5 / DPI
            assert drawn.x0 >= -tolerance and drawn.y0 >= -tolerance, (name, drawn)
            assert drawn.x1 <= width + tolerance and drawn.y1 <= height + tolerance, (name, drawn)
