"""WeasyPrint's C declarations, parsed once per user instead of in every render process.

Decisions:

- WeasyPrint declares the ~500 functions and types it calls in Pango, HarfBuzz, fontconfig and
  GLib as one ``ffi.cdef`` text at import (``weasyprint.text.ffi``), and names C types as text
  at render time (``ffi.new('PangoRectangle *')``, ``ffi.new('char[]', ...)``). cffi parses
  both with pycparser: importing pycparser, the declarations (~30-40 ms of CPU) and each new
  type text behind a preamble of every typedef (~4-10 ms each, 7 in a first render): ~0.1 s of
  every fresh render process, the same result every time.
- ``cached_parses()``, around WeasyPrint's import, lets cffi's ``Parser`` take what a parse
  produces (its declarations: plain ``cffi.model`` objects) from a pickle kept in the user's
  cache folder, keyed by the text and the versions: a parse of the same text by the same cffi,
  pycparser and Python gives the same objects. A type text parsed later (``parse_type``) is
  kept there too: pickled apart, with the declarations it refers to pickled by their names, so
  that it is rebuilt around the very objects the process's declarations hold (cffi builds one C
  type per object: a copy would be another, incompatible type).
- The declarations are pickled right after they are parsed, before cffi builds any C type from
  them (building one marks a struct as completed, which a later process must redo itself).
- A cache hit leaves pycparser unimported: cffi's parser module gets it as a lazy module
  (``importlib.util.LazyLoader``), through the name cffi tries first (``cffi._pycparser``, its
  place for a bundled copy): cffi's fallback ``import pycparser`` would load a lazy module at
  once (the import system reads its ``__spec__``).
- Only a parser's first ``cdef`` (nothing declared before; the only one WeasyPrint makes) is
  taken from the cache; a type whose text declares a struct of its own is parsed each time.
- The folder and its files are private like the compiled templates' (``cachefiles``): a pickle
  runs code when loaded, so one that others could write is never read. A damaged or unreadable file
  is parsed anew and written again; a folder that cannot be used leaves cffi parsing as before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reports.report import cachefiles

FORMAT = 1
"""The layout of a cache file (part of its folder's name)."""


@functools.cache
def folder_name() -> str:
    """``cdefs-<hash>`` of what a parse depends on besides its text: cffi's version and
    files, pycparser's, Python's, this file's format."""
    import cffi

    return cachefiles.named(
        "cdefs", FORMAT, cffi.__version__, sys.version,
        cachefiles.stamps("cffi", ("model.py", "cparser.py", "commontypes.py")),
        cachefiles.stamps("pycparser", ("__init__.py", "c_parser.py", "c_lexer.py",
                                        "c_ast.py")))


class Kept:
    """One declaration text's cache file: its parser state and its type texts, pickled."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state: bytes | None = None
        self.types: dict[str, bytes] = {}
        if path is not None:
            with contextlib.suppress(Exception):  # missing or damaged: parsed anew
                held = pickle.loads(cachefiles.read(path) or b"")
                if isinstance(held, tuple) and len(held) == 2 and isinstance(held[0], bytes) \
                        and isinstance(held[1], dict):
                    self.state, self.types = held

    def save(self) -> None:
        if self.path is not None and self.state is not None:
            cachefiles.write(self.path, pickle.dumps((self.state, self.types)))


_STATE = ("_declarations", "_included_declarations", "_anonymous_counter", "_int_constants",
          "_recomplete", "_uses_new_feature")
"""What ``cffi.cparser.Parser.parse`` leaves in a parser (besides its weak map of pycparser
nodes, used only while parsing)."""


class _ByName(pickle.Pickler):
    """Pickles the objects a parser declared by their names (``persistent_id``)."""

    def __init__(self, file: io.BytesIO, declared: dict[int, str], model: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.declared = declared
        self.named = model.StructOrUnionOrEnum

    def persistent_id(self, obj: Any) -> str | None:
        name = self.declared.get(id(obj))
        if name is not None:
            return name
        if isinstance(obj, self.named):  # a struct declared by the type text itself
            raise pickle.PicklingError("not a declared type")
        return None


class _FromNames(pickle.Unpickler):
    def __init__(self, data: bytes, declarations: dict[str, Any]) -> None:
        super().__init__(io.BytesIO(data))
        self.declarations = declarations

    def persistent_load(self, pid: Any) -> Any:
        return self.declarations[pid][0]


def pickled_type(parser: Any, tp: Any) -> bytes | None:
    """``tp`` (a ``parse_type`` result) pickled with ``parser``'s declarations by name, or None
    if it holds a struct the parser did not declare."""
    from cffi import model

    declared = {id(obj): name for name, (obj, _quals) in parser._declarations.items()}
    out = io.BytesIO()
    try:
        _ByName(out, declared, model).dump(tp)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
    return out.getvalue()


def cached_parse_type(parser: Any, kept: Kept, parse_type: Callable[[str], Any]
                      ) -> Callable[[str], Any]:
    """``parser.parse_type`` answered from ``kept`` when it holds the text's type."""

    def cached(cdecl: str) -> Any:
        data = kept.types.get(cdecl)
        if data is not None:
            with contextlib.suppress(Exception):  # damaged, or another declaration: parse
                return _FromNames(data, parser._declarations).load()
        tp = parse_type(cdecl)
        data = pickled_type(parser, tp)
        if data is not None:
            kept.types[cdecl] = data
            kept.save()
        return tp

    return cached


def _parse_keeping(original: Callable[..., Any], folder: Path | None) -> Callable[..., Any]:
    def parse(self: Any, csource: str, override: bool = False, packed: bool = False,
              pack: Any = None, dllexport: bool = False) -> Any:
        options = (override, packed, pack, dllexport)
        if self._declarations or folder is None:
            return original(self, csource, *options)
        key = hashlib.sha256(repr((csource, options)).encode()).hexdigest()[:32]
        kept = Kept(folder / f"{key}.pickle")
        loaded = None
        if kept.state is not None:
            with contextlib.suppress(Exception):  # damaged: parsed anew
                loaded = pickle.loads(kept.state)
                if not isinstance(loaded, dict) or set(loaded) != set(_STATE):
                    loaded = None
        if loaded is not None:
            self.__dict__.update(loaded)
        else:
            original(self, csource, *options)
            kept.state = pickle.dumps({name: getattr(self, name) for name in _STATE},
                                      protocol=pickle.HIGHEST_PROTOCOL)
            kept.types = {}
            kept.save()
        self.parse_type = cached_parse_type(self, kept, self.parse_type)
        return None

    return parse


def _lazy_pycparser() -> None:
    """pycparser as a lazy module, where ``cffi.cparser`` looks first (see the docstring)."""
    import cffi

    if "pycparser" in sys.modules or hasattr(cffi, "_pycparser"):
        return
    spec = importlib.util.find_spec("pycparser")
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["pycparser"] = module
    loader.exec_module(module)
    cffi._pycparser = module


@contextlib.contextmanager
def cached_parses(environ: Any = None) -> Iterator[None]:
    """Inside the block, a new ``cffi`` parser's first ``cdef`` (and its later type texts) is
    answered from the user's cache folder (see the module's docstring); a cffi without that
    hook point (another version) is left as it is."""
    try:
        folder = cachefiles.cache_folder(folder_name(), environ)
        if "cffi.cparser" not in sys.modules:
            _lazy_pycparser()
        from cffi import cparser
    except ImportError:
        yield
        return
    original = cparser.Parser.__dict__.get("parse")
    if not callable(original) or "parse_type" not in cparser.Parser.__dict__:
        yield
        return
    cparser.Parser.parse = _parse_keeping(original, folder)
    try:
        yield
    finally:
        cparser.Parser.parse = original
