"""WeasyPrint's font subsetting arrays made without a C parse per size (``sizedarrays``)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from reports.report.pdf import html_to_pdf
from reports.report.sizedarrays import SizedArrays
from reports.report.weasy import weasyprint
from tests.test_pdf import META, page


def test_weasyprint_subsets_fonts_through_sized_arrays() -> None:
    """The coupling: WeasyPrint's PDF fonts module has our ``ffi`` over its own, and still makes
    the subsetting's glyph arrays as ``ffi.new(f'hb_codepoint_t[{n}]', items)``."""
    fonts = weasyprint.pdf.fonts
    assert isinstance(fonts.ffi, SizedArrays)
    assert fonts.ffi.ffi is weasyprint.text.ffi.ffi
    source = inspect.getsource(fonts.Font._harfbuzz_subset)
    assert source.count("ffi.new(f'hb_codepoint_t[{len(") == 3


def test_a_sized_array_is_the_open_array_of_its_items() -> None:
    raw = weasyprint.text.ffi.ffi
    ours = SizedArrays(raw)
    array = ours.new("hb_codepoint_t[3]", (5, 6, 7))
    assert raw.typeof(array) is raw.typeof("hb_codepoint_t[]")
    assert list(array) == [5, 6, 7] and len(array) == 3
    assert raw.sizeof(array) == raw.sizeof(raw.new("hb_codepoint_t[3]", [5, 6, 7]))
    # Anything else is the ffi's own: other sizes, no items, pointers.
    assert raw.typeof(ours.new("hb_codepoint_t[4]", [1])) is raw.typeof("hb_codepoint_t[4]")
    zeroed = ours.new("hb_tag_t[100]")
    assert raw.typeof(zeroed) is raw.typeof("hb_tag_t[]") and list(zeroed) == [0] * 100
    assert ours.new("unsigned int *", 9)[0] == 9
    assert ours.NULL == raw.NULL


def test_the_pdf_bytes_are_the_same_with_weasyprints_own_ffi(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fonts = weasyprint.pdf.fonts
    html = page("<h2>Ünïcödé</h2><p>Glyphs of <b>two</b> fonts, Ελληνικά, 12345.</p>")

    def render() -> bytes:
        return html_to_pdf(html, base_dir=tmp_path, allowed_roots=[tmp_path],
                           metadata=META).data

    ours = render()
    monkeypatch.setattr(fonts, "ffi", fonts.ffi.ffi)
    assert render() == ours
