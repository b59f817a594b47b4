"""The HTML stage: content, escaping, overrides, branding, locale, and the PDF it makes."""

from __future__ import annotations

import base64
import io
import os
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

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


def test_a_left_to_right_report_isolates_only_right_to_left_text() -> None:
    """A ``<bdi>`` changes nothing around Latin names and numbers in a left-to-right page but
    costs WeasyPrint a box each: only text that could reorder gets one; a right-to-left page
    isolates every name and number."""
    base = realistic()
    data = ReportData(**{
        **base.__dict__,
        "courses": (CourseActivity("ar-1", "\u0645\u0642\u062f\u0645\u0629 101", 999),
                    *base.courses),
    })
    analysis = analyse(data, top_n=5)
    html = render(analysis)
    isolated = '<bdi dir="rtl">\u0645\u0642\u062f\u0645\u0629 101</bdi>'
    assert isolated in html and html.count("<bdi") == html.count(isolated)
    assert '<td class="num">999</td>' in html  # numbers are only escaped
    arabic = render(analysis, locale="ar")
    assert arabic.count('<bdi dir="ltr">') > 20  # numbers keep their order in an RTL table


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


def test_a_template_edited_between_renders_is_compiled_anew(
    tmp_path: Path, weekly: tuple[Analysis, list[Chart]]
) -> None:
    """Compiled templates are kept for later renders, but never outlive their source: an edit
    (same size, same modification time), a new override and a removed one all take effect."""
    partial = tmp_path / "partials" / "highlights.html.j2"
    partial.parent.mkdir()
    partial.write_text("<section class=first></section>")
    assert "<section class=first>" in render(weekly[0], templates_dir=tmp_path)
    stat = partial.stat()
    partial.write_text("<section class=other></section>")
    os.utime(partial, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "<section class=other>" in render(weekly[0], templates_dir=tmp_path)
    (tmp_path / "partials" / "notes.html.j2").write_text("<p class=new-notes></p>")
    assert "<p class=new-notes>" in render(weekly[0], templates_dir=tmp_path)
    partial.unlink()
    html = render(weekly[0], templates_dir=tmp_path)
    assert "<section class=other>" not in html and "Highlights" in html


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
    pdf = weasyprint.HTML(string=html).write_pdf()
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


def _daily_table(html: str) -> str:
    start = html.index('<table class="data daily')
    return html[start:html.index("</table>", start)]


def test_the_daily_chart_has_a_table_of_its_numbers(
    weekly: tuple[Analysis, list[Chart]],
) -> None:
    import re

    analysis, charts = weekly
    html = render(analysis, charts)
    table = _daily_table(html)
    # Under the daily chart, in the same block.
    assert html.index('id="chart-daily-enrollments"') < html.index(table)
    assert "<caption>Enrollments and unenrollments per day</caption>" in table
    # A week: seven day columns with real headers, one row per measure.
    columns = re.findall(r'<th scope="col" class="num">([^<]*)</th>', table)
    assert columns == ["Mon, Nov 9", "Tue, Nov 10", "Wed, Nov 11", "Thu, Nov 12", "Fri, Nov 13",
                       "Sat, Nov 14", "Sun, Nov 15"]
    assert re.findall(r'<th scope="row" class="measure">([^<]*)</th>', table) == [
        "Enrollments", "Unenrollments"]
    rows = [re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)
            for row in table.split("<tr")[2:]]
    assert rows == [[str(p.enrollments) for p in analysis.daily],
                    [str(p.unenrollments) for p in analysis.daily]]
    # A day without data is a dash, marked.
    holed = replace(analysis, daily=(*analysis.daily[:6],
                                     replace(analysis.daily[6], enrollments=None)))
    assert '<td class="num missing">\u2013</td>' in _daily_table(render(holed, charts))
    # No daily chart, no table.
    assert '<table class="data daily' not in render(analysis, charts[:1])


