"""The report in its reader's language: wording, /Lang, page count, scripts, right to left.

Each language is rendered once per test process (in-process, through ``run.render_report``, with
low-resolution chart images: the page layout does not depend on their resolution) and shared.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import subprocess
from datetime import date

import pdfplumber
import pypdf
import pytest

from reports.config import ReportConfig
from reports.report.build import Rendered, RenderJob, render_charts, render_report
from reports.report.freshness import DAY_COVERAGE, PERIOD_ENDED, RuleFailure, Verdict
from reports.report.model import CourseActivity, ReportData
from reports.report.render import Notice
from tests._sample import realistic

ENGLISH_HEADINGS = ("Key figures", "Highlights", "Charts", "Top courses", "Biggest movers",
                    "Most engaged users", "Notes", "Weekly report", "Page 1 of")
LOCALES = {  # shipped language -> (a locale that picks it, the tag we expect, "Key figures")
    "de": ("de_DE", "de-DE", "Kennzahlen"),
    "fr": ("fr-FR", "fr-FR", "Chiffres clés"),
    "es": ("es_ES", "es-ES", "Cifras clave"),
    "pt_BR": ("pt-BR", "pt-BR", "Principais indicadores"),
    "ar": ("ar_EG", "ar-EG", "الأرقام الرئيسية"),
    "ja": ("ja_JP", "ja-JP", "主要指標"),
    "zh_Hans": ("zh-Hans-CN", "zh-Hans-CN", "关键指标"),
}
NAMES = {  # course index in tests/_sample.py -> a name in another script
    0: "経済学入門",  # Han
    1: "日本語の授業：文法と会話",  # noqa: RUF001 (Kana and Han, full-width colon)
    2: "مقدمة في الاقتصاد",  # Arabic
    3: "Εισαγωγή στη Φιλοσοφία",  # Greek
}


def _data() -> ReportData:
    data = realistic()

    def rename(courses: tuple[CourseActivity, ...]) -> tuple[CourseActivity, ...]:
        out = []
        for i, course in enumerate(courses):
            if i in NAMES:
                course = dataclasses.replace(course, name=NAMES[i], user_count=300 - i)
            out.append(course)
        return tuple(out)

    return dataclasses.replace(data, courses=rename(data.courses),
                               previous_courses=rename(data.previous_courses))


class Renders:
    """The demo report rendered in a locale once per test process, with the warnings the
    ``reports`` loggers gave while it was drawn (charts included); its charts are kept, so the
    same report with a notice on page 1 is only laid out again."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Notice | None], Rendered] = {}
        self._charts: dict[str, tuple[object, ...]] = {}
        self.warnings: dict[str, list[str]] = {}
        self._data = _data()

    def report(self, locale: str) -> ReportConfig:
        return ReportConfig(name="acme-weekly", org="acme-university", period="weekly",
                            schedule="0 6 * * 1", locale=locale, display_name="Acme University")

    def __call__(self, locale: str, notice: Notice | None = None) -> Rendered:
        if (locale, notice) not in self._cache:
            job = RenderJob(self.report(locale), self._data, None, date(2026, 11, 16),
                            chart_dpi=40, notice=notice)
            logger, seen = logging.getLogger("reports"), _Collect()
            level = logger.level
            logger.setLevel(logging.WARNING)
            logger.addHandler(seen)
            try:
                if locale not in self._charts:
                    self._charts[locale] = render_charts(job).charts
                job = dataclasses.replace(job, charts=self._charts[locale])
                self._cache[(locale, notice)] = render_report(job)
            finally:
                logger.removeHandler(seen)
                logger.setLevel(level)
            self.warnings.setdefault(locale, []).extend(seen.messages)
        return self._cache[(locale, notice)]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="session")
def rendered() -> Renders:
    return Renders()


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.parametrize("language", list(LOCALES))
def test_the_report_speaks_its_language(
    language: str, rendered: Renders
) -> None:
    locale, tag, key_figures = LOCALES[language]
    result = rendered(locale)
    reader = pypdf.PdfReader(io.BytesIO(result.pdf))
    assert reader.trailer["/Root"]["/Lang"] == tag
    text = _text(result.pdf)
    leftovers = [heading for heading in ENGLISH_HEADINGS if heading in text]
    assert not leftovers, f"{language}: English left in the PDF: {leftovers}"
    assert key_figures in text or key_figures in result.html
    assert f'<html lang="{tag}"' in result.html
    assert f'dir="{"rtl" if language == "ar" else "ltr"}"' in result.html
    # A German word is longer: the demo report still fits the pages of the English one.
    assert result.pages == rendered("en").pages


