"""The web UI's page count of archived PDFs, on a PDF made the way the archive's are."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from reports.report.pdf import PdfMetadata, html_to_pdf
from reports.web.pdfinfo import archived_pages, page_count

META = PdfMetadata(title="t", author="a", subject="s",
                   created=datetime(2026, 11, 15, tzinfo=UTC), keywords=(), identifier="x/y/z")


def test_the_page_count_is_read_from_weasyprints_object_streams(tmp_path: Path) -> None:
    pages = "".join(f'<p style="break-before: page">page {i}</p>' for i in range(3))
    html = (f'<!doctype html><html lang="en"><head><title>t</title></head>'
            f"<body>{pages}</body></html>")
    result = html_to_pdf(html, base_dir=tmp_path, allowed_roots=[tmp_path], metadata=META)
    assert b"/ObjStm" in result.data  # the page tree is compressed, not in plain sight
    assert page_count(result.data) == result.pages == 3
    path = tmp_path / "a.pdf"
    path.write_bytes(result.data)
    assert archived_pages("f" * 64, path.read_bytes) == 3
    assert archived_pages("e" * 64, (tmp_path / "gone.pdf").read_bytes) is None
    assert page_count(b"not a pdf") is None
