"""WeasyPrint's C declarations and type texts from the user's cache folder (``cdefcache``)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import cffi
import pytest
from cffi import cparser

from reports.report import cachefiles, cdefcache
from reports.report.cdefcache import _STATE, cached_parses
from reports.report.weasy import weasyprint

TYPES = ("PangoRectangle", "PangoRectangle *", "char[]", "PangoLogAttr[]", "unsigned int *",
         "hb_tag_t[]", "hb_codepoint_t[]", "PangoFcFontMap *", "FcChar8 **")
"""The type texts a render names (and a few more)."""


def _source() -> str:
    (source,) = weasyprint.text.ffi.ffi._cdefsources
    return str(source)


def _declared(env: dict[str, str]) -> Any:
    with cached_parses(env):
        ffi = cffi.FFI()
        ffi.cdef(_source())
    return ffi


def _shape(ffi: Any) -> dict[str, Any]:
    """Every declaration as cffi names it, with a struct's fields and an enum's values."""
    shape = {}
    for name, (tp, quals) in ffi._parser._declarations.items():
        if not hasattr(tp, "_get_c_name"):  # an integer constant
            shape[name] = (tp, quals)
            continue
        fields = tuple(t._get_c_name() for t in getattr(tp, "fldtypes", None) or ())
        shape[name] = (type(tp).__name__, tp._get_c_name(), quals,
                       getattr(tp, "fldnames", None), fields, getattr(tp, "enumvalues", None))
    return shape


def _no_parse(*_args: object) -> None:
    raise AssertionError("pycparser was asked to parse")


def _kept(root: Path) -> list[Path]:
    return sorted(root.glob("ibl-reports/cdefs-*/*.pickle"))


def test_the_declarations_and_types_come_from_the_cache_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    parsed = cffi.FFI()  # cffi alone
    parsed.cdef(_source())
    first = _declared(env)  # parsed, then kept
    assert _shape(first) == _shape(parsed)
    names = {text: parsed.getctype(parsed.typeof(text)) for text in TYPES}
    for text in TYPES:
        first.typeof(text)
    (kept,) = _kept(tmp_path)
    assert kept.stat().st_mode & 0o077 == 0 and kept.parent.stat().st_mode & 0o077 == 0

    monkeypatch.setattr(cparser, "_get_parser", _no_parse)
    second = _declared(env)
    assert _shape(second) == _shape(parsed)
    for text in TYPES:
        assert second.getctype(second.typeof(text)) == names[text]
    # A type text is rebuilt around the process's own declarations: one C type per struct.
    rect = second.new("PangoRectangle *", {"x": 3, "width": 7})
    assert second.typeof(rect).item is second.typeof("PangoRectangle")
    assert (rect.x, rect.width, second.sizeof(rect[0])) == (3, 7, 16)
    assert list(second.new("hb_tag_t[]", [1, 2])) == [1, 2]
    # The library calls still resolve through the cached declarations.
    pango = second.dlopen("libpango-1.0.so.0")
    assert pango.pango_version() == weasyprint.text.ffi.pango.pango_version() > 0


def _load(kept: Path) -> Any:
    data = cachefiles.read(kept)
    assert data is not None
    return pickle.loads(data)


def test_a_damaged_file_is_parsed_anew_and_written_again(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    _declared(env).typeof("PangoRectangle *")
    (kept,) = _kept(tmp_path)
    state, _types = _load(kept)
    cachefiles.write(kept, pickle.dumps((state, {"PangoRectangle *": b"not a pickle"})))
    assert _declared(env).getctype("PangoRectangle *") == "PangoRectangle *"  # parsed again
    assert "PangoRectangle *" in _load(kept)[1]
    good = kept.read_bytes()
    cut = good[:40] + bytes([good[40] ^ 1]) + good[41:]  # one bit flipped
    for damage in (b"", b"\x80\x05garbage", pickle.dumps((b"x", {})), cut):
        kept.write_bytes(damage)
        ffi = _declared(env)
        assert _shape(ffi) == _shape(weasyprint.text.ffi.ffi)
        assert _load(kept)[0] == state


def test_a_type_text_that_declares_a_struct_is_not_kept(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    ffi = _declared(env)
    assert ffi.sizeof("struct { int a; } *") == ffi.sizeof("void *")
    assert "struct { int a; } *" not in _load(_kept(tmp_path)[0])[1]


def test_no_usable_folder_leaves_cffi_parsing(tmp_path: Path) -> None:
    ffi = _declared({})
    assert "parse_type" not in vars(ffi._parser) and not _kept(tmp_path)
    (tmp_path / "ibl-reports").mkdir(mode=0o777)
    (tmp_path / "ibl-reports" / cdefcache.folder_name()).mkdir(mode=0o777)
    (tmp_path / "ibl-reports" / cdefcache.folder_name()).chmod(0o777)  # others could write
    ffi = _declared({"XDG_CACHE_HOME": str(tmp_path)})
    assert "parse_type" not in vars(ffi._parser) and not _kept(tmp_path)


def test_cffis_parser_holds_what_the_cache_copies() -> None:
    """The coupling: after a parse, cffi's ``Parser`` holds ``_STATE`` and only parse-time
    helpers besides (a new attribute in another cffi would be lost on a cache hit)."""
    parser = cparser.Parser()
    parser.parse(_source())
    assert set(vars(parser)) == {*_STATE, "_structnode2type", "_options",
                                 "_inside_extern_python", "_partial_length"}
    assert callable(cparser.Parser.__dict__["parse_type"])


def test_a_cffi_without_the_hook_point_is_left_alone(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.delattr(cparser.Parser, "parse_type")
    original = cparser.Parser.parse
    with cached_parses({"XDG_CACHE_HOME": str(tmp_path)}):
        assert cparser.Parser.parse is original


_CHILD = """
import json, sys
import tinycss2
sheets = []
parse_stylesheet = tinycss2.parse_stylesheet
tinycss2.parse_stylesheet = lambda *args, **kwargs: sheets.append(1) or parse_stylesheet(
    *args, **kwargs)
from reports.report.weasy import weasyprint
pdf = weasyprint.HTML(string="<p lang=en style='hyphens: auto'>Ünïcödé text</p>").write_pdf()
print(json.dumps({"pycparser": type(sys.modules["pycparser"]).__name__,
                  "kept": weasyprint.text.ffi.ffi._parser.parse_type.__name__, "size": len(pdf),
                  "ua_sheets_parsed": len(sheets)}))
"""


def test_a_fresh_process_with_the_caches_parses_no_c_or_ua_css(tmp_path: Path) -> None:
    """A second process imports WeasyPrint without pycparser (``cdefcache``) and without
    parsing its user-agent stylesheets (``sheetcache``), and renders the same PDF."""
    def child() -> dict[str, Any]:
        run = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                             env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)},
                             check=True, cwd=Path(__file__).resolve().parents[1])
        answer: dict[str, Any] = json.loads(run.stdout)
        return answer

    first, second = child(), child()
    assert first["pycparser"] == "module" and first["kept"] == "cached"
    assert first["ua_sheets_parsed"] == 3
    assert second == {**first, "pycparser": "_LazyModule", "ua_sheets_parsed": 0}
