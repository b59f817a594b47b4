"""Charts: PNG images of the analysis, each with a title, alt text and the table behind it.

What each chart draws is in ``chartfigures``, its margins in ``chartlayout``.

Decisions:

- matplotlib is imported inside the functions so importing this module (and the CLI) stays fast.
- Independent of the user's matplotlibrc: every figure is drawn inside the "default" style plus
  our explicit parameters (the font chain of ``fonts.family_chain``, sizes, no mathtext). A glyph
  no installed font has is logged once per chart set, naming its script (``fonts.watch_glyphs``).
- Text from the API is drawn literally: ``text.parse_math`` is off (the tick labels matplotlib
  makes read it) and every text artist we create gets ``parse_math=False``, so a course called
  ``Finance $101 $`` is not read as TeX.
- Print-sized: figures are as wide as the A4 text column (6.8 in) at ``dpi`` (150 by default), so
  WeasyPrint never rescales a huge bitmap. PNG bytes are deterministic (no Software/date chunk).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from reports.lang import translations
from reports.report import fmt
from reports.report.alttext import comparison_alt, courses_alt, daily_alt
from reports.report.analysis import Analysis
from reports.report.chartfigures import (
    BAR_LABEL_SIZE,
    PAD,
    PANEL_GAP,
    PANEL_TITLE_SIZE,
    TEXT_COLOR,
    comparison_figure,
    comparison_measures,
    course_labels,
    courses_figure,
    daily_figure,
    hidden_courses,
    new_figure,
    short_name,
)
from reports.report.chartlayout import fit
from reports.report.fonts import families_for, family_chain, installed_families, watch_glyphs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_DPI = 150

_RC: dict[str, Any] = {
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "text.color": TEXT_COLOR,
    "axes.labelcolor": TEXT_COLOR,
    "xtick.color": TEXT_COLOR,
    "ytick.color": TEXT_COLOR,
    "axes.edgecolor": "#888888",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.formatter.use_mathtext": False,
    "text.usetex": False,
    "text.parse_math": False,
    "svg.hashsalt": "ibl-reports",
    "path.simplify": True,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
}

Cell = str | int | float | None


@dataclass(frozen=True)
class ChartTable:
    """The numbers behind a chart: a header and rows of raw values (None = missing)."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Chart:
    """One chart of the report."""

    key: str
    """A stable slug, e.g. ``active-users-per-course`` (file names, CSS ids)."""
    title: str
    alt: str
    """A sentence describing what the chart shows, with the key numbers."""
    png: bytes
    table: ChartTable
    width_px: int
    height_px: int

    @property
    def data_uri(self) -> str:
        """The PNG as a ``data:`` URI for an ``<img src>``."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def make_charts(
    analysis: Analysis, *, accent: str, dpi: int = DEFAULT_DPI, locale: str = "en",
    language: str = "en",
) -> list[Chart]:
    """The report's charts; a chart with nothing to show (all zero, no courses) is left out."""
    charts: list[Chart] = []
    if analysis.org_too_small:  # fewer than min_group_size learners: no figures at all
        return charts
    with _style(language, _texts(analysis, locale, language)):
        if any(d.current or d.previous for _, d in comparison_measures(analysis, language)):
            charts.append(_comparison_chart(analysis, accent, dpi, locale, language))
        if analysis.top_courses:
            charts.append(_courses_chart(analysis, accent, dpi, locale, language))
        if analysis.daily and any(
            p.enrollments is not None or p.unenrollments is not None for p in analysis.daily
        ) and analysis.course_count:
            charts.append(_daily_chart(analysis, dpi, locale, language))
    return charts


def _texts(a: Analysis, locale: str, language: str) -> list[str]:
    """Every text the charts may draw (more does no harm): the font chain is cut to the
    families their characters need. A text drawn by a chart below must have its source here."""
    texts = [*_words(language), fmt.now_label(a.period, language), a.suppression.label,
             fmt.previous_label(a.period, language), fmt.integer(-1234567890, locale)]
    texts += [label for label, _delta in comparison_measures(a, language)]
    texts += [name for row in a.top_courses for name in (row.name, short_name(row.name))]
    texts += [f(p.day, locale) for p in a.daily
              for f in (fmt.weekday_day, fmt.weekday_short, fmt.short_day)]
    return texts


def _words(language: str) -> list[str]:
    _ = translations(language).gettext
    return [_("no data"), _("Active users"), _("Enrollments"), _("Unenrollments"), _("No data")]


@contextmanager
def _style(language: str, texts: list[str]) -> Iterator[None]:
    import matplotlib
    from matplotlib import style

    families = families_for(installed_families(family_chain(language)), texts)
    rc = {**_RC, "font.family": families}
    with watch_glyphs("charts"), style.context("default"), matplotlib.rc_context(cast(Any, rc)):
        yield


