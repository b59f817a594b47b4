"""What each chart of a report says before it is drawn: key, title, alt text, table, pixel size.

``plan_charts`` decides which charts a report has and everything about them but their pixels,
from the analysis alone (no matplotlib). ``charts.make_charts`` draws that plan; the one-shot's
PDF child lays the report out from it while another process draws (``build.render_report``
with ``charts_later``), so what a chart says is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.lang import translations
from reports.report import fmt
from reports.report.alttext import comparison_alt, courses_alt, daily_alt
from reports.report.analysis import Analysis, Delta

DEFAULT_DPI = 150
COLUMN_WIDTH_IN = 6.8

Cell = str | int | float | None


@dataclass(frozen=True)
class ChartTable:
    """The numbers behind a chart: a header and rows of raw values (None = missing)."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Planned:
    """One chart of the report before it is drawn."""

    key: str
    title: str
    alt: str
    table: ChartTable
    height_in: float
    """The figure's height (its width is the text column, ``COLUMN_WIDTH_IN``)."""
    width_px: int
    height_px: int
    """The PNG's size at the plan's resolution (what matplotlib's Agg canvas will be)."""


def canvas_px(inches: float, dpi: float) -> int:
    """Pixels of a figure side, as matplotlib's canvas counts them (truncated, with its 1e-8
    tolerance for a product that falls a floating-point tick short of an integer)."""
    return int(inches * dpi + 1e-8)


def comparison_measures(a: Analysis, language: str = "en") -> tuple[tuple[str, Delta], ...]:
    """The KPIs compared with the previous period, in the order they are shown."""
    _ = translations(language).gettext
    return (
        (_("Active users"), a.active_users),
        (_("Active courses"), a.active_courses),
        (_("Enrollments"), a.enrollments),
        (_("Unenrollments"), a.unenrollments),
    )


def hidden_courses(a: Analysis) -> list[bool]:
    """For each top course, whether its count is a small group (drawn as a hatched stub)."""
    hide = a.suppression
    return [hide.hides(r.users, r.course_id, "users") for r in a.top_courses]


def course_labels(a: Analysis, locale: str) -> list[str]:
    """The count printed on each top course's bar (``<k`` for a small group)."""
    hide = a.suppression
    return [hide.label if h else fmt.integer(r.users, locale)
            for r, h in zip(a.top_courses, hidden_courses(a), strict=True)]


def daily_bars(a: Analysis) -> bool:
    """Whether the daily chart draws bars (two weeks or less) rather than lines."""
    return len(a.daily) <= 14


def missing_days(a: Analysis) -> list[int]:
    """The days of the daily chart with no data at all (shaded)."""
    return [i for i, p in enumerate(a.daily) if p.enrollments is None and p.unenrollments is None]


def plan_charts(a: Analysis, *, dpi: int = DEFAULT_DPI, locale: str = "en",
                language: str = "en") -> list[Planned]:
    """The report's charts in order; a chart with nothing to show (all zero, no courses) is left
    out, and an org under ``min_group_size`` has none."""
    plans: list[Planned] = []
    if a.org_too_small:
        return plans
    if any(d.current or d.previous for _, d in comparison_measures(a, language)):
        plans.append(_comparison(a, dpi, locale, language))
    if a.top_courses:
        plans.append(_courses(a, dpi, locale, language))
    if a.daily and any(
        p.enrollments is not None or p.unenrollments is not None for p in a.daily
    ) and a.course_count:
        plans.append(_daily(a, dpi, locale, language))
    return plans


def _planned(key: str, title: str, alt: str, table: ChartTable, height_in: float, dpi: int
             ) -> Planned:
    return Planned(key, title, alt, table, height_in, canvas_px(COLUMN_WIDTH_IN, dpi),
                   canvas_px(height_in, dpi))


def _courses(a: Analysis, dpi: int, locale: str, language: str) -> Planned:
    _ = translations(language).gettext
    rows, hide, hidden = a.top_courses, a.suppression, hidden_courses(a)
    alt = courses_alt(rows, locale, language, course_labels(a, locale))
    if any(hidden):
        alt += " " + _("Courses with fewer than %(k)s active users are shown as %(label)s with a "
                       "short hatched bar of fixed length.") % {"k": hide.k, "label": hide.label}
    table = ChartTable(
        ("Course", "Course ID", "Active users"),
        tuple((r.name, r.course_id, hide.label if h else r.users)
              for r, h in zip(rows, hidden, strict=True)),
    )
    return _planned("active-users-per-course", _("Active users per course"), alt, table,
                    0.8 + 0.28 * len(rows), dpi)


def _daily(a: Analysis, dpi: int, locale: str, language: str) -> Planned:
    _ = translations(language).gettext
    alt = daily_alt(a, bars=daily_bars(a), missing_days=len(missing_days(a)), locale=locale,
                    language=language)
    table = ChartTable(
        ("Date", "Enrollments", "Unenrollments"),
        tuple((p.day.isoformat(), p.enrollments, p.unenrollments) for p in a.daily),
    )
    # 2.3 in: its numbers are in the table under it
    return _planned("daily-enrollments", _("Daily enrollments and unenrollments"), alt, table,
                    2.3, dpi)


def _comparison(a: Analysis, dpi: int, locale: str, language: str) -> Planned:
    measures = comparison_measures(a, language)
    alt = comparison_alt(a, measures, locale, language)
    rows = tuple(
        (label, delta.previous, delta.current, delta.change,
         None if delta.pct is None else round(delta.pct, 1))
        for label, delta in measures
    )
    table = ChartTable(("Measure", "Previous period", "This period", "Change", "Change %"), rows)
    return _planned("period-comparison", fmt.comparison_title(a.period, language), alt, table,
                    2.1, dpi)
