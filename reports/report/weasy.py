"""WeasyPrint, imported without running the C compiler: ``reports.report.weasy.weasyprint``.

WeasyPrint opens Pango, HarfBuzz and fontconfig with cffi's ``dlopen``, trying several names per
library (``libgobject-2.0-0``, ``gobject-2.0-0``, ``gobject-2.0``, ...). cffi resolves every name
that is not a file with ``ctypes.util.find_library``, which on Linux runs ``/sbin/ldconfig -p``
and, when ldconfig does not know the name, ``gcc`` and ``ld``: one ``import weasyprint`` ran 102
processes (22 ldconfig, 16 gcc with its collect2 and two ld each), ~0.2 s of CPU and ~0.4 s of
wall time at the start of every cold render child.

Here ``find_library`` answers from ONE ``ldconfig -p`` listing, with the standard library's own
first step (the same pattern, the same ABI), and only while WeasyPrint is imported; it is restored
right after. A name ldconfig does not know is then not found at all; should the import fail for
that reason, it is imported again with the standard lookup, so a library that only gcc or ld can
find still loads (slowly, as before).

And ``fontTools.subset``, which WeasyPrint imports at its import but calls only when HarfBuzz
cannot subset a font (its fallback, with a warning), is loaded on first use instead
(``importlib.util.LazyLoader``): ~50-120 ms of CPU less at the start of every render process.
Likewise ``fontTools.varLib.instancer``, whose ``instantiateVariableFont`` WeasyPrint imports by
name (so a lazy module would run at once) but calls only for a variable font (none in our font
chain): while WeasyPrint is imported, that module is a stand-in whose function imports the real
one on its first call. It pulled in ``fontTools.varLib`` and its OpenType tables, 266 M
instructions (~60-90 ms of CPU) of every render process's start.

Once it is imported, pyphen's hyphenation dictionaries are read on demand (``hyphenation``:
the first ``hyphens: auto`` of a process no longer parses a whole dictionary) and the font
subsetting's glyph arrays no longer cost a C parse per size (``sizedarrays``) and the HTML
tokenizer's regex cache hits (``untilcache``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import importlib.util
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

from reports.report import cdefcache, hyphenation, sheetcache, sizedarrays, untilcache

_ABI = {"x86_64-64": "libc6,x86-64", "ppc64-64": "libc6,64bit", "sparc64-64": "libc6,64bit",
        "s390x-64": "libc6,64bit", "ia64-64": "libc6,IA-64"}
"""``ctypes.util``'s ABI names for ``ldconfig -p`` (machine-bits), libc6 otherwise."""


def _ldconfig_listing() -> bytes:
    try:
        return subprocess.run(
            ["/sbin/ldconfig", "-p"], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdout=subprocess.PIPE, env={"LC_ALL": "C", "LANG": "C"}, check=False,
        ).stdout
    except OSError:
        return b""


def soname_finder(listing: bytes) -> Any:
    """A ``find_library(name)`` that looks ``name`` up in one ``ldconfig -p`` listing only.

    It answers as the standard library's regex ``\\s+(lib{name}\\.[^\\s]+)\\s+\\({abi}`` over the
    listing would (the first entry of this ABI whose soname is ``lib{name}.``...), from a dict
    of every entry's names made in one pass: WeasyPrint asks for ~20 names, and each search
    scanned the whole listing (~15 ms of a render process's start)."""
    bits = "64" if ctypes.sizeof(ctypes.c_void_p) == 8 else "32"
    marker = os.fsencode(f"({_ABI.get(f'{os.uname().machine}-{bits}', 'libc6')}")
    names: dict[bytes, bytes] = {}
    for line in listing.splitlines():
        fields = line.split(None, 1)
        if len(fields) < 2 or not fields[0].startswith(b"lib") or not fields[1].startswith(
                marker):
            continue
        soname = fields[0]
        dot = soname.find(b".", 4)
        while dot != -1:
            names.setdefault(soname[3:dot], soname)
            dot = soname.find(b".", dot + 1)

    def find_library(name: str) -> str | None:
        found = names.get(os.fsencode(name))
        return os.fsdecode(found) if found is not None else None

    return find_library


@contextlib.contextmanager
def ldconfig_lookup() -> Iterator[None]:
    """``ctypes.util.find_library`` answers from one ldconfig listing inside the block."""
    original = ctypes.util.find_library
    ctypes.util.find_library = soname_finder(_ldconfig_listing())
    try:
        yield
    finally:
        ctypes.util.find_library = original


LOADED_ON_FIRST_USE = ("fontTools.subset",)
"""Modules WeasyPrint imports but our renders do not use (see the module's docstring)."""


def load_on_first_use(names: tuple[str, ...] = LOADED_ON_FIRST_USE) -> None:
    """Put each module of ``names`` not yet imported in ``sys.modules`` as a lazy module: it
    runs when one of its attributes is first read (``importlib.util.LazyLoader``)."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(importlib.import_module(parent), child, module)


CALLED_ON_FIRST_USE = (("fontTools.varLib.instancer", "instantiateVariableFont"),)
"""Functions WeasyPrint imports by name but our renders do not call (see the module's
docstring): their module is imported when one is first called."""


def _real_module(name: str) -> Any:
    stand_in = sys.modules.get(name)
    if getattr(stand_in, "__ibl_stand_in__", False):
        del sys.modules[name]
    return importlib.import_module(name)


def _on_first_call(name: str, function: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_real_module(name), function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    return call


@contextlib.contextmanager
def imported_on_first_call(functions: tuple[tuple[str, str], ...] = CALLED_ON_FIRST_USE
                           ) -> Iterator[None]:
    """Inside the block, ``from module import function`` of ``functions`` (modules not imported
    yet) gives a function that imports the module on its first call; after it, the stand-in
    modules are gone from ``sys.modules`` (a later import gets the real module)."""
    stand_ins: dict[str, types.ModuleType] = {}
    for name, function in functions:
        if name in sys.modules:
            continue
        module = stand_ins.setdefault(name, types.ModuleType(name, "imported on first call"))
        module.__ibl_stand_in__ = True  # type: ignore[attr-defined]
        setattr(module, function, _on_first_call(name, function))
        sys.modules[name] = module
    try:
        yield
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _import() -> Any:
    load_on_first_use()
    with imported_on_first_call(), cdefcache.cached_parses(), sheetcache.cached_sheets():
        if os.name != "posix" or not os.path.exists("/sbin/ldconfig"):
            import weasyprint as module  # macOS, Windows: find_library spawns nothing there

            return module
        try:
            with ldconfig_lookup():
                import weasyprint as module
        except OSError:  # a library only gcc or ld could find: the standard lookup
            import weasyprint as module
        return module


weasyprint = _import()
hyphenation.install()  # pyphen's dictionaries read on demand (see hyphenation.py)
sizedarrays.install(weasyprint.pdf.fonts)  # one C parse per array type (see sizedarrays.py)
untilcache.install(importlib.import_module("tinyhtml5.inputstream"))  # see untilcache.py
