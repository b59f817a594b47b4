"""Fonts: every script a name may be written in is drawn, and a missing font is one log line."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace

import matplotlib
import pytest

from reports.report.analysis import analyse
from reports.report.charts import installed_families, make_charts
from reports.report.fonts import families_for, family_chain, script_of, watch_glyphs
from tests._sample import realistic

NAMES = ("経済学入門", "日本語の授業：文法と会話", "مقدمة في الاقتصاد", "Εισαγωγή στη Φιλοσοφία",  # noqa: RUF001
         "미적분학", "Введение в экономику")


def test_every_family_of_the_chain_is_installed_here() -> None:
    # CI installs fonts-noto-cjk and fonts-noto-core (.ci/run); without them this fails loudly
    # instead of the PDF quietly showing boxes.
    for language in ("en", "ja", "zh_Hans", "ar"):
        assert installed_families(family_chain(language)) == list(family_chain(language))


def test_the_report_language_puts_its_script_first() -> None:
    assert family_chain("en")[0] == "DejaVu Sans"
    assert family_chain("ja").index("Noto Sans CJK JP") < family_chain("ja").index(
        "Noto Sans CJK SC")
    assert family_chain("zh_Hans").index("Noto Sans CJK SC") < family_chain("zh_Hans").index(
        "Noto Sans CJK JP")
    assert family_chain("ar")[0] == "Noto Sans Arabic"


def test_the_charts_ask_only_for_the_families_that_draw_their_characters() -> None:
    """Each family in matplotlib's list is looked up for every text; one that would draw no
    character is left out (the first family always stays)."""
    en, ja = list(family_chain("en")), list(family_chain("ja"))
    assert families_for(en, ["Calculus I", "1,234", "Mon, Nov 9", "\u2026", "<10"]) == [
        "DejaVu Sans"]
    assert families_for(en, ["Calculus", "経済学入門"]) == ["DejaVu Sans", "Noto Sans CJK JP"]
    # DejaVu Sans has Arabic and Greek letters of its own: it draws them in a Japanese report.
    assert families_for(ja, ["経済学入門", "مقدمة", "Ω"]) == [
        "DejaVu Sans", "Noto Sans CJK JP"]
    ar = list(family_chain("ar"))
    assert families_for(ar, ["مقدمة 12"]) == ["Noto Sans Arabic"]
    assert families_for(ar, ["مقدمة 12", "Calculus"]) == ["Noto Sans Arabic", "DejaVu Sans"]
    assert families_for(en, ["\ue000"]) == ["DejaVu Sans"]  # in no font: drawn as a box


def test_names_in_cjk_arabic_greek_hangul_cyrillic_draw_without_a_missing_glyph(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = realistic()
    courses = tuple(
        replace(c, name=NAMES[i], user_count=500 - i) if i < len(NAMES) else c
        for i, c in enumerate(data.courses)
    )
    analysis = analyse(replace(data, courses=courses), top_n=8)
    caplog.set_level(logging.WARNING, logger="reports")
    # pytest turns any warning into an error (filterwarnings = error): a raw "Glyph ... missing"
    # would fail here even if watch_glyphs did not log it.
    charts = make_charts(analysis, accent="#0072B2")
    assert {row[0] for row in charts[1].table.rows} >= set(NAMES)
    assert not [r for r in caplog.records if "missing_glyphs" in r.getMessage()]


def test_a_missing_font_is_one_log_line_naming_the_script_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    caplog.set_level(logging.WARNING, logger="reports")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning escaping watch_glyphs fails the test
        with watch_glyphs("charts") as missing, matplotlib.rc_context(
            {"font.family": ["DejaVu Sans"]}
        ):
            fig = Figure(figsize=(2, 1))
            FigureCanvasAgg(fig)
            fig.text(0.1, 0.5, "経済学 and 日本語 and Ελληνικά")
            fig.canvas.draw()
    assert missing == {"CJK"}
    lines = [r for r in caplog.records if r.getMessage() == "charts.missing_glyphs"]
    assert len(lines) == 1
    assert lines[0].fields["scripts"] == "CJK"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("char", "script"),
    [("経", "CJK"), ("の", "CJK"), ("ア", "CJK"), ("한", "CJK"), ("م", "Arabic"),
     ("Ω", "Greek"), ("Ж", "Cyrillic"), ("\U000e0001", "Language")],
)
def test_script_names(char: str, script: str) -> None:
    assert script_of(char) == script
