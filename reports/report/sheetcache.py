"""WeasyPrint's user-agent stylesheets, parsed once per user instead of in every render process.

Decisions:

- Importing WeasyPrint parses its three built-in stylesheets (``weasyprint.html``: the HTML5
  user-agent sheet, its form controls, and the presentational hints), ~60-80 ms of CPU at the
  start of every fresh render process: tinycss2's tokenizer, WeasyPrint's validation of each
  declaration and cssselect2's compilation of each selector into a ``lambda`` (``eval``). The
  result is the same every time for the same text and versions.
- ``cached_sheets()``, around WeasyPrint's import, has the ``CSS(string=..., counter_style=...)``
  calls of ``weasyprint.html``'s module body answered from a pickle in the user's cache folder,
  keyed by the text, the counter styles already defined, and the versions of WeasyPrint,
  tinycss2, cssselect2 and Python. The sheet's compiled selectors are pickled as their code
  (``marshal``) and rebuilt with cssselect2's own globals; everything else in a parsed sheet is
  plain data (tinycss2 tokens, WeasyPrint's validated values). The counter styles a sheet
  defines (``@counter-style``, into the dict passed in) are kept with it.
- Only that module's calls are touched (an import hook for ``weasyprint.html`` alone); a
  document's own sheets are parsed as before (``stylecache`` keeps them per process).
- The folder and its files are private like the compiled templates' (``cachefiles``): a pickle
  runs code when loaded, so one that others could write is never read. A damaged file is parsed anew
  and written again; a folder that cannot be used, or a WeasyPrint without that module, leaves
  the import as it was.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import importlib.abc
import importlib.machinery
import io
import marshal
import pickle
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from reports.report import cachefiles

FORMAT = 1
"""The layout of a cache file (part of its folder's name)."""

MODULE = "weasyprint.html"
"""The module whose ``CSS(...)`` calls are answered from the cache."""


@functools.cache
def folder_name() -> str:
    """``sheets-<hash>`` of what a parsed sheet depends on besides its text: the files of
    WeasyPrint's CSS code, tinycss2's and cssselect2's (without importing them), Python's
    version."""
    return cachefiles.named(
        "sheets", FORMAT, sys.version,
        cachefiles.stamps("weasyprint", ("__init__.py", "html.py", "css/__init__.py",
                                         "css/properties.py", "css/counters.py",
                                         "css/validation/__init__.py",
                                         "css/validation/properties.py",
                                         "css/validation/descriptors.py",
                                         "css/validation/expanders.py", "css/utils.py")),
        cachefiles.stamps("tinycss2", ("__init__.py", "ast.py", "tokenizer.py", "parser.py")),
        cachefiles.stamps("cssselect2", ("__init__.py", "compiler.py", "parser.py")))


@functools.cache
def _selector_globals() -> dict[str, Any]:
    """The globals cssselect2 evaluates a compiled selector with."""
    from cssselect2 import compiler

    return {"split_whitespace": compiler.split_whitespace, "ascii_lower": compiler.ascii_lower,
            "urlparse": compiler.urlparse, "__builtins__": builtins}


def selector(code: bytes) -> Any:
    """A compiled selector's test, from its marshalled code."""
    return types.FunctionType(marshal.loads(code), _selector_globals())


def _selector_like(function: types.FunctionType) -> bool:
    """Whether ``function`` is one of cssselect2's compiled selectors: evaluated from a string
    with exactly the globals ``selector`` gives it back."""
    held = {k: v for k, v in function.__globals__.items() if k != "__builtins__"}
    ours = {k: v for k, v in _selector_globals().items() if k != "__builtins__"}
    return (function.__name__ == "<lambda>" and function.__code__.co_filename == "<string>"
            and not function.__closure__ and not function.__defaults__
            and held.keys() == ours.keys() and all(held[k] is ours[k] for k in ours))


class _SheetPickler(pickle.Pickler):
    """Pickles cssselect2's compiled selectors (``lambda el: ...``) as their code; refuses any
    other function that is not a module's (it could not be loaded back the same)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
            if not _selector_like(obj):
                raise pickle.PicklingError("not a compiled selector")
            return selector, (marshal.dumps(obj.__code__),)
        return NotImplemented


def pickled(value: Any) -> bytes | None:
    """``value`` pickled with its compiled selectors, or None if it holds something else that
    cannot be."""
    out = io.BytesIO()
    try:
        _SheetPickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError):
        return None
    return out.getvalue()


class _SheetUnpickler(pickle.Unpickler):
    """Loads ``weasyprint.CSS`` as the class itself while the module name is ``kept_css``'s."""

    def __init__(self, data: bytes, real: type) -> None:
        super().__init__(io.BytesIO(data))
        self.real = real

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("weasyprint", "CSS"):
            return self.real
        return super().find_class(module, name)


class KeptCSS:
    """``CSS(...)`` that answers ``CSS(string=text, counter_style=styles)`` from ``folder``;
    the sheets it parsed are written by ``save`` (once ``weasyprint.CSS`` is the class again:
    pickle names a class by where it lives)."""

    def __init__(self, real: type, folder: Path) -> None:
        self.real = real
        self.folder = folder
        self.parsed: list[tuple[Path, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        text = kwargs.get("string")
        styles = kwargs.get("counter_style")
        if args or not isinstance(text, str) or set(kwargs) - {"string", "counter_style"} or (
                styles is not None and not isinstance(styles, dict)):
            return self.real(*args, **kwargs)
        before = sorted(styles) if styles is not None else None
        key = hashlib.sha256(repr((text, before)).encode()).hexdigest()[:32]
        path = self.folder / f"{key}.pickle"
        with contextlib.suppress(Exception):  # missing or damaged: parsed anew
            sheet, defined = _SheetUnpickler(cachefiles.read(path) or b"", self.real).load()
            if isinstance(sheet, self.real) and (defined is None) == (styles is None):
                if styles is not None:
                    styles.clear()
                    styles.update(defined)
                return sheet
        sheet = self.real(*args, **kwargs)
        self.parsed.append((path, (sheet, dict(styles) if styles is not None else None)))
        return sheet

    def save(self) -> None:
        for path, value in self.parsed:
            data = pickled(value)
            if data is not None:
                cachefiles.write(path, data)
        self.parsed.clear()


class _Loader(importlib.abc.Loader):
    """``MODULE``'s own loader, with ``CSS`` answered from the cache while its body runs."""

    def __init__(self, loader: Any, folder: Path) -> None:
        self.loader = loader
        self.folder = folder

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        package: Any = sys.modules["weasyprint"]
        real = package.CSS
        kept = package.CSS = KeptCSS(real, self.folder)
        try:
            self.loader.exec_module(module)
        finally:
            package.CSS = real
            if "CSS" in module.__dict__:
                setattr(module, "CSS", real)  # noqa: B010 (a module's name, not typed)
        kept.save()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> Any:
        if fullname != MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader, self.folder)
        return spec


@contextlib.contextmanager
def cached_sheets(environ: Any = None) -> Iterator[None]:
    """Inside the block, importing ``MODULE`` takes its parsed stylesheets from the user's cache
    folder (see the module's docstring)."""
    folder = None if MODULE in sys.modules else cachefiles.cache_folder(folder_name(), environ)
    if folder is None:
        yield
        return
    finder = _Finder(folder)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
