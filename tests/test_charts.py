"""Charts: deterministic print-sized PNGs with alt text and the numbers behind them."""

from __future__ import annotations

import struct
import subprocess
import sys
from dataclasses import replace

import matplotlib
import pytest

from reports.report.analysis import Analysis, analyse
from reports.report.charts import DEFAULT_DPI, make_charts, short_name
from reports.report.model import CourseActivity
from tests._sample import empty, realistic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.fixture(scope="module")
def weekly() -> Analysis:
    return analyse(realistic(), top_n=15)


def test_three_charts_with_title_alt_png_and_table(weekly: Analysis) -> None:
    charts = make_charts(weekly, accent="#0072B2")
    assert [c.key for c in charts] == [
        "period-comparison", "active-users-per-course", "daily-enrollments",
    ]
    for chart in charts:
        assert chart.title and chart.alt.endswith(".")
        assert _png_size(chart.png) == (chart.width_px, chart.height_px)
        # As wide as the A4 text column at print resolution, never a huge bitmap.
        assert chart.width_px == round(6.8 * DEFAULT_DPI)
        assert chart.height_px < 1400
        assert chart.data_uri.startswith("data:image/png;base64,iVBORw0KGgo")
        assert b"Software" not in chart.png and b"matplotlib" not in chart.png


def test_course_chart_table_and_alt_carry_the_numbers(weekly: Analysis) -> None:
    chart = make_charts(weekly, accent="#0072B2")[1]
    assert chart.table.header == ("Course", "Course ID", "Active users")
    assert chart.table.rows == tuple((r.name, r.course_id, r.users) for r in weekly.top_courses)
    top = weekly.top_courses[0]
    assert f"{top.name} leads with {top.users}" in chart.alt
    assert "top 15 courses" in chart.alt


def test_daily_chart_table_keeps_missing_days_missing(weekly: Analysis) -> None:
    gap = weekly.daily[2]
    hole = replace(weekly, daily=(*weekly.daily[:2], replace(gap, enrollments=None,
                                                            unenrollments=None),
                                  *weekly.daily[3:]))
    chart = make_charts(hole, accent="#0072B2")[2]
    assert chart.table.header == ("Date", "Enrollments", "Unenrollments")
    assert chart.table.rows[2] == (gap.day.isoformat(), None, None)
    assert chart.table.rows[0] == (
        weekly.daily[0].day.isoformat(), weekly.daily[0].enrollments,
        weekly.daily[0].unenrollments,
    )
    assert "no data for 1 day" in chart.alt
    assert chart.alt.startswith("Bar chart of daily enrollments")


def test_monthly_daily_chart_is_a_line_chart() -> None:
    chart = make_charts(analyse(realistic(kind="monthly"), top_n=10), accent="#009E73")[2]
    assert chart.alt.startswith("Line chart")
    assert len(chart.table.rows) == 31


def test_comparison_table_has_previous_current_change(weekly: Analysis) -> None:
    chart = make_charts(weekly, accent="#0072B2")[0]
    assert chart.table.rows[0] == ("Active users", 1036, 1160, 124, 12.0)
    assert "Active users: 1,160 vs 1,036" in chart.alt


def test_same_input_same_bytes_whatever_the_users_rc_settings(weekly: Analysis) -> None:
    baseline = [c.png for c in make_charts(weekly, accent="#0072B2")]
    hostile = {
        "font.size": 30, "figure.facecolor": "red", "axes.facecolor": "black",
        "text.parse_math": True, "font.family": "serif", "savefig.dpi": 20,
    }
    with matplotlib.rc_context(hostile):
        again = [c.png for c in make_charts(weekly, accent="#0072B2")]
    assert again == baseline


def test_accent_and_dpi_change_the_image(weekly: Analysis) -> None:
    blue = make_charts(weekly, accent="#0072B2")[1]
    orange = make_charts(weekly, accent="#E69F00")[1]
    assert blue.png != orange.png
    small = make_charts(weekly, accent="#0072B2", dpi=100)[1]
    assert small.width_px == 680 and _png_size(small.png)[0] == 680


