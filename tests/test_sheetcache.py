"""WeasyPrint's user-agent stylesheets from the user's cache folder (``sheetcache``)."""

from __future__ import annotations

import inspect
import types
from pathlib import Path
from typing import Any

from reports.report.sheetcache import MODULE, KeptCSS, pickled
from reports.report.weasy import weasyprint

html = weasyprint.html
DOCUMENT = """<h1>Title</h1><ol start=3><li>one<li>two<ul><li>inner</ul></ol>
<table><caption>t</caption><tr><th>a<td>b</table><p><b>bold</b> <q>quoted</q> <sub>2</sub>
<details open><summary>s</summary>d</details><pre>pre  text</pre><hr><input value=x>
<ol style="list-style-type: lower-greek"><li>x</ol><dl><dt>t<dd>d</dl>"""


def _code_shape(code: types.CodeType) -> tuple[Any, ...]:
    consts = tuple(_code_shape(c) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.co_code, consts, code.co_names, code.co_varnames


def _plain(value: Any) -> Any:
    """``value`` as nested tuples of plain values (a compiled selector as its code's shape),
    to compare two parses by value."""
    if value is None or isinstance(value, str | int | float | bytes):
        return value
    if isinstance(value, types.FunctionType):
        if value.__name__ == "<lambda>":
            return "lambda", _code_shape(value.__code__)
        return "function", value.__module__, value.__qualname__
    if isinstance(value, type):
        return "class", value.__module__, value.__qualname__
    kind = type(value).__qualname__
    if isinstance(value, dict):
        return kind, tuple((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return kind, tuple(_plain(v) for v in value)
    if isinstance(value, set | frozenset):
        return kind, tuple(sorted(repr(_plain(v)) for v in value))
    slots = [n for c in type(value).__mro__ for n in getattr(c, "__slots__", ())]
    held = dict(getattr(value, "__dict__", {})) | {n: getattr(value, n) for n in slots
                                                     if hasattr(value, n)}
    return kind, tuple((k, _plain(v)) for k, v in sorted(held.items()))


def _sheets(kept: KeptCSS) -> tuple[Any, Any, Any, dict[str, Any]]:
    """The three sheets of ``weasyprint.html``'s module body, as it makes them."""
    styles = weasyprint.css.counters.CounterStyle()
    ua = kept(string=html.UA, counter_style=styles)
    form = kept(string=html.UA_FORM, counter_style=styles)
    hints = kept(string=html.PH)
    return ua, form, hints, styles


class _WithSheets(weasyprint.HTML):  # type: ignore[misc]
    sheets: Any = None

    def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
        ua, form, _hints, _styles = self.sheets
        return [ua, form] if forms else [ua]

    def _ua_counter_style(self) -> list[Any]:
        return [self.sheets[3].copy()]

    def _ph_stylesheets(self) -> list[Any]:
        return [self.sheets[2]]


def test_the_kept_sheets_are_the_parsed_ones(tmp_path: Path) -> None:
    parsing = KeptCSS(weasyprint.CSS, tmp_path)
    parsed = _sheets(parsing)
    assert not list(tmp_path.iterdir())  # written by save() only
    parsing.save()
    assert len(list(tmp_path.glob("*.pickle"))) == 3
    loading = KeptCSS(weasyprint.CSS, tmp_path)
    loaded = _sheets(loading)
    assert not loading.parsed  # all three from the files
    assert all(isinstance(sheet, weasyprint.CSS) for sheet in loaded[:3])
    assert _plain(loaded) == _plain(parsed)
    assert loaded[0].matcher.lower_local_name_selectors["li"][0][0].__globals__ is (
        loaded[1].matcher.lower_local_name_selectors["input"][0][0].__globals__)
    assert len(loaded[3]) == len(html.UA_COUNTER_STYLE) > 40
    # The same PDF with either (all three sheets: presentational hints and forms on).
    pdfs = []
    for sheets in (parsed, loaded):
        _WithSheets.sheets = sheets
        pdfs.append(_WithSheets(string=DOCUMENT).write_pdf(presentational_hints=True,
                                                           pdf_forms=True))
    assert pdfs[0] == pdfs[1]


def test_a_damaged_file_is_parsed_anew_and_written_again(tmp_path: Path) -> None:
    first = KeptCSS(weasyprint.CSS, tmp_path)
    first(string=html.PH)
    first.save()
    (kept,) = tmp_path.glob("*.pickle")
    good = kept.read_bytes()
    flipped = good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]  # loadable, but not what was kept
    for damage in (b"", good[: len(good) // 2], b"\x80\x05K\x01.", flipped):
        kept.write_bytes(damage)
        again = KeptCSS(weasyprint.CSS, tmp_path)
        assert isinstance(again(string=html.PH), weasyprint.CSS) and again.parsed
        again.save()
        assert kept.read_bytes() == good


def test_only_compiled_selectors_are_pickled_as_code() -> None:
    assert pickled({"a": (1, "b")}) is not None
    assert pickled(lambda el: el) is None  # a lambda of ours, not cssselect2's
    assert pickled(eval("lambda el: el", {"x": 1})) is None  # other globals
    assert pickled([inspect.getsource]) is not None  # a module's function: by name


def test_weasyprints_html_module_makes_its_sheets_with_these_calls() -> None:
    """The coupling: ``weasyprint.html``'s body still parses its sheets as
    ``CSS(string=..., counter_style=...)`` calls (else the cache is simply not used), and after
    the import its ``CSS`` is WeasyPrint's class again."""
    source = inspect.getsource(html)
    assert "UA_STYLESHEET = CSS(string=UA, counter_style=UA_COUNTER_STYLE)" in source
    assert "PH_STYLESHEET = CSS(string=PH)" in source
    assert html.__name__ == MODULE and html.CSS is weasyprint.CSS
    assert isinstance(html.UA_STYLESHEET, weasyprint.CSS)
