"""Text in a page of either direction: names and numbers isolated for bidi, CSS strings.

An Arabic report lays out right to left; a course name, a username or a signed number inside
it keeps its own order (``+11`` does not become ``11+``), and text that goes into CSS (running
headers, page counters) is escaped so a catalog or a display name cannot close ``<style>``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from markupsafe import Markup


def css_string(text: object) -> Any:
    """``text`` as a quoted CSS string, safe inside ``<style>`` (every other character escaped)."""
    body = "".join(
        c if c.isalnum() or c in " .,-" else f"\\{ord(c):x} " for c in str(text)
    )
    return Markup(f'"{body}"')


def direction_of(text: str) -> str:
    """``rtl`` when the first strong character of ``text`` is right-to-left, else ``ltr``
    (numbers, signs and Latin names)."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return "ltr"


def isolate(text: str) -> Markup:
    """``text`` escaped in a ``<bdi>`` with its own direction: a course name, a username or a
    signed number keeps its order inside a sentence or table of the other direction
    (``+11`` does not become ``11+`` in an Arabic table)."""
    return Markup('<bdi dir="{}">{}</bdi>').format(direction_of(text), text)


_RTL_OR_EMBEDDING = frozenset(
    ("R", "AL", "AN", "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"))
"""Bidi classes that can reorder text in a left-to-right page: right-to-left letters, Arabic
digits and explicit embeddings or isolates."""


def needs_isolation(text: str) -> bool:
    """Whether ``text`` could move its neighbours (or be moved) in a left-to-right page."""
    return any(unicodedata.bidirectional(ch) in _RTL_OR_EMBEDDING for ch in text)


def isolator(direction: str) -> Callable[[str], Markup]:
    """``isolate`` for a page of ``direction``.

    In a right-to-left page every name and number is isolated. In a left-to-right page a text
    without right-to-left characters or embeddings is laid out exactly the same with or without
    a ``<bdi>`` (every character resolves to the page's level), so it is only escaped: an
    English report had ~200 such ``<bdi>`` boxes, about 15% of WeasyPrint's time.
    """
    if direction == "rtl":
        return isolate

    def isolate_if_needed(text: str) -> Markup:
        return isolate(text) if needs_isolation(text) else Markup("{}").format(text)

    return isolate_if_needed


_PLACEHOLDER_RE = re.compile(r"%\((\w+)\)s")


def css_content(text: str, **values: str) -> Markup:
    """A CSS ``content`` value from a translated sentence: its words as CSS strings, each
    ``%(name)s`` placeholder replaced by the CSS function in ``values`` (``counter(page)``).

    The strings are escaped for CSS (quotes, backslashes, line breaks, ``<``), so a catalog
    cannot close the ``<style>`` element or the declaration."""
    parts: list[str] = []
    for i, piece in enumerate(_PLACEHOLDER_RE.split(text)):
        if i % 2:
            parts.append(values[piece])
        elif piece:
            parts.append('"' + "".join(
                ch if ch.isalnum() or (ch in " .,:;-/()'" and ch != "\\") else f"\\{ord(ch):x} "
                for ch in piece
            ) + '"')
    return Markup(" ".join(parts) or '""')
