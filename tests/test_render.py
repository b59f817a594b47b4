"""The HTML stage: content, escaping, overrides, branding, locale, and the PDF it makes."""

from __future__ import annotations

import base64
import io
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from reports.errors import RenderError
from reports.report.analysis import Analysis, analyse
from reports.report.charts import Chart, make_charts
from reports.report.model import ActiveUser, CourseActivity, ReportData
from reports.report.render import Branding, render_html
from tests._sample import empty, realistic

GENERATED = date(2026, 11, 16)
# A 1x1 PNG.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def weekly() -> tuple[Analysis, list[Chart]]:
    analysis = analyse(realistic(), top_n=15)
    return analysis, make_charts(analysis, accent="#0072B2")


def render(
    analysis: Analysis,
    charts: list[Chart] | None = None,
    *,
    branding: Branding | None = None,
    templates_dir: Path | None = None,
    locale: str = "en",
) -> str:
    return render_html(
        analysis, charts or [], branding or Branding("Acme University"),
        templates_dir=templates_dir, generated_on=GENERATED, locale=locale,
    )


def test_report_shows_cover_kpis_highlights_charts_tables(
    weekly: tuple[Analysis, list[Chart]],
) -> None:
    analysis, charts = weekly
    html = render(analysis, charts)
    assert "<title>Acme University: Weekly report, Nov 9\u2009\u2013\u200915, 2026</title>" in html
    assert "November 16, 2026" in html
    assert ">1,160<" in html and "+12% (+124)" in html and "previous: 1,036" in html
    assert "Active users rose 12% to 1,160 (from 1,036 the week before)." in html
    for chart in charts:
        assert f'src="{chart.data_uri}"' in html
    assert html.count("<img ") == len(charts)
    # The full course name is in the table even where the chart truncates it.
    assert "Academic Writing for Graduate Students: Structure, Argument and Style in Research " \
           "Papers" in html
    assert "Data &amp; Analytics &lt;Advanced&gt;" in html
    assert "table-layout: fixed" in html and "counter(pages)" in html
    assert "--accent: #0072B2;" in html


def test_no_previous_data_is_said_not_invented() -> None:
    analysis = analyse(empty(), top_n=5)
    html = render(analysis, make_charts(analysis, accent="#0072B2"))
    assert html.count("no previous data") >= 5
    assert "No users were active this week" in html
    assert "No course had active users this week." in html
    assert "inf" not in html.lower().replace("information", "") and "nan" not in html.lower()


@pytest.mark.parametrize(
    "evil",
    [
        pytest.param("{{ 7*7 }}", id="expression"),
        pytest.param("{% for x in range(3) %}loop{% endfor %}", id="statement"),
        pytest.param("<img src=x onerror=alert(1)>", id="html"),
        pytest.param("{# comment #} & more", id="comment-amp"),
    ],
)
def test_api_text_never_becomes_template_source(evil: str) -> None:
    base = realistic()
    data = ReportData(**{
        **base.__dict__,
        "courses": (CourseActivity("evil", evil, 999), *base.courses),
        "users": (ActiveUser("evil", evil, 100.0, 100.0), *base.users),
    })
    analysis = analyse(data, top_n=5)
    html = render(analysis, make_charts(analysis, accent="#0072B2"), branding=Branding(evil))
    escaped = evil.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert html.count(escaped) >= 4  # cover, tables, highlights, alt text
    assert "<img src=x" not in html
    assert "looploop" not in html


def test_same_input_same_html(weekly: tuple[Analysis, list[Chart]]) -> None:
    analysis, charts = weekly
    assert render(analysis, charts) == render(analysis, charts)


def test_locale_formats_numbers_and_dates(weekly: tuple[Analysis, list[Chart]]) -> None:
    html = render(weekly[0], locale="de")
    assert ">1.160<" in html and "9.\u201315. Nov. 2026" in html
    assert "16. November 2026" in html and 'lang="de"' in html


def test_user_templates_override_partials_and_css(
    tmp_path: Path, weekly: tuple[Analysis, list[Chart]]
) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "highlights.html.j2").write_text(
        "<section class=mine>{% for s in highlights %}<p>{{ s }}</p>{% endfor %}</section>"
    )
    (tmp_path / "report.css").write_text("body { color: #123456; }")
    html = render(weekly[0], templates_dir=tmp_path)
    assert "<section class=mine><p>Active users rose 12%" in html
    assert "body { color: #123456; }" in html
    assert "Key figures" in html  # the other partials still come from the built-in folder