# Two rules failed: the longest banner `generate` prints for an unended period whose last days
# have not arrived (two lines in German).
LATE_AND_UNENDED = Verdict((
    RuleFailure(DAY_COVERAGE, {"days": ["2026-11-14", "2026-11-15"], "missing": 12,
                               "courses": 12, "min_day_coverage": 0.5}),
    RuleFailure(PERIOD_ENDED, {"end": "2026-11-15", "today": "2026-11-15"}),
))


def test_a_provisional_banner_keeps_the_reports_pages(rendered: Renders) -> None:
    # The banner sits in page 1's empty top margin: the charts stay on page 1 (German, the
    # longest banner, had 5 pages, its first chart pushed to page 2).
    locale = LOCALES["de"][0]
    report = rendered.report(locale)
    banner = LATE_AND_UNENDED.banner(report.locale, report.lang.code)
    result = rendered(locale, Notice("provisional", banner))
    assert result.pages == rendered(locale).pages == 4
    with pdfplumber.open(io.BytesIO(result.pdf)) as pdf:
        first = pdf.pages[0]
        assert first.images  # the first chart
        # The banner starts inside the page's top margin (20 mm) and leaves the edge alone.
        box = next(r for r in first.rects if r["non_stroking_color"] and r["top"] < 100)
        assert 14 < box["top"] < 20 / 25.4 * 72


def test_the_english_report_says_en(rendered: Renders) -> None:
    result = rendered("en")
    assert pypdf.PdfReader(io.BytesIO(result.pdf)).trailer["/Root"]["/Lang"] == "en"
    assert all(heading in _text(result.pdf) for heading in ENGLISH_HEADINGS)


def test_every_script_is_drawn_with_a_font_that_has_it(rendered: Renders) -> None:
    result = rendered("en")  # the warnings are those logged while it was drawn
    assert not [m for m in rendered.warnings["en"] if "missing_glyphs" in m]
    fonts: dict[str, set[str]] = {}
    with pdfplumber.open(io.BytesIO(result.pdf)) as pdf:
        for page in pdf.pages:
            for char in page.chars:
                fonts.setdefault(char["text"], set()).add(char["fontname"].split("+")[-1])
    expected = {"経": "CJK", "の": "CJK", "م": ("Arabic", "DejaVu"), "Φ": "DejaVu"}
    for char, family in expected.items():
        wanted = (family,) if isinstance(family, str) else family
        assert fonts.get(char), f"{char!r} is not in the PDF's text"
        assert all(any(w in font for w in wanted) for font in fonts[char]), (char, fonts[char])
    embedded = subprocess.run(["pdffonts", "-"], input=result.pdf, capture_output=True,
                              check=True).stdout.decode()
    assert "Noto-Sans-CJK" in embedded and "DejaVu-Sans" in embedded


def test_an_arabic_report_reads_right_to_left(rendered: Renders) -> None:
    result = rendered("ar_EG")
    heading = "الأرقام الرئيسية"
    with pdfplumber.open(io.BytesIO(result.pdf)) as pdf:
        page = pdf.pages[0]
        headings = [c for c in page.chars if abs(c["size"] - 12.5) < 0.3]  # h2 is 12.5pt
        first = min(round(c["top"]) for c in headings)
        line = [c for c in headings if round(c["top"]) == first]
        # The first heading starts at the right margin and runs leftwards: read from the right,
        # its glyphs spell it in logical order.
        assert max(c["x1"] for c in line) > page.width * 0.85
        assert min(c["x0"] for c in line) > page.width * 0.5
        assert "".join(c["text"] for c in sorted(line, key=lambda c: -c["x0"])) == heading
        # Tables mirror: the rank column is at the right, the course names right-aligned.
        table_page = pdf.pages[2]
        hash_sign = next(c for c in table_page.chars if c["text"] == "#")
        assert hash_sign["x0"] > table_page.width * 0.85
    # The text layer keeps the logical order: pdftotext reads the words as written (without
    # its embedding marks; headings without a lam-alef ligature, which poppler spells
    # backwards whatever the PDF says).
    text = subprocess.run(["pdftotext", "-", "-"], input=result.pdf, capture_output=True,
                          check=True).stdout.decode()
    text = re.sub("[\u202a-\u202e\u2066-\u2069]", "", text)
    assert "أبرز النقاط" in text and "الرسوم البيانية" in text
    # Signed numbers keep their sign in front in a right-to-left table.
    assert '<bdi dir="ltr">+' in result.html
