"""Message catalogs: every message of the code is translated in every shipped language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from reports.lang import SHIPPED, po_path, translations

REPO = Path(__file__).resolve().parents[1]
_PLACEHOLDER_RE = re.compile(r"%\((\w+)\)s")

Key = tuple[str | None, str]


@pytest.fixture(scope="module")
def code_messages() -> set[Key]:
    """What ``pybabel extract -F babel.cfg .`` finds: (context, msgid) of every message."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: set[Key] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(REPO), method_map, options_map
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.add((context, msgid))
    return found


def _catalog(language: str) -> Catalog:
    with po_path(language).open("rb") as file:
        return read_po(file, locale=language)


def _keys(catalog: Catalog) -> set[Key]:
    return {
        (m.context, m.id[0] if isinstance(m.id, tuple) else m.id) for m in catalog if m.id
    }


def test_extraction_finds_the_report_the_charts_and_the_email(
    code_messages: set[Key],
) -> None:
    ids = {msgid for _, msgid in code_messages}
    assert {"Key figures", "Active users per course", "The full report is attached as a PDF.",
            "Page %(page)s of %(pages)s", "%(num)s enrollment"} <= ids
    assert len(ids) > 80


@pytest.mark.parametrize("language", SHIPPED)
def test_catalog_matches_the_code(language: str, code_messages: set[Key]) -> None:
    keys = _keys(_catalog(language))
    missing = sorted(code_messages - keys, key=str)
    stale = sorted(keys - code_messages, key=str)
    assert not missing, (
        f"{po_path(language)} lacks {len(missing)} message(s) of the code, e.g. {missing[0]!r}: "
        "run pybabel extract and update (see babel.cfg) and translate them"
    )
    assert not stale, f"{po_path(language)} has messages no code uses, e.g. {stale[0]!r}"


@pytest.mark.parametrize("language", SHIPPED)
def test_every_message_is_translated_and_none_is_fuzzy(language: str) -> None:
    catalog = _catalog(language)
    assert not catalog.fuzzy, f"{po_path(language)}: the header is marked fuzzy"
    for message in catalog:
        if not message.id:
            continue
        where = f"{po_path(language)}: {message.id!r}"
        assert not message.fuzzy, f"{where} is fuzzy"
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(forms), f"{where} is not translated"
        if isinstance(message.id, tuple):
            assert len(forms) == catalog.num_plurals, f"{where}: wrong number of plural forms"


@pytest.mark.parametrize("language", SHIPPED)
def test_translations_keep_the_placeholders(language: str) -> None:
    for message in _catalog(language):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        msgid = ids[-1]
        wanted = {name for text in ids for name in _PLACEHOLDER_RE.findall(text)}
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        for form in forms:
            used = set(_PLACEHOLDER_RE.findall(form))
            # A plural form may say the count in words ("one user", Arabic "two users").
            expected = wanted - {"num"} if isinstance(message.id, tuple) else wanted
            assert expected <= used <= wanted, f"{language}: {form!r} vs {msgid!r}"
            assert "%" not in _PLACEHOLDER_RE.sub("", form), f"{language}: stray % in {form!r}"
            form % dict.fromkeys(wanted, "x")  # formats without error


def test_catalogs_are_compiled_in_memory_and_cached() -> None:
    german = translations("de")
    assert german is translations("de")
    assert german.gettext("Key figures") == "Kennzahlen"
    one = german.ngettext("%(num)s enrollment", "%(num)s enrollments", 1)
    assert one == "%(num)s Einschreibung"
    arabic = translations("ar")
    forms = [arabic.ngettext("%(num)s enrollment", "%(num)s enrollments", n)
             for n in (1, 2, 3, 11, 100)]
    # Arabic says one, two, a few (3-10), many (11-99) and other counts each its own way.
    assert forms == ["تسجيل واحد", "تسجيلان", "%(num)s تسجيلات", "%(num)s تسجيلًا", "%(num)s تسجيل"]
    assert translations("en").gettext("Key figures") == "Key figures"
    assert not list(Path(po_path("de")).parent.glob("*.mo"))  # no compiled binaries shipped
