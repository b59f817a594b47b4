"""WeasyPrint's font subsetting without a C parse per array size.

When it writes a PDF, WeasyPrint subsets each font with HarfBuzz (``weasyprint.pdf.fonts``,
``Font._harfbuzz_subset``) and hands it the glyph ids as ``ffi.new(f'hb_codepoint_t[{n}]',
ids)``. cffi caches a C type by its text, and ``n`` is the number of glyphs the document uses
from that font (and the highest glyph id + 1): a new text for nearly every font of every report.
Each new one is parsed by pycparser after a preamble of every typedef WeasyPrint declares, ~5-7
ms of CPU: 5 parses in a process's first render, 2 per font in a later render whose text differs
(a batch's next organisation), none of it the PDF's.

``install()`` gives ``weasyprint.pdf.fonts`` an ``ffi`` whose ``new('T[n]', items)`` with ``n``
items is ``new('T[]', items)`` (and ``new('T[n]')`` is ``new('T[]', n)``): the same array (cffi
sizes an open array from its items or its length, zeroed), one parse per type per process.
Everything else goes to WeasyPrint's own ``ffi``. A test pins the coupling (WeasyPrint's module
still names the arrays that way; the PDF bytes are the same).
"""

from __future__ import annotations

import re
from typing import Any

_SIZED = re.compile(r"([A-Za-z_][A-Za-z0-9_ ]*)\[(\d+)\]")


class SizedArrays:
    """``ffi`` for a module that makes arrays as ``new('T[n]', items)``; all else is
    ``ffi``'s."""

    def __init__(self, ffi: Any) -> None:
        self.ffi = ffi

    def new(self, cdecl: Any, init: Any = None) -> Any:
        sized = _SIZED.fullmatch(cdecl) if isinstance(cdecl, str) else None
        if sized is not None:
            size = int(sized.group(2))
            if init is None:  # zeroed, as new('T[n]') is
                return self.ffi.new(f"{sized.group(1)}[]", size)
            if isinstance(init, tuple | list) and len(init) == size:
                return self.ffi.new(f"{sized.group(1)}[]", init)
        return self.ffi.new(cdecl, init)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ffi, name)


def install(fonts: Any) -> None:
    """Give ``fonts`` (``weasyprint.pdf.fonts``) a ``SizedArrays`` over its ``ffi``; a
    WeasyPrint without that ``ffi`` (another version) is left as it is (a test checks it is in
    place)."""
    if hasattr(fonts, "ffi") and not isinstance(fonts.ffi, SizedArrays):
        fonts.ffi = SizedArrays(fonts.ffi)
