"""Locale-aware formatting of numbers, percentages, dates and periods (Babel).

Every figure printed in a report, a chart label or a highlight goes through these helpers, so one
``locale`` (a report setting, default ``en``) decides the digit grouping and the date forms.
"""

from __future__ import annotations

from datetime import date
from functools import cache

from babel import Locale
from babel.dates import format_date, format_interval, format_skeleton
from babel.numbers import format_decimal, format_percent

from reports.lang import translations
from reports.report.periods import Period, PeriodKind

MINUS = "\u2212"


def integer(value: int, locale: str = "en") -> str:
    """A whole number with the locale's grouping, e.g. ``1,160``."""
    return str(format_decimal(value, format="#,##0", locale=locale))


def signed(value: int | float, locale: str = "en", *, decimals: int = 0) -> str:
    """A change with an explicit sign, e.g. ``+14`` or ``-9`` (drawn with U+2212 MINUS SIGN)."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    text = str(format_decimal(abs(value), format=pattern, locale=locale))
    if round(abs(value), decimals) == 0:
        return text
    return ("+" if value > 0 else MINUS) + text


def decimal(value: float, locale: str = "en", *, decimals: int = 1) -> str:
    """A number with a fixed count of decimals, e.g. ``64.2``."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return str(format_decimal(value, format=pattern, locale=locale))


@cache
def _percent_pattern(locale: str) -> str:
    """The locale's own percent pattern (``#,##0%`` in English, ``#,##0\u00a0%`` in German and
    French) with one optional decimal."""
    pattern = str(Locale.parse(locale).percent_formats[None].pattern).split(";")[0]
    last = pattern.rindex("0")
    return pattern[:last + 1] + ".#" + pattern[last + 1:]


def percent(pct: float, locale: str = "en") -> str:
    """A percentage given in percent points, without a sign, in the locale's form (``12.3`` ->
    ``12.3%``; German ``12,3\u00a0%``)."""
    return str(format_percent(abs(pct) / 100, format=_percent_pattern(locale), locale=locale))


def signed_percent(pct: float, locale: str = "en") -> str:
    """A percentage change with its sign, e.g. ``+12%`` or ``-3.5%`` (U+2212)."""
    text = percent(pct, locale)
    if round(abs(pct), 1) == 0:
        return text
    return ("+" if pct > 0 else MINUS) + text


def long_date(day: date, locale: str = "en") -> str:
    """A date written out, e.g. ``November 16, 2026``."""
    return str(format_date(day, format="long", locale=locale))


def short_day(day: date, locale: str = "en") -> str:
    """A day of a period for axis labels and tables, e.g. ``Nov 9``."""
    return str(format_skeleton("MMMd", day, locale=locale))


def weekday_day(day: date, locale: str = "en") -> str:
    """A day with its weekday, e.g. ``Mon, Nov 9``."""
    return str(format_skeleton("MMMEd", day, locale=locale))


def period_label(period: Period, locale: str = "en") -> str:
    """The period as a reader names it: ``Nov 9 - 15, 2026`` or ``October 2026``."""
    if period.kind is PeriodKind.MONTHLY:
        return str(format_skeleton("yMMMM", period.start, locale=locale))
    if period.start == period.end:
        return str(format_skeleton("yMMMd", period.start, locale=locale))
    return str(format_interval(period.start, period.end, skeleton="yMMMd", locale=locale))


def report_title(period: Period, language: str = "en") -> str:
    """The report's title: ``Weekly report``, ``Monthly report`` or ``Report``."""
    _ = translations(language).gettext
    return {
        PeriodKind.WEEKLY: _("Weekly report"),
        PeriodKind.MONTHLY: _("Monthly report"),
        PeriodKind.CUSTOM: _("Report"),
    }[period.kind]


def period_title(period: Period, language: str = "en") -> str:
    """``Weekly``, ``Monthly`` or ``Custom period``, for the ``{period_title}`` subject field."""
    t = translations(language)
    return {
        PeriodKind.WEEKLY: t.pgettext("subject field", "Weekly"),
        PeriodKind.MONTHLY: t.pgettext("subject field", "Monthly"),
        PeriodKind.CUSTOM: t.pgettext("subject field", "Custom period"),
    }[period.kind]


def period_noun(period: Period, language: str = "en") -> str:
    """How sentences refer to the period: ``this week``, ``this month``, ``this period``."""
    t = translations(language)
    return {
        PeriodKind.WEEKLY: t.pgettext("in a sentence", "this week"),
        PeriodKind.MONTHLY: t.pgettext("in a sentence", "this month"),
        PeriodKind.CUSTOM: t.pgettext("in a sentence", "this period"),
    }[period.kind]


def previous_noun(period: Period, language: str = "en") -> str:
    """How sentences refer to the previous period: ``the week before`` etc."""
    t = translations(language)
    return {
        PeriodKind.WEEKLY: t.pgettext("in a sentence", "the week before"),
        PeriodKind.MONTHLY: t.pgettext("in a sentence", "the month before"),
        PeriodKind.CUSTOM: t.pgettext("in a sentence", "the previous period"),
    }[period.kind]


def now_label(period: Period, language: str = "en") -> str:
    """The current period as a chart label: ``This week``, ``This month``, ``This period``."""
    t = translations(language)
    return {
        PeriodKind.WEEKLY: t.pgettext("chart label", "This week"),
        PeriodKind.MONTHLY: t.pgettext("chart label", "This month"),
        PeriodKind.CUSTOM: t.pgettext("chart label", "This period"),
    }[period.kind]


def previous_label(period: Period, language: str = "en") -> str:
    """The previous period as a chart label: ``Week before``, ``Month before``, ..."""
    t = translations(language)
    return {
        PeriodKind.WEEKLY: t.pgettext("chart label", "Week before"),
        PeriodKind.MONTHLY: t.pgettext("chart label", "Month before"),
        PeriodKind.CUSTOM: t.pgettext("chart label", "Previous period"),
    }[period.kind]


def comparison_title(period: Period, language: str = "en") -> str:
    """``This week compared with the week before`` (whole phrases: cases differ by language)."""
    _ = translations(language).gettext
    return {
        PeriodKind.WEEKLY: _("This week compared with the week before"),
        PeriodKind.MONTHLY: _("This month compared with the month before"),
        PeriodKind.CUSTOM: _("This period compared with the previous period"),
    }[period.kind]


def compared_with(period: Period, previous: Period, locale: str = "en",
                  language: str = "en") -> str:
    """What the figures are compared with, after "vs": ``August``, ``the week of Nov 2``.

    A month is named alone when it is in the same year as the period (with its year otherwise);
    a week by its first day; any other period by its dates.
    """
    if previous.kind is PeriodKind.MONTHLY:
        if previous.start.year == period.start.year:
            return str(format_date(previous.start, "LLLL", locale=locale))
        return str(format_skeleton("yMMMM", previous.start, locale=locale))
    if previous.kind is PeriodKind.WEEKLY:
        return translations(language).gettext("the week of %(day)s") % {
            "day": format_skeleton("MMMd", previous.start, locale=locale)}
    return period_label(previous, locale)


def weekday_short(day: date, locale: str = "en") -> str:
    """The weekday alone, abbreviated, e.g. ``Mon``."""
    return str(format_date(day, "EEE", locale=locale))


def period_label_days(start: date, end: date, locale: str = "en") -> str:
    """A few days without the year, e.g. ``Nov 2 - 8`` (one day: ``Nov 2``)."""
    if start == end:
        return short_day(start, locale)
    return str(format_interval(start, end, skeleton="MMMd", locale=locale))
