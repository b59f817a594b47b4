"""Charts: PNG images of the analysis, each with a title, alt text and the table behind it.

Decisions:

- matplotlib's object API only (``Figure`` + ``FigureCanvasAgg``), never pyplot: no global figure
  state, nothing left open, safe in worker processes. matplotlib is imported inside the functions
  so importing this module (and the CLI) stays fast.
- Independent of the user's matplotlibrc: every figure is drawn inside the "default" style
  (``_default_style``: what ``matplotlib.style.use("default")`` sets, without importing
  ``matplotlib.style``, which reads its ~30 style sheets as it is imported) plus
  our explicit parameters (the font chain of ``fonts.family_chain``, sizes, no mathtext). A glyph
  no installed font has is logged once per chart set, naming its script (``fonts.watch_glyphs``).
- Text from the API is drawn literally: ``text.parse_math`` is off (the tick labels matplotlib
  makes read it) and every text artist we create gets ``parse_math=False``, so a course called
  ``Finance $101 $`` is not read as TeX.
- A warm process draws each kind of chart on the figure it drew the last one on, emptied
  (``chartcanvas``: same PNG bytes, no axes and tick artists to build again).
- The margins are ``tight_layout``'s, measured once (``chartlayout.fit``). Ticks are given as a
  locator and a formatter (``_fixed_ticks``), not ``set_ticks``: their artists are then made once,
  when the layout measures them.
- Colour-blind-safe colours (Okabe-Ito); the report's accent colour marks "this period".
- Print-sized: figures are as wide as the A4 text column (6.8 in) at ``dpi`` (150 by default), so
  WeasyPrint never rescales a huge bitmap. PNG bytes are deterministic (no Software/date chunk).
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from reports.lang import translations
from reports.report import fmt
from reports.report.analysis import Analysis
from reports.report.chartcanvas import chart_axes, new_figure
from reports.report.chartlayout import fit
from reports.report.chartplan import (
    COLUMN_WIDTH_IN,
    DEFAULT_DPI,
    Cell,
    ChartTable,
    Planned,
    comparison_measures,
    course_labels,
    daily_bars,
    hidden_courses,
    missing_days,
    plan_charts,
)
from reports.report.fonts import families_for, family_chain, installed_families, watch_glyphs

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

__all__ = ["COLUMN_WIDTH_IN", "DEFAULT_DPI", "Cell", "Chart", "ChartTable", "comparison_measures",
           "make_charts", "short_name", "warm_fonts"]

BAR_LABEL_SIZE = 7.5
PANEL_TITLE_SIZE = 9
NAME_WIDTH = 30
"""Characters per line of a course name on the bar chart (two lines at most)."""
PAD = 0.4
"""Font sizes of white space around a chart's content."""
PANEL_GAP = 1.2
"""Font sizes of white space between the comparison's panels."""

OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
ENROLL_COLOR = OKABE_ITO["blue"]
UNENROLL_COLOR = OKABE_ITO["orange"]
PREVIOUS_COLOR = "#B8B8B8"
MISSING_COLOR = "#DDDDDD"
TEXT_COLOR = "#222222"

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
    """The report's charts (``chartplan.plan_charts``: a chart with nothing to show is left
    out), drawn."""
    plans = plan_charts(analysis, dpi=dpi, locale=locale, language=language)
    charts: list[Chart] = []
    if not plans:
        return charts
    with _style(language, _texts(analysis, locale, language)):
        for plan in plans:
            figure, panel_gap = FIGURES[plan.key]
            fig = figure(analysis, plan, accent, dpi, locale, language)
            fit(fig, pad=PAD, w_pad=panel_gap)
            png, width, height = _png(fig, dpi)
            charts.append(Chart(plan.key, plan.title, plan.alt, png, plan.table, width, height))
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

    families = families_for(installed_families(family_chain(language)), texts)
    rc = {**_RC, "font.family": families}
    with watch_glyphs("charts"), matplotlib.rc_context(cast(Any, _default_style())), \
            matplotlib.rc_context(cast(Any, rc)):
        yield