def warm_fonts(language: str = "en") -> None:
    """Look up the fonts of ``language``'s chain at every text size the charts use.

    matplotlib caches each lookup per process, but a cold one scores every installed font once
    per family of the chain (about 30 lookups for the three charts: ~0.2 s of a fresh process's
    first charts). A render worker calls this while it waits for its first job. The lookups are
    cached per family list, so this warms the list the charts of Latin course names use.
    """
    sizes = {float(v) for k, v in _RC.items() if k.endswith("size")}
    with _style(language, [*_words(language), "Warm 09"]):  # the chain of Latin course names
        fig = new_figure(0.5)
        for i, size in enumerate(sorted(sizes | {BAR_LABEL_SIZE, PANEL_TITLE_SIZE})):
            fig.text(0.02 + 0.12 * i, 0.3, "Warm 09", fontsize=size, parse_math=False)
        fig.canvas.draw()


def _png(fig: Figure, dpi: int) -> tuple[bytes, int, int]:
    """An opaque RGB PNG of ``fig`` drawn once at ``dpi``.

    - Drawn straight on its Agg canvas, not through ``savefig``: after ``tight_layout`` the
      figure keeps a placeholder layout engine, and ``savefig`` then draws the whole figure an
      extra time before the real draw (about a fifth of the charts' time, same pixels).
    - The size is the canvas buffer's own (matplotlib truncates ``inches * dpi``; computing it
      with ``round`` broke at low resolutions, e.g. 2.3 in at 20 dpi is 45 px, not 46).
    - Opaque RGB: WeasyPrint re-encodes every PNG and splits an RGBA one into an image and a
      soft mask, so dropping the (always opaque) alpha channel saves one encode per chart.
    - A low compression level because WeasyPrint decodes and recompresses it anyway.
    """
    from PIL import Image

    fig.set_dpi(dpi)
    fig.canvas.draw()
    rgba = fig.canvas.buffer_rgba()  # type: ignore[attr-defined]
    height, width = rgba.shape[:2]
    image = Image.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), width, height


def _courses_chart(a: Analysis, accent: str, dpi: int, locale: str, language: str) -> Chart:
    _ = translations(language).gettext
    rows, hide = a.top_courses, a.suppression
    hidden = hidden_courses(a)
    labels = course_labels(a, locale)
    fig = courses_figure(a, accent, dpi, locale, language)
    fit(fig, pad=PAD)
    png, w, h = _png(fig, dpi)
    alt = courses_alt(rows, locale, language, labels)
    if any(hidden):
        alt += " " + _("Courses with fewer than %(k)s active users are shown as %(label)s with a "
                       "short hatched bar of fixed length.") % {"k": hide.k, "label": hide.label}
    table = ChartTable(
        ("Course", "Course ID", "Active users"),
        tuple((r.name, r.course_id, hide.label if h else r.users)
              for r, h in zip(rows, hidden, strict=True)),
    )
    return Chart("active-users-per-course", _("Active users per course"), alt, png, table, w, h)


def _daily_chart(a: Analysis, dpi: int, locale: str, language: str) -> Chart:
    _ = translations(language).gettext
    fig = daily_figure(a, dpi, locale, language)
    fit(fig, pad=PAD)
    png, w, h = _png(fig, dpi)
    missing = [p for p in a.daily if p.enrollments is None and p.unenrollments is None]
    alt = daily_alt(a, bars=len(a.daily) <= 14, missing_days=len(missing), locale=locale,
                    language=language)
    table = ChartTable(
        ("Date", "Enrollments", "Unenrollments"),
        tuple((p.day.isoformat(), p.enrollments, p.unenrollments) for p in a.daily),
    )
    return Chart("daily-enrollments", _("Daily enrollments and unenrollments"), alt, png,
                 table, w, h)


def _comparison_chart(a: Analysis, accent: str, dpi: int, locale: str, language: str) -> Chart:
    measures = comparison_measures(a, language)
    fig = comparison_figure(a, accent, dpi, locale, language)
    fit(fig, pad=PAD, w_pad=PANEL_GAP)
    png, w, h = _png(fig, dpi)
    alt = comparison_alt(a, measures, locale, language)
    rows = tuple(
        (
            label,
            delta.previous,
            delta.current,
            delta.change,
            None if delta.pct is None else round(delta.pct, 1),
        )
        for label, delta in measures
    )
    table = ChartTable(("Measure", "Previous period", "This period", "Change", "Change %"), rows)
    return Chart("period-comparison", fmt.comparison_title(a.period, language), alt, png, table,
                 w, h)