def test_a_month_gets_a_week_by_day_grid() -> None:
    import re

    analysis = analyse(realistic(kind="monthly"), top_n=15)
    daily = [c for c in make_charts(analysis, accent="#0072B2") if c.key == "daily-enrollments"]
    table = _daily_table(render(analysis, daily))
    assert re.findall(r'<th scope="col" class="num">([^<]*)</th>', table) == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    # October 2026 starts on a Thursday: five calendar weeks, each a group of two rows.
    weeks = re.findall(r'<th scope="rowgroup" rowspan="2" class="week">([^<]*)</th>', table)
    assert weeks == ["Oct 1\u2009\u2013\u20094", "Oct 5\u2009\u2013\u200911",
                     "Oct 12\u2009\u2013\u200918", "Oct 19\u2009\u2013\u200925",
                     "Oct 26\u2009\u2013\u200931"]
    first = re.findall(r'<td class="num[^"]*">([^<]*)</td>', table.split("<tbody>")[1])
    assert first[:3] == ["", "", ""] and first[3] == str(analysis.daily[0].enrollments)
    cells = re.findall(r'<td class="num[^"]*">([^<]+)</td>', table)
    assert len(cells) == 2 * 31


def test_the_running_header_has_its_own_source_and_the_table_real_headers(
    weekly: tuple[Analysis, list[Chart]], tmp_path: Path,
) -> None:
    """A real PDF read back: a user's cover leaves the header alone; the table is tagged."""
    import pdfplumber
    import pypdf

    from reports.report.pdf import PdfMetadata, html_to_pdf
    from reports.report.render import BUILTIN_TEMPLATES

    analysis, charts = weekly
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "cover.html.j2").write_text(
        "<header><h1>Our own cover</h1><p class=org>Org: {{ title }}</p></header>")
    html = render_html(
        analysis, [c for c in charts if c.key == "daily-enrollments"],
        Branding("Acme & Co <Uni>"), templates_dir=tmp_path, generated_on=GENERATED)
    assert "Our own cover" in html
    pdf = html_to_pdf(html, base_dir=BUILTIN_TEMPLATES, allowed_roots=[BUILTIN_TEMPLATES],
                      metadata=PdfMetadata(title="t", author="a", subject="s",
                                           created=datetime(2026, 11, 16, tzinfo=UTC)))
    with pdfplumber.open(io.BytesIO(pdf.data)) as doc:
        assert len(doc.pages) >= 2

        def margins(number: int) -> tuple[str, str]:
            page = doc.pages[number]
            top = page.crop((0, 0, page.width, 20 * 72 / 25.4)).extract_text() or ""
            bottom = page.crop((0, page.height - 18 * 72 / 25.4, page.width, page.height))
            return top, bottom.extract_text() or ""

        top, bottom = margins(1)
        assert "Acme & Co <Uni>" in top and "Nov 9 \u2013 15, 2026" in top
        assert "Weekly report" not in top
        assert "ibl.ai report generated on November 16, 2026" in bottom
        assert "Page 2 of" in bottom
        top, bottom = margins(0)
        assert top.strip() == "" and "ibl.ai report generated on" in bottom
        text = "\n".join(p.extract_text() or "" for p in doc.pages)
        assert "Mon, Nov 9" in text and "Unenrollments" in text

    def tags(node: Any, found: list[str]) -> list[str]:
        node = node.get_object()
        if isinstance(node, list):
            for kid in node:
                tags(kid, found)
        elif isinstance(node, dict):
            if "/S" in node:
                found.append(str(node["/S"]))
            if "/K" in node:
                tags(node["/K"], found)
        return found

    root = pypdf.PdfReader(io.BytesIO(pdf.data)).trailer["/Root"]
    found = tags(root["/StructTreeRoot"], [])
    # The daily table's 7 column and 2 row headers (plus the user table's) are TH cells.
    assert found.count("/TH") >= 9 + 5 and "/Caption" in found
