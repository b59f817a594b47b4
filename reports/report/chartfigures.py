"""The charts' matplotlib figures: what each chart draws, before its layout.

Decisions:

- matplotlib's object API only (``Figure`` + ``FigureCanvasAgg``), never pyplot: no global figure
  state, nothing left open, safe in worker processes. matplotlib is imported inside the functions
  so importing this module (and the CLI) stays fast. The figures are drawn inside the style of
  ``charts._style`` (fonts, sizes, no mathtext), so a text artist made here or later by
  matplotlib (tick labels) reads ``Finance $101 $`` literally.
- Colour-blind-safe colours (Okabe-Ito); the report's accent colour marks "this period".
- Print-sized: figures are as wide as the A4 text column (6.8 in).
- Ticks are given as a locator and a formatter (``_fixed_ticks``), not ``set_ticks``: the tick
  artists are then made once, when the layout measures them, not also here.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from reports.lang import translations
from reports.report import fmt
from reports.report.analysis import Analysis, Delta

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

COLUMN_WIDTH_IN = 6.8
BAR_LABEL_SIZE = 7.5
PANEL_TITLE_SIZE = 9
NAME_WIDTH = 30
"""Characters per line of a course name on the bar chart (two lines at most)."""
PAD = 0.4
"""Font sizes of white space around a chart's content (``chartlayout.fit``)."""
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


def new_figure(height_in: float, dpi: float = 100) -> Figure:
    """A figure as wide as the text column, with its own Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(COLUMN_WIDTH_IN, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def short_name(name: str, width: int = NAME_WIDTH, lines: int = 2) -> str:
    """``name`` wrapped to ``lines`` lines of ``width`` characters, cut with an ellipsis."""
    wrapped = textwrap.wrap(" ".join(name.split()), width, break_long_words=True) or [""]
    if len(wrapped) > lines:
        last = wrapped[lines - 1]
        wrapped = [*wrapped[: lines - 1], last[: width - 1].rstrip() + "\u2026"]
    return "\n".join(wrapped)


def hidden_courses(a: Analysis) -> list[bool]:
    """For each top course: is its count suppressed (fewer learners than the threshold)?"""
    return [a.suppression.hides(r.users, r.course_id, "users") for r in a.top_courses]


def courses_figure(a: Analysis, accent: str, dpi: int, locale: str, language: str) -> Figure:
    """Horizontal bars of the top courses' active users, labelled with ``course_labels``."""
    _ = translations(language).gettext
    rows, hide = a.top_courses, a.suppression
    fig = new_figure(0.8 + 0.28 * len(rows), dpi)
    ax = fig.add_subplot()
    positions = list(range(len(rows)))
    hidden = hidden_courses(a)
    shown = [r.users for r, h in zip(rows, hidden, strict=True) if not h]
    # A suppressed course gets a short hatched stub of fixed length, whatever its count.
    stub = max(shown or [hide.k]) * 0.04
    values = [stub if h else r.users for r, h in zip(rows, hidden, strict=True)]
    bars = ax.barh(positions, values, color=[PREVIOUS_COLOR if h else accent for h in hidden],
                   hatch=["////" if h else "" for h in hidden], height=0.7)
    _fixed_ticks(ax.yaxis, positions, [short_name(r.name) for r in rows])
    ax.invert_yaxis()
    ax.bar_label(bars, labels=course_labels(a, locale), padding=3, fontsize=BAR_LABEL_SIZE,
                 parse_math=False)
    ax.set_xlim(0, max(values) * 1.12 if max(values) else 1)
    ax.set_xlabel(_("Active users"), parse_math=False)
    ax.xaxis.set_major_formatter(_int_formatter(locale))
    ax.grid(axis="x", color="#EEEEEE", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig


def course_labels(a: Analysis, locale: str) -> list[str]:
    """Each top course's bar label: its count, or the suppression label."""
    hide = a.suppression
    return [hide.label if h else fmt.integer(r.users, locale)
            for r, h in zip(a.top_courses, hidden_courses(a), strict=True)]


def daily_figure(a: Analysis, dpi: int, locale: str, language: str) -> Figure:
    """Daily enrollments and unenrollments: bars for up to 14 days, else lines."""
    _ = translations(language).gettext
    points = a.daily
    fig = new_figure(2.3, dpi)  # its numbers are in the table under it
    ax = fig.add_subplot()
    xs = list(range(len(points)))
    enroll = [p.enrollments for p in points]
    unenroll = [p.unenrollments for p in points]
    missing = [i for i, p in enumerate(points) if p.enrollments is None and p.unenrollments is None]
    for i in missing:
        ax.axvspan(i - 0.45, i + 0.45, color=MISSING_COLOR, linewidth=0, zorder=0)
    if len(points) <= 14:
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


def comparison_measures(a: Analysis, language: str = "en") -> tuple[tuple[str, Delta], ...]:
    """The KPIs compared with the previous period, in the order they are shown."""
    _ = translations(language).gettext
    return (
        (_("Active users"), a.active_users),
        (_("Active courses"), a.active_courses),
        (_("Enrollments"), a.enrollments),
        (_("Unenrollments"), a.unenrollments),
    )


def comparison_figure(a: Analysis, accent: str, dpi: int, locale: str, language: str
                      ) -> Figure:
    """One panel per measure: the previous period's bar beside this period's."""
    _ = translations(language).gettext
    measures = comparison_measures(a, language)
    fig = new_figure(2.1, dpi)
    axes = fig.subplots(1, len(measures))
    now, before = fmt.now_label(a.period, language), fmt.previous_label(a.period, language)
    for ax, (label, delta) in zip(axes, measures, strict=True):
        names = [wrap_label(before), wrap_label(now)]
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


def wrap_label(text: str) -> str:
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

