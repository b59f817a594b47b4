"""Hyphenation dictionaries read on demand: the same patterns and hyphenation points as pyphen's
own parse, and WeasyPrint hyphenates through them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pdfplumber
import pyphen
import pytest

from reports.report.hyphenation import LazyHyphDict, install
from tests.test_pdf import META

WORDS = ("hyphenation", "internationalization", "enrolments", "participation", "learners",
         "statistics", "Data-Structures", "écrire", "Straße", "co-operation", "a", "")

SYNTHETIC = "\n".join((
    "ISO8859-1",
    "% a comment with a 1digit and a / slash",
    "# another one",
    "LEFTHYPHENMIN 2",
    "",
    "  .hy3ph  ",  # white space around a pattern
    "he2n\r",
    "hena4",
    "1na",
    "n2at",
    "1tio",
    "2io",
    "o2n",
    "0a0b0",  # all values 0: not a pattern
    "n1a2t",  # the same key as n2at, later: wins
    "i1o0",
    "i0o0",  # the same key again, all 0: does not replace i1o0
    "^^e41x",  # ^^hh escape: the key is "äx"
    "c1k/k=k,1,1",  # an alternative (pyphen's DataInt with data)
    "st1r/x",  # a slash without '=': an ordinary pattern
    "3ss2",
))


def _dictionary(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hyph_xx_XX.dic"
    path.write_bytes(text.encode("latin-1"))
    return path


def _data(patterns: dict[str, Any]) -> dict[str, list[Any]]:
    """pyphen's alternatives: the ``data`` of each value (``DataInt``)."""
    return {key: [getattr(v, "data", None) for v in value[1]]
            for key, value in patterns.items() if value is not None}


def _same_patterns(lazy: LazyHyphDict, eager: pyphen.HyphDict) -> None:
    lazy.positions("x")  # reads it
    got = {key: lazy.patterns.get(key) for key in eager.patterns}
    assert got == eager.patterns
    assert _data(got) == _data(eager.patterns)
    rest = [*lazy.patterns.lines, *lazy.patterns.parsed, "zz", "", "%"]
    assert {key: lazy.patterns.get(key) for key in rest} == {
        key: eager.patterns.get(key) for key in rest}
    assert lazy.maxlen >= eager.maxlen


def test_a_lazy_dictionary_reads_what_pyphen_reads(tmp_path: Path) -> None:
    path = _dictionary(tmp_path, SYNTHETIC)
    lazy = LazyHyphDict(path)
    assert not lazy.loaded
    eager = pyphen.HyphDict(path)
    _same_patterns(lazy, eager)
    for word in ("hyphenation", "nation", "äxe", "backen", "strasse", "nat", "io"):
        assert lazy.positions(word) == eager.positions(word)
        assert [p.data for p in lazy.positions(word)] == [p.data for p in eager.positions(word)]


@pytest.mark.parametrize("language", ["en_US", "de_DE", "fr", "es", "pt_BR"])
def test_the_report_languages_dictionaries_hyphenate_as_pyphen_does(
        language: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The languages of the report's catalogs that hyphenate (German's 66,000 patterns: ~1.6 s).
    path = pyphen.LANGUAGES[language]
    # pyphen's global cache holds a lazy dictionary for the test, and what it held after it.
    monkeypatch.setitem(pyphen.hdcache, path, LazyHyphDict(path))
    ours = pyphen.Pyphen(lang=language)
    theirs = pyphen.Pyphen(lang=language)
    theirs.hd = pyphen.HyphDict(path)
    assert isinstance(ours.hd, LazyHyphDict) and not isinstance(theirs.hd, LazyHyphDict)
    _same_patterns(ours.hd, theirs.hd)
    for word in WORDS:
        assert ours.inserted(word) == theirs.inserted(word)
        assert list(ours.iterate(word)) == list(theirs.iterate(word))


def test_weasyprint_hyphenates_through_a_lazy_dictionary(tmp_path: Path) -> None:
    from reports.report.pdf import html_to_pdf

    install()
    path = pyphen.LANGUAGES[pyphen.language_fallback("en")]
    assert isinstance(pyphen.hdcache[path], LazyHyphDict)
    html = ('<!doctype html><html lang="en"><body><p style="width: 22mm; hyphens: auto; '
            'font-size: 10pt">internationalization participation</p></body></html>')
    result = html_to_pdf(html, base_dir=tmp_path, allowed_roots=[tmp_path], metadata=META)
    with pdfplumber.open(io.BytesIO(result.data)) as pdf:
        text = pdf.pages[0].extract_text()
    assert pyphen.hdcache[path].loaded
    assert "\u2010" in text or "-" in text  # broken at a hyphenation point
    assert text.replace("\u2010\n", "").replace("-\n", "").split() == [
        "internationalization", "participation"]
