"""The language of a report: which catalog speaks, its BCP 47 tag, its writing direction.

Decisions:

- A report's ``locale`` (numbers and dates) also picks its language; an optional ``language``
  key overrides it. Both accept BCP 47 (``de-DE``, ``zh-Hans-CN``) and POSIX (``de_DE``) forms.
- Shipped catalogs: ``SHIPPED``. A locale matches a catalog by language, then script or
  territory: ``de_AT`` speaks ``de``, ``pt_PT`` speaks ``pt_BR``, ``zh_CN``/``zh_SG``/``zh``
  speak ``zh_Hans``; ``zh_TW`` (traditional script) and languages without a catalog fall back
  to English, which ``fallback_notice`` says in one line when the config is loaded.
- The tag written into the PDF's ``/Lang``, the HTML's ``lang`` and the mail's
  ``Content-Language`` is the language actually used, refined by the locale's territory when it
  is the same language (``de`` + ``de_CH`` -> ``de-CH``; ``en`` + ``de_DE`` -> ``en``).
- Catalogs are the ``.po`` files under ``reports/locale/`` (shipped inside the package). They
  are compiled in memory with Babel on first use (a few ms) and cached per process: no ``.mo``
  binaries in the repository, nothing to build at install. Fuzzy entries are never used.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
SHIPPED = ("de", "fr", "es", "pt_BR", "ar", "ja", "zh_Hans")
"""The catalogs under ``LOCALE_DIR`` besides the source language, English."""


class Catalog(Protocol):
    """What the code asks of a catalog (``babel.support.Translations`` and its null twin)."""

    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int) -> str: ...

    def pgettext(self, context: str, message: str) -> str: ...


@dataclass(frozen=True)
class Language:
    """The language a report is written in."""

    code: str
    """The catalog: ``en`` or one of ``SHIPPED``."""
    tag: str
    """BCP 47, e.g. ``de-DE``, ``pt-BR``, ``zh-Hans-CN``."""
    direction: str
    """``ltr`` or ``rtl`` (Babel's ``Locale.text_direction``)."""


def parse_locale(value: str) -> Any:
    """A Babel ``Locale`` from a BCP 47 (``de-DE``) or POSIX (``de_DE``) name.

    Raises ValueError naming the value when it is not a locale Babel knows.
    """
    from babel import Locale, UnknownLocaleError

    text = value.strip().split(".")[0].split("@")[0].replace("-", "_")
    try:
        return Locale.parse(text)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"unknown locale {value!r} (write a language and region Babel knows, "
                         "BCP 47 or POSIX: de-DE, de_DE, pt-BR, zh-Hans-CN)") from None


def posix(value: str) -> str:
    """``value`` in the POSIX form Babel's formatting functions take: ``de-DE`` -> ``de_DE``."""
    return str(parse_locale(value))


def catalog_for(locale: Any) -> str | None:
    """The shipped catalog a Babel ``Locale`` reads, or None when there is none."""
    lang, script, territory = locale.language, locale.script, locale.territory
    if lang == SOURCE_LANGUAGE:
        return SOURCE_LANGUAGE
    if lang == "zh":
        hant = script == "Hant" or (script is None and territory in {"TW", "HK", "MO"})
        return None if hant else "zh_Hans"
    if lang == "pt":
        return "pt_BR"
    return lang if lang in SHIPPED else None


@functools.lru_cache(maxsize=64)
def catalog_code(locale: str, language: str | None = None) -> str:
    """The catalog a report with this ``locale`` and optional ``language`` reads: ``en`` or one
    of ``SHIPPED`` (without loading Babel's locale data, which ``resolve`` needs)."""
    return catalog_for(parse_locale(language or locale)) or SOURCE_LANGUAGE


@functools.lru_cache(maxsize=64)
def resolve(locale: str, language: str | None = None) -> Language:
    """The language of a report with this ``locale`` and optional ``language`` override."""
    from babel import Locale

    place = parse_locale(locale)
    wanted = parse_locale(language) if language else place
    code = catalog_code(locale, language)
    used = Locale.parse(code)
    script = used.script
    territory = used.territory
    if territory is None and wanted.language == used.language:
        territory = wanted.territory
    if territory is None and place.language == used.language and place.script in {None, script}:
        territory = place.territory
    tag = "-".join(part for part in (used.language, script, territory) if part)
    return Language(code=code, tag=tag, direction=str(used.text_direction))


def fallback_notice(name: str, locale: str, language: str | None) -> str | None:
    """One line when a report's language has no catalog and it falls back to English."""
    asked = language or locale
    if asked == SOURCE_LANGUAGE or asked.startswith((f"{SOURCE_LANGUAGE}_", f"{SOURCE_LANGUAGE}-")):
        return None  # English asked for (the default): no need to import Babel to know it
    if catalog_code(locale, language) != SOURCE_LANGUAGE:
        return None
    if parse_locale(asked).language == SOURCE_LANGUAGE:
        return None
    key = "language" if language else "locale"
    return (
        f"report {name!r}: no translation for {key} {asked!r} (shipped: en, "
        f"{', '.join(SHIPPED)}); its wording is English"
    )


LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"
"""Unicode bidi isolates: left-to-right, first-strong, pop."""


@functools.lru_cache(maxsize=16)
def is_rtl(code: str) -> bool:
    """Whether the language of catalog ``code`` is written right to left."""
    from babel import Locale

    return bool(Locale.parse(code).text_direction == "rtl")


def number(text: str, code: str) -> str:
    """A formatted number for a sentence in ``code``: in a right-to-left language it is
    isolated left to right, so ``+15`` does not turn into ``15+``."""
    return f"{LRI}{text}{PDI}" if is_rtl(code) else text


def name(text: str, code: str) -> str:
    """A name from the data (course, user) for a sentence in ``code``: in a right-to-left
    language it is isolated, so a Latin name with digits keeps its own order."""
    return f"{FSI}{text}{PDI}" if is_rtl(code) else text


def po_path(code: str) -> Path:
    """The catalog file of a shipped language."""
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.lru_cache(maxsize=16)
def translations(code: str = SOURCE_LANGUAGE) -> Catalog:
    """The ``babel.support.Translations`` of ``code`` (identity for English), cached."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    if code == SOURCE_LANGUAGE:
        return cast(Catalog, NullTranslations())
    if code not in SHIPPED:
        raise ValueError(f"no catalog for language {code!r}")
    with po_path(code).open("rb") as file:
        catalog = read_po(file, locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return cast(Catalog, Translations(compiled, domain=DOMAIN))
