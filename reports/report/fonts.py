"""Fonts for every script a report may hold, and what happens when one is missing.

Decisions:

- One explicit family chain, the same in the charts (matplotlib's ``font.family`` list, which
  falls back glyph by glyph) and in ``report.css`` (``font-family``, which Pango falls back
  through): DejaVu Sans for Latin, Greek and Cyrillic (the metrics every layout was tuned with),
  Noto Sans for what DejaVu lacks, Noto Sans CJK for Han, Kana and Hangul, Noto Sans Arabic
  (then Noto Naskh Arabic) for Arabic. Debian: ``fonts-dejavu-core``, ``fonts-noto-core``,
  ``fonts-noto-cjk``.
- The report's language moves its own script to the front: a Japanese report draws Han with the
  Japanese glyph forms (Noto Sans CJK JP), a Chinese one with the simplified forms (SC), an
  Arabic one sets Arabic and its digits in Noto Sans Arabic.
- A glyph that no installed font has is not a raw ``UserWarning`` on stderr: ``watch_glyphs``
  collects matplotlib's "Glyph ... missing" warnings while the charts are drawn and logs one line
  naming the scripts that could not be drawn (``charts.missing_glyphs scripts=CJK``).
- A render child that only draws charts may narrow matplotlib's candidates to the chains' fonts
  (``chain_fonts_only``): the same fonts win, with a fraction of the cold lookups' CPU.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from reports.logs import log_event

LATIN = ("DejaVu Sans", "Noto Sans")
CJK = {"ja": "Noto Sans CJK JP", "zh": "Noto Sans CJK SC", "ko": "Noto Sans CJK KR"}
ARABIC = ("Noto Sans Arabic", "Noto Naskh Arabic")
DEBIAN_PACKAGES = ("fonts-dejavu-core", "fonts-noto-core", "fonts-noto-cjk")

_GLYPH_RE = re.compile(r"Glyph (\d+) .*missing from font")
_log = logging.getLogger(__name__)


def family_chain(language: str = "en") -> tuple[str, ...]:
    """The font families to try, in order, for a report in ``language`` (``ja``, ``zh_Hans``)."""
    base = language.split("_")[0]
    cjk_first = CJK.get(base, CJK["ja"])
    cjk = (cjk_first, *(face for face in CJK.values() if face != cjk_first))
    if base == "ar":
        return (*ARABIC, *LATIN, *cjk)
    if base in CJK:
        # Latin first even here: CJK fonts carry wide Latin letters and digits of their own.
        return (*LATIN, *cjk, *ARABIC)
    return (*LATIN, *cjk, *ARABIC)


def installed_families(chain: tuple[str, ...]) -> list[str]:
    """The families of ``chain`` that matplotlib can find (asking for an absent family makes
    matplotlib log "findfont: Font family ... not found" on every text)."""
    from matplotlib import font_manager

    names = {entry.name for entry in font_manager.fontManager.ttflist}
    return [family for family in chain if family in names] or ["DejaVu Sans"]


def families_for(chain: list[str], texts: Iterable[str]) -> list[str]:
    """The families of ``chain`` that draw at least one character of ``texts``, in order.

    matplotlib draws each character with the first family of its ``font.family`` list that has
    it, and looks every family of the list up again for each text it measures or draws: seven
    lookups per text with the whole chain, ~10% of the charts' time. A family that is never the
    first to have a character of ``texts`` draws nothing, so leaving it out gives the same
    glyphs. The first family always stays: it sets the metrics and draws the box of a character
    that no family has.
    """
    from matplotlib import font_manager

    fonts = [
        font_manager.get_font(font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False))
        for family in chain
    ]
    used = {0}
    for char in set("".join(texts)):
        code = ord(char)
        for index, font in enumerate(fonts):
            if font.get_char_index(code):
                used.add(index)
                break
    return [family for index, family in enumerate(chain) if index in used]


def chain_fonts_only() -> list[Any]:
    """Let matplotlib choose among the fonts of the charts' family chains only; returns the full
    list it had (to put back).

    A cold lookup scores every installed font (~400 with Debian's Noto packages) for each family
    of the chain at each text size: ~0.1-0.2 s of CPU before the first chart. A family the charts
    ask for is one of the chains' (``family_chain``, whatever the language) or matplotlib's
    fallback, DejaVu Sans, and a font of the very family asked for always outscores every other
    family's, so the same fonts win (a test draws the charts both ways).
    """
    from matplotlib import font_manager

    families = {*LATIN, *CJK.values(), *ARABIC, "DejaVu Sans"}
    manager = font_manager.fontManager
    full = manager.ttflist
    manager.ttflist = [entry for entry in full if entry.name in families]
    return full


def script_of(char: str) -> str:
    """A reader's name for the script of ``char``: ``CJK``, ``Arabic``, ``Greek``, ..."""
    try:
        name = unicodedata.name(char)
    except ValueError:
        return f"U+{ord(char):04X}"
    word = name.split()[0]
    if word in {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "KANGXI"}:
        return "CJK"
    return word.capitalize()


@contextmanager
def watch_glyphs(what: str) -> Iterator[set[str]]:
    """Collect matplotlib's missing-glyph warnings; log one line naming the scripts at the end.

    Yields the set of script names found missing (empty when every glyph was drawn). Other
    warnings pass through unchanged.
    """
    missing: set[str] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield missing
    for warning in caught:
        match = _GLYPH_RE.search(str(warning.message))
        if match is not None and issubclass(warning.category, UserWarning):
            missing.add(script_of(chr(int(match.group(1)))))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if missing:
        log_event(
            _log, f"{what}.missing_glyphs", level=logging.WARNING,
            scripts=", ".join(sorted(missing)),
            hint="install a font for them (Debian: " + " ".join(DEBIAN_PACKAGES) + ")",
        )