NOT_STYLE = frozenset({
    "interactive", "backend", "webagg.port", "webagg.address", "webagg.port_retries",
    "webagg.open_in_browser", "backend_fallback", "toolbar", "timezone",
    "figure.max_open_warning", "figure.raise_window", "savefig.directory", "tk.window_focus",
    "docstring.hardcopy", "date.epoch"})
"""The parameters a matplotlib style leaves alone (``matplotlib.style``'s blacklist)."""
_defaults: dict[str, Any] = {}


def _default_style() -> dict[str, Any]:
    """The parameters ``matplotlib.style.use("default")`` sets (computed once)."""
    if not _defaults:
        import matplotlib
        from matplotlib import _api

        with _api.suppress_matplotlib_deprecation_warning():
            _defaults.update({key: matplotlib.rcParamsDefault[key]
                              for key in matplotlib.rcParamsDefault if key not in NOT_STYLE})
    return _defaults


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


def short_name(name: str, width: int = NAME_WIDTH, lines: int = 2) -> str:
    """``name`` wrapped to ``lines`` lines of ``width`` characters, cut with an ellipsis."""
    wrapped = textwrap.wrap(" ".join(name.split()), width, break_long_words=True) or [""]
    if len(wrapped) > lines:
        last = wrapped[lines - 1]
        wrapped = [*wrapped[: lines - 1], last[: width - 1].rstrip() + "\u2026"]
    return "\n".join(wrapped)