@pytest.mark.parametrize(("top_n", "dpi"), [(3, 20), (15, 72)])
def test_any_resolution_gives_whole_charts(top_n: int, dpi: int) -> None:
    """The PNG is the canvas as drawn: matplotlib truncates inches x dpi (the course chart of
    3 rows is 1.64 in, 32 px at 20 dpi), so a rounded size asked for a pixel row too many."""
    charts = make_charts(analyse(realistic(), top_n=top_n), accent="#0072B2", dpi=dpi)
    assert len(charts) == 3
    for chart in charts:
        assert _png_size(chart.png) == (chart.width_px, chart.height_px)
        assert chart.width_px == int(6.8 * dpi)


def test_dollar_signs_and_tex_in_names_are_drawn_literally(weekly: Analysis) -> None:
    # With mathtext on, "$\notacommand$" raises while drawing; literal text just draws.
    row = replace(weekly.top_courses[0], name=r"Finance $\notacommand{x}$ & $5 fees $")
    analysis = replace(weekly, top_courses=(row, *weekly.top_courses[1:]))
    chart = make_charts(analysis, accent="#0072B2")[1]
    assert chart.table.rows[0][0] == r"Finance $\notacommand{x}$ & $5 fees $"
    assert r"$\notacommand{x}$" in chart.alt


def test_nothing_to_draw_gives_no_charts() -> None:
    assert make_charts(analyse(empty(), top_n=5), accent="#0072B2") == []
    only_comparison = make_charts(analyse(empty(with_previous=True), top_n=5), accent="#0072B2")
    assert [c.key for c in only_comparison] == ["period-comparison"]
    assert "Active users: 0 vs 5" in only_comparison[0].alt


def test_locale_formats_the_alt_text() -> None:
    data = realistic()
    data = replace(data, courses=(CourseActivity("big", "Big course", 12345), *data.courses))
    chart = make_charts(analyse(data, top_n=5), accent="#0072B2", locale="de")[1]
    assert "Big course leads with 12.345" in chart.alt


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Calculus I", "Calculus I", id="short"),
        pytest.param("Introduction to Machine Learning", "Introduction to Machine\nLearning",
                     id="wrapped"),
        pytest.param("Academic Writing for Graduate Students: Structure, Argument and Style",
                     "Academic Writing for Graduate\nStudents: Structure, Argument\u2026",
                     id="truncated"),
    ],
)
def test_short_name(name: str, expected: str) -> None:
    assert short_name(name) == expected


def test_importing_the_pipeline_modules_does_not_import_matplotlib() -> None:
    code = (
        "import sys, reports.report.charts, reports.report.render, reports.report.analysis, "
        "reports.report.highlights; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("language", ["en", "de", "es", "fr", "pt_BR", "ar", "ja", "zh_Hans"])
def test_bar_labels_break_between_words_only(language: str) -> None:
    """The comparison chart's bar labels wrap at spaces: German "Vorzeitraum" was drawn as
    "Vorzeitrau" over "m"."""
    from reports.lang import translations
    from reports.report.charts import _wrap_label

    t = translations(language)
    for label in ("This week", "This month", "This period",
                  "Week before", "Month before", "Previous period"):
        text = t.pgettext("chart label", label)
        assert _wrap_label(text).replace("\n", " ") == " ".join(text.split()), (language, text)


def test_the_default_style_is_matplotlibs_without_its_style_module() -> None:
    """The charts set what ``matplotlib.style.use("default")`` sets (without importing
    ``matplotlib.style``, which reads every style sheet it ships)."""
    from matplotlib import style

    from reports.report.charts import NOT_STYLE, _default_style

    assert style._STYLE_BLACKLIST == NOT_STYLE
    keys = [key for key in matplotlib.rcParams if key != "backend"]
    with matplotlib.rc_context({"font.size": 3.5, "axes.grid": True}):
        with style.context("default"):
            expected = {key: matplotlib.rcParams[key] for key in keys}
        with matplotlib.rc_context(_default_style()):
            assert {key: matplotlib.rcParams[key] for key in keys} == expected
        assert matplotlib.rcParams["font.size"] == 3.5
