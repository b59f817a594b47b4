"""The PDF stage's parsed-stylesheet cache: the HTML's own CSS still decides how the PDF looks."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pdfplumber

from reports.report.analysis import analyse
from reports.report.build import TEMPLATES_DIR
from reports.report.pdf import PdfMetadata, PdfResult, html_to_pdf
from reports.report.render import Branding, render_html
from reports.report.stylecache import cacheable
from tests._sample import empty

META = PdfMetadata(
    title="t", author="a", subject="s", created=datetime(2026, 11, 15, tzinfo=UTC),
    identifier="acme/weekly/x",
)


def pdf(html: str, folder: Path) -> PdfResult:
    return html_to_pdf(html, base_dir=folder, allowed_roots=[folder], metadata=META)


def page_widths(result: PdfResult) -> set[int]:
    with pdfplumber.open(io.BytesIO(result.data)) as doc:
        return {round(p.width) for p in doc.pages}


def colours(result: PdfResult) -> set[tuple[float, ...]]:
    with pdfplumber.open(io.BytesIO(result.data)) as doc:
        return {tuple(c["non_stroking_color"]) for c in doc.pages[0].chars}


def test_a_users_override_of_report_css_changes_the_pdf_in_the_same_process(
    tmp_path: Path,
) -> None:
    """Parsed sheets are cached per process: the next report's CSS must still be its own."""
    analysis = analyse(empty(), top_n=5)

    def report(templates: Path | None) -> PdfResult:
        html = render_html(
            analysis, [], Branding("Acme University"), templates_dir=templates,
            generated_on=date(2026, 11, 16),
        )
        return pdf(html, TEMPLATES_DIR)

    assert page_widths(report(None)) == {595}  # A4
    css = (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")
    (tmp_path / "report.css").write_text(css.replace("size: A4;", "size: A5;"), "utf-8")
    assert page_widths(report(tmp_path)) == {420}  # A5, from the user's report.css


def test_moved_sheets_keep_their_cascade_and_other_styling_keeps_its_rank(
    tmp_path: Path,
) -> None:
    """Two sheets: specificity, then order, decide as before. A ``style`` attribute with
    ``!important`` beats a sheet's ``!important`` only if the sheets stay author styles (the
    document is then rendered without the cache)."""
    head = (
        "<style>p.x { color: #ff0000 } p { color: #00ff00 }</style>"
        "<style>p { color: #0000ff } em { color: #ff0000 !important }</style>"
    )
    two = pdf(f"<html><head>{head}</head><body><p class=x>red</p><p>blue</p></body></html>",
              tmp_path)
    assert colours(two) == {(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)}
    attr = pdf(
        f"<html><head>{head}</head><body>"
        '<p><em style="color: #0000ff !important">blue</em></p></body></html>', tmp_path,
    )
    assert colours(attr) == {(0.0, 0.0, 1.0)}


def test_only_sheets_without_parse_time_side_effects_are_cached() -> None:
    assert cacheable(
        "@page { size: A4; @top-left { content: 'x' } @bottom-right-corner { content: '' } }"
        " @media screen { p { color: red } } p { color: blue }"
    )
    for rule in ("@font-face { src: url(f.woff) }", "@import 'x.css';", "@layer base;",
                 "@counter-style x { system: cyclic }", "p::after { content: 'a@b' }"):
        assert not cacheable(rule), rule
