"""WeasyPrint's HTML tokenizer with its regex cache keyed right (``untilcache``)."""

from __future__ import annotations

import inspect
import re
import xml.etree.ElementTree as ET

import pytest
import tinyhtml5
from tinyhtml5 import inputstream

from reports.report.untilcache import TokenRegexes
from reports.report.weasy import weasyprint

DOCUMENT = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>T &amp; t</title>'
    "<style>p { color: red }</style></head><body><!-- a -- comment -->"
    "<p class=\"x\" data-a='y' id=z>Text &lt; &#169; &copy; Ünïcödé</p>"
    "<table><tr><td>1</td><td class=num>2,345</td></tr></table>"
    "<svg><![CDATA[ raw ]]></svg><script>if (a < b) {}</script></body></html>"
)


def _parse() -> bytes:
    return ET.tostring(tinyhtml5.parse(DOCUMENT))


def test_the_tokenizer_reads_its_regexes_from_our_cache() -> None:
    """The coupling: after WeasyPrint's import the module's cache is ours, and ``chars_until``
    still looks its regex up under ``(characters, opposite)``."""
    assert weasyprint.HTML is not None
    assert isinstance(inputstream.characters_until_regex, TokenRegexes)
    source = inspect.getsource(inputstream.HTMLUnicodeInputStream.chars_until)
    assert "characters_until_regex[(characters, opposite)]" in source


def test_same_regexes_and_same_tree_as_tinyhtml5s_own_cache(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _parse()
    held = dict(inputstream.characters_until_regex)
    assert held and not any(isinstance(key[0], re.Pattern) for key in held)
    monkeypatch.setattr(inputstream, "characters_until_regex", {})
    assert _parse() == ours
    theirs = inputstream.characters_until_regex  # keyed by the regex: tinyhtml5's own slip
    assert {regex.pattern for regex in theirs.values()} == {
        regex.pattern for regex in held.values()}
