"""Language selection: locale and language keys, BCP 47 tags, the English fallback, the email."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from reports.config import load_config
from reports.delivery.mail import MailSummary, build_message, format_subject, render_bodies
from reports.errors import ConfigError
from reports.lang import LRI, PDI, resolve
from reports.report.analysis import analyse
from reports.report.highlights import highlights
from tests._sample import realistic

CONFIG = """
[api]
base_url = "embedded"

[[reports]]
name = "w"
org = "acme"
period = "weekly"
schedule = "0 7 * * 1"
{extra}
"""


def _load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize(
    ("locale", "language", "code", "tag"),
    [
        ("en", None, "en", "en"),
        ("de_DE", None, "de", "de-DE"),
        ("de-CH", None, "de", "de-CH"),
        ("de_DE", "en", "en", "en"),
        ("en_US", "fr-CA", "fr", "fr-CA"),
        ("pt_PT", None, "pt_BR", "pt-BR"),
        ("zh_CN", None, "zh_Hans", "zh-Hans-CN"),
        ("zh-Hans", None, "zh_Hans", "zh-Hans"),
        ("ar", None, "ar", "ar"),
        ("ja_JP", None, "ja", "ja-JP"),
        ("zh_TW", None, "en", "en"),  # traditional script: no catalog, English
        ("ko_KR", None, "en", "en"),
    ],
)
def test_the_language_and_its_tag(locale: str, language: str | None, code: str,
                                  tag: str) -> None:
    lang = resolve(locale, language)
    assert (lang.code, lang.tag) == (code, tag)
    assert lang.direction == ("rtl" if code == "ar" else "ltr")


def test_bcp47_and_posix_forms_are_accepted_and_stored_posix(tmp_path: Path) -> None:
    config = _load(tmp_path, 'locale = "de-DE"\nlanguage = "pt-BR"')
    report = config.reports[0]  # type: ignore[attr-defined]
    assert report.locale == "de_DE" and report.language == "pt_BR"
    assert report.lang.tag == "pt-BR"
    assert config.notices() == []  # type: ignore[attr-defined]


def test_an_unknown_language_falls_back_to_english_with_one_line(tmp_path: Path) -> None:
    config = _load(tmp_path, 'locale = "ko_KR"')
    assert config.reports[0].lang.code == "en"  # type: ignore[attr-defined]
    notices = config.notices()  # type: ignore[attr-defined]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert "'w'" in notices[0] and "ko_KR" in notices[0] and "English" in notices[0]


def test_a_malformed_locale_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, 'language = "xx-!!"')
    assert "language" in str(caught.value) and "xx-!!" in str(caught.value)


def test_the_email_speaks_the_reports_language() -> None:
    summary = MailSummary(
        title="Wochenbericht", org_name="Acme", period_label="9.-15. Nov. 2026",
        report_name="w", kpis=[("Aktive Nutzende", "1.160", "+12 % (+124)")],
        highlights=["Die Zahl der aktiven Nutzenden stieg."], language="de", lang_tag="de-DE",
    )
    text, html = render_bodies(summary)
    assert "Das Wichtigste" in text and "Der vollständige Bericht ist als PDF angehängt." in text
    assert '<html lang="de-DE" dir="ltr">' in html and "Automatisch versandt" in html
    assert "Highlights" not in text + html and "attached" not in text + html
    arabic = dataclasses.replace(summary, language="ar", lang_tag="ar", direction="rtl")
    assert '<html lang="ar" dir="rtl">' in render_bodies(arabic)[1]
    message = build_message(
        sender="reports@example.org", recipient="dekanin@example.org",
        subject=format_subject("{title}, {org_name}, {period_label}", period_title="Wöchentlich",
                               org_name="Acme", period_label="9.-15. Nov. 2026", report="w",
                               title="Wochenbericht"),
        text_body=text, html_body=html, pdf=b"%PDF-1.7\n%%EOF\n", pdf_name="w.pdf",
        message_id="<w.1@example.org>", date=datetime(2026, 11, 16, tzinfo=UTC),
        language="de-DE",
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Content-Language"] == "de-DE"
    assert parsed["Subject"] == "Wochenbericht, Acme, 9.-15. Nov. 2026"


def test_sentences_of_a_right_to_left_report_isolate_numbers() -> None:
    analysis = analyse(realistic(), top_n=5)
    arabic = highlights(analysis, locale="ar", language="ar")
    assert f"{LRI}1,160{PDI}" in arabic[0]
    english = highlights(analysis, locale="en", language="en")
    assert LRI not in "".join(english) and "1,160" in english[0]
