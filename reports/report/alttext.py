"""Alt text of the charts: one or more sentences that say what a chart shows, with its key numbers.

The sentences are whole messages of the report language's catalog (a translator sees the full
sentence, placeholders included); counts go through ``ngettext``. Sentences are joined with a
space, except in Chinese and Japanese, whose full stop needs none.
"""

from __future__ import annotations

from collections.abc import Sequence

from reports.lang import name, number, translations
from reports.report import fmt
from reports.report.analysis import Analysis, CourseRow, Delta

_NO_SPACE = ("ja", "zh")


def join_sentences(sentences: Sequence[str], language: str) -> str:
    """Sentences as one text, spaced the way the language spaces them."""
    glue = "" if language.split("_")[0] in _NO_SPACE else " "
    return glue.join(s for s in sentences if s)


def courses_alt(rows: Sequence[CourseRow], locale: str, language: str,
                labels: Sequence[str] | None = None) -> str:
    """The bar chart of active users per course (``labels``: each row's count as printed, e.g.
    ``<10`` for a suppressed small group)."""
    t = translations(language)
    def count(n: int) -> str:
        return number(fmt.integer(n, locale), language)

    shown = list(labels) if labels is not None else [count(r.users) for r in rows]
    words = {"num": count(len(rows)), "course": name(rows[0].name, language),
             "users": shown[0]}
    for i, row in enumerate(rows[1:3]):
        words[("second", "third")[i]] = name(row.name, language)
        words[("second_users", "third_users")[i]] = shown[i + 1]
    if len(rows) >= 3:
        text = t.ngettext(
            "Horizontal bar chart of active users in the top %(num)s course: %(course)s leads "
            "with %(users)s, followed by %(second)s (%(second_users)s) and %(third)s "
            "(%(third_users)s).",
            "Horizontal bar chart of active users in the top %(num)s courses: %(course)s leads "
            "with %(users)s, followed by %(second)s (%(second_users)s) and %(third)s "
            "(%(third_users)s).", len(rows))
    elif len(rows) == 2:
        text = t.ngettext(
            "Horizontal bar chart of active users in the top %(num)s course: %(course)s leads "
            "with %(users)s, followed by %(second)s (%(second_users)s).",
            "Horizontal bar chart of active users in the top %(num)s courses: %(course)s leads "
            "with %(users)s, followed by %(second)s (%(second_users)s).", len(rows))
    else:
        text = t.ngettext(
            "Horizontal bar chart of active users in the top %(num)s course: %(course)s leads "
            "with %(users)s.",
            "Horizontal bar chart of active users in the top %(num)s courses: %(course)s leads "
            "with %(users)s.", len(rows))
    return str(text % words)


def daily_alt(a: Analysis, *, bars: bool, missing_days: int, locale: str, language: str) -> str:
    """The chart of daily enrollments and unenrollments."""
    t = translations(language)
    _, ngettext = t.gettext, t.ngettext
    e, u = a.enrollments.current, a.unenrollments.current

    def count(n: int) -> str:
        return number(fmt.integer(n, locale), language)

    words = {
        "period": fmt.period_label(a.period, locale),
        "enrollments": ngettext("%(num)s enrollment", "%(num)s enrollments", e)
        % {"num": count(e)},
        "unenrollments": ngettext("%(num)s unenrollment", "%(num)s unenrollments", u)
        % {"num": count(u)},
    }
    first = (_("Bar chart of daily enrollments and unenrollments over %(period)s: "
               "%(enrollments)s and %(unenrollments)s in total.") if bars else
             _("Line chart of daily enrollments and unenrollments over %(period)s: "
               "%(enrollments)s and %(unenrollments)s in total.")) % words
    sentences = [first]
    known = [p for p in a.daily if p.enrollments is not None]
    if known and e > 0:
        busiest = max(known, key=lambda p: (p.enrollments or 0, -p.day.toordinal()))
        sentences.append(_("The most enrollments were on %(day)s (%(num)s).") % {
            "day": fmt.short_day(busiest.day, locale),
            "num": count(busiest.enrollments or 0)})
    if missing_days:
        sentences.append(ngettext("There is no data for %(num)s day.",
                                  "There is no data for %(num)s days.", missing_days)
                         % {"num": count(missing_days)})
    return join_sentences(sentences, language)


def comparison_alt(a: Analysis, measures: Sequence[tuple[str, Delta]], locale: str,
                   language: str) -> str:
    """The small bar charts of this period against the one before."""
    t = translations(language)
    _ = t.gettext
    parts = []
    for label, delta in measures:
        current = number(fmt.integer(delta.current, locale), language)
        if delta.previous is None:
            parts.append(_("%(measure)s: %(current)s (no previous data)")
                         % {"measure": label, "current": current})
        else:
            parts.append(_("%(measure)s: %(current)s vs %(previous)s") % {
                "measure": label, "current": current,
                "previous": number(fmt.integer(delta.previous, locale), language)})
    return str(_("Bar charts: %(title)s. %(measures)s.") % {
        "title": fmt.comparison_title(a.period, language),
        "measures": t.pgettext("list separator", "; ").join(parts)})