def test_template_mistakes_are_render_errors(tmp_path: Path) -> None:
    analysis = analyse(empty(), top_n=5)
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "notes.html.j2").write_text("{{ no_such_value }}")
    with pytest.raises(RenderError, match="no_such_value"):
        render(analysis, templates_dir=tmp_path)
    (tmp_path / "partials" / "notes.html.j2").write_text("{% if %}")
    with pytest.raises(RenderError, match=r"notes\.html\.j2, line 1"):
        render(analysis, templates_dir=tmp_path)
    with pytest.raises(RenderError, match="does not exist"):
        render(analysis, templates_dir=tmp_path / "missing")


def test_logo_is_inlined_and_bad_branding_is_refused(tmp_path: Path) -> None:
    analysis = analyse(empty(), top_n=5)
    logo = tmp_path / "logo.png"
    logo.write_bytes(TINY_PNG)
    html = render(analysis, branding=Branding("Acme", logo=logo, accent_color="#D55E00"))
    assert f'src="data:image/png;base64,{base64.b64encode(TINY_PNG).decode()}"' in html
    assert "--accent: #D55E00;" in html
    with pytest.raises(RenderError, match="cannot be read"):
        render(analysis, branding=Branding("Acme", logo=tmp_path / "gone.png"))
    with pytest.raises(RenderError, match="not an image"):
        render(analysis, branding=Branding("Acme", logo=tmp_path / "logo.exe"))
    with pytest.raises(RenderError, match="#RRGGBB"):
        Branding("Acme", accent_color="red; } body { display: none")


def test_missing_data_notes(weekly: tuple[Analysis, list[Chart]]) -> None:
    analysis = weekly[0]
    day = analysis.daily[1]
    holed = replace(
        analysis,
        daily=(analysis.daily[0], replace(day, enrollments=None, unenrollments=None),
               *analysis.daily[2:]),
        missing=replace(analysis.missing, days_fully_missing=1),
    )
    html = render(holed)
    assert "1 day has no enrollment data for any course" in html
    assert "Introduction to Philosophy, Organic Chemistry" in html
    assert "24 active users have no engagement index" in html


def test_pdf_has_pages_numbers_bookmarks_and_alt(
    weekly: tuple[Analysis, list[Chart]],
) -> None:
    import pypdf
    import weasyprint

    analysis, charts = weekly
    html = render(analysis, charts)
    started = time.perf_counter()
    pdf = weasyprint.HTML(string=html).write_pdf()
    elapsed = time.perf_counter() - started
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert 2 <= len(reader.pages) <= 4  # a normal org fits a dean's few pages
    pages = len(reader.pages)
    first = reader.pages[0].extract_text()
    assert "Acme University" in first and "Weekly report" in first
    assert f"Page 1 of {pages}" in first
    assert f"Page {pages} of {pages}" in reader.pages[-1].extract_text()
    assert "Acme University" in reader.pages[1].extract_text()  # running header
    titles = [item.title for item in reader.outline if not isinstance(item, list)]
    assert titles[:3] == ["Key figures", "Highlights", "Charts"]
    assert "Top courses" in titles and "Notes" in titles
    assert elapsed < 5.0


def test_a_notice_is_on_page_one_even_with_templates_that_leave_it_out(
    weekly: tuple[Analysis, list[Chart]], tmp_path: Path,
) -> None:
    from reports.report.render import Notice

    analysis, _ = weekly
    notice = Notice("provisional", "Provisional: data for Nov 15 has not arrived for <12> of 12")
    html = render_html(analysis, [], Branding("Acme University"), templates_dir=None,
                       generated_on=GENERATED, notice=notice)
    assert html.count('class="notice provisional" role="note"') == 1
    assert "Provisional: data for Nov 15 has not arrived for &lt;12&gt; of 12" in html
    assert html.index("notice provisional") < html.index('class="cover"')
    assert "notice" not in render(analysis).split("<body>")[1].split('class="cover"')[0]
    # A user's base template without the notice: it is put after <body> all the same.
    (tmp_path / "base.html.j2").write_text(
        "<html><body class='mine'>{% block body %}{% endblock %}</body></html>")
    html = render_html(analysis, [], Branding("Acme University"), templates_dir=tmp_path,
                       generated_on=GENERATED, notice=notice)
    assert html.startswith("<html><body class='mine'><p class=\"notice provisional\"")
    assert html.count("&lt;12&gt; of 12") == 1