def _courses_figure(a: Analysis, plan: Planned, accent: str, dpi: int, locale: str,
                    language: str) -> Figure:
    _ = translations(language).gettext
    rows = a.top_courses
    fig, (ax,) = chart_axes(plan.key, plan.height_in, dpi, 1)
    positions = list(range(len(rows)))
    hide = a.suppression
    hidden = hidden_courses(a)
    shown = [r.users for r, h in zip(rows, hidden, strict=True) if not h]
    # A suppressed course gets a short hatched stub of fixed length, whatever its count.
    stub = max(shown or [hide.k]) * 0.04
    values = [stub if h else r.users for r, h in zip(rows, hidden, strict=True)]
    bars = ax.barh(positions, values, color=[PREVIOUS_COLOR if h else accent for h in hidden],
                   hatch=["////" if h else "" for h in hidden], height=0.7)
    _fixed_ticks(ax.yaxis, positions, [short_name(r.name) for r in rows])
    ax.yaxis.set_inverted(True)
    ax.bar_label(bars, labels=course_labels(a, locale), padding=3, fontsize=BAR_LABEL_SIZE,
                 parse_math=False)
    ax.set_xlim(0, max(values) * 1.12 if max(values) else 1)
    ax.set_xlabel(_("Active users"), parse_math=False)
    ax.xaxis.set_major_formatter(_int_formatter(locale))
    ax.grid(axis="x", color="#EEEEEE", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig


def _daily_figure(a: Analysis, plan: Planned, accent: str, dpi: int, locale: str,
                  language: str) -> Figure:
    _ = translations(language).gettext
    points = a.daily
    fig, (ax,) = chart_axes(plan.key, plan.height_in, dpi, 1)
    xs = list(range(len(points)))
    enroll = [p.enrollments for p in points]
    unenroll = [p.unenrollments for p in points]
    missing = missing_days(a)
    for i in missing:
        ax.axvspan(i - 0.45, i + 0.45, color=MISSING_COLOR, linewidth=0, zorder=0)
    if daily_bars(a):
        width = 0.38
        ax.bar([x - width / 2 for x in xs], [v or 0 for v in enroll], width,
               color=ENROLL_COLOR, label=_("Enrollments"))
        ax.bar([x + width / 2 for x in xs], [v or 0 for v in unenroll], width,
               color=UNENROLL_COLOR, label=_("Unenrollments"))
        labels = [fmt.weekday_day(p.day, locale) for p in points]
        if max(len(label) for label in labels) > 11:  # "seg., 9 de nov.": weekday above date
            labels = [f"{fmt.weekday_short(p.day, locale)}\n{fmt.short_day(p.day, locale)}"
                      for p in points]
        _fixed_ticks(ax.xaxis, xs, labels)
    else:
        ax.plot(xs, [float("nan") if v is None else v for v in enroll], color=ENROLL_COLOR,
                marker="o", markersize=3, linewidth=1.6, label=_("Enrollments"))
        ax.plot(xs, [float("nan") if v is None else v for v in unenroll], color=UNENROLL_COLOR,
                marker="s", markersize=3, linewidth=1.6, linestyle="--", label=_("Unenrollments"))
        step = max(1, round(len(points) / 8))
        ticks = xs[::step]
        _fixed_ticks(ax.xaxis, ticks, [fmt.short_day(points[i].day, locale) for i in ticks])
        ax.set_xlim(-0.6, len(points) - 0.4)
    if missing:
        from matplotlib.patches import Patch

        handles, _labels = ax.get_legend_handles_labels()
        handles.append(Patch(color=MISSING_COLOR, label=_("No data")))
        ax.legend(handles=handles, frameon=False, loc="upper left", ncols=3)
    else:
        ax.legend(frameon=False, loc="upper left", ncols=2)
    top = max([v for v in (*enroll, *unenroll) if v is not None] or [0])
    ax.set_ylim(0, max(1, top) * 1.25)
    ax.yaxis.set_major_formatter(_int_formatter(locale))
    ax.grid(axis="y", color="#EEEEEE", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig


def _comparison_figure(a: Analysis, plan: Planned, accent: str, dpi: int, locale: str,
                       language: str) -> Figure:
    _ = translations(language).gettext
    measures = comparison_measures(a, language)
    fig, axes = chart_axes(plan.key, plan.height_in, dpi, len(measures))
    now, before = fmt.now_label(a.period, language), fmt.previous_label(a.period, language)
    for ax, (label, delta) in zip(axes, measures, strict=True):
        names = [_wrap_label(before), _wrap_label(now)]
        values = [delta.previous or 0, delta.current]
        colors = [PREVIOUS_COLOR, accent]
        bars = ax.bar([0, 1], values, color=colors, width=0.65)
        texts = [fmt.integer(v, locale) for v in values]
        if delta.previous is None:
            texts[0] = _("no data")
        ax.bar_label(bars, labels=texts, padding=2, fontsize=BAR_LABEL_SIZE, parse_math=False)
        _fixed_ticks(ax.xaxis, [0, 1], names)
        ax.set_ylim(0, max(1, *values) * 1.25)
        ax.yaxis.set_visible(False)  # no ticks, no labels: nothing to measure or draw
        ax.spines["left"].set_visible(False)
        # y=1.0 is where matplotlib would put it (no tick label on top), without measuring.
        ax.set_title(label, parse_math=False, fontsize=PANEL_TITLE_SIZE, pad=8, y=1.0)
    return fig


FigureMaker = Callable[[Analysis, Planned, str, int, str, str], "Figure"]
FIGURES: dict[str, tuple[FigureMaker, float | None]] = {
    "period-comparison": (_comparison_figure, PANEL_GAP),
    "active-users-per-course": (_courses_figure, None),
    "daily-enrollments": (_daily_figure, None),
}
"""Each chart's figure (before its layout) and the white space between its panels."""


def _wrap_label(text: str) -> str:
    """A bar's label on lines of about 10 characters, broken between words only (German
    "Vorzeitraum" stays one word, not "Vorzeitrau" and "m")."""
    return "\n".join(textwrap.wrap(text, 10, break_long_words=False, break_on_hyphens=True))


def _fixed_ticks(axis: Axis, locations: list[int], labels: list[str]) -> None:
    """Ticks at ``locations`` labelled ``labels``: ``set_ticks(locations, labels)`` without
    making the tick artists now (they are made once, when the layout measures them)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    axis.set_major_locator(FixedLocator(locations))
    axis.set_major_formatter(FixedFormatter(labels))


def _int_formatter(locale: str) -> Any:
    from matplotlib.ticker import FuncFormatter

    def format_tick(value: float, _pos: int | None) -> str:
        return fmt.integer(round(value), locale) if float(value).is_integer() else ""

    return FuncFormatter(format_tick)

