"""The report's ``<style>`` sheets, parsed once per process instead of on every render.

WeasyPrint parses every ``<style>`` element of a document each time it renders it: for
``templates/report.css`` that is ~27 ms of a ~550 ms PDF stage (tinycss2 + cssselect2's
compilation of each selector), the same work for every report. ``take_styles`` lifts the
document's ``<style>`` elements out of WeasyPrint's parsed tree and returns them as parsed
``weasyprint.CSS`` objects, kept in a small per-process cache keyed by their text and base URL,
for ``render(stylesheets=...)``. The HTML itself (what is archived, previewed and mailed) is not
touched: it still carries its ``<style>`` and styles itself anywhere. A user's template
override of the CSS is just another text, parsed and cached on its first use.

Stylesheets passed to WeasyPrint this way are of the *user* origin, not the author's. Moving
*every* ``<style>`` of the document keeps their cascade among themselves (same origin, same
order, same specificities) and above the user agent's sheet; what would change is their rank
against other author styles, so a document that has any (``<link rel=stylesheet>``, a ``style``
attribute, a ``<style>`` with attributes or children) is left as it is and rendered the usual
way. So is a sheet with an at-rule whose effect is a side effect at parse time and would be lost
on a cached sheet (``@font-face`` fetches fonts through the render's URL guard, ``@import``,
``@counter-style``, ``@layer``, ...): only ``@page`` (and its margin boxes) and ``@media`` are
taken.
"""

from __future__ import annotations

import functools
import re
from typing import Any

CACHE_SIZE = 16
"""Parsed sheets kept per process: the shared ``report.css`` plus the small per-report one
(accent colour, running header) of the last few reports."""

_MARGIN_BOXES = {
    f"{side}-{where}"
    for side, wheres in (
        ("top", ("left-corner", "left", "center", "right", "right-corner")),
        ("bottom", ("left-corner", "left", "center", "right", "right-corner")),
        ("left", ("top", "middle", "bottom")),
        ("right", ("top", "middle", "bottom")),
    )
    for where in wheres
}
_SAFE_AT_RULES = frozenset({"page", "media"} | _MARGIN_BOXES)
_AT_RULE = re.compile(r"@([A-Za-z-]+)")


def cacheable(text: str) -> bool:
    """True if ``text`` has no at-rule other than ``@page``, its margin boxes and ``@media``.

    Errs on the safe side: an ``@`` in a string or comment (``content: "a@b"``) counts too.
    """
    return all(name.lower() in _SAFE_AT_RULES for name in _AT_RULE.findall(text))


@functools.lru_cache(maxsize=CACHE_SIZE)
def parsed(text: str, base_url: str) -> Any:
    """``text`` parsed by WeasyPrint as a print stylesheet (shared; never mutated by a render)."""
    from reports.report.weasy import weasyprint

    return weasyprint.CSS(string=text, base_url=base_url, media_type="print")


def take_styles(document: Any) -> list[Any] | None:
    """Remove the ``<style>`` elements from a parsed ``weasyprint.HTML`` and return them parsed.

    ``None`` (and the tree untouched) when the document styles itself in any other way too
    (see the module docstring); then WeasyPrint parses its styles as usual.
    """
    found: list[tuple[Any, Any]] = []
    for parent in document.etree_element.iter():
        if parent.get("style") is not None:
            return None
        for child in parent:
            tag = child.tag
            if not isinstance(tag, str):  # a comment or processing instruction
                continue
            name = tag.rsplit("}", 1)[-1]
            if name == "link":
                return None
            if name == "style":
                if tag != "style" or child.attrib or len(child):
                    return None
                found.append((parent, child))
    texts = [child.text or "" for _, child in found]
    if not all(cacheable(text) for text in texts):
        return None
    base_url = document.base_url or ""
    sheets = [parsed(text, base_url) for text in texts]
    for parent, child in found:
        parent.remove(child)
    return sheets
