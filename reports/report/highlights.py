"""Highlights: a few plain-language sentences about the period, from deterministic rules.

Each sentence only restates figures of the ``Analysis`` (formatted in the report's locale), so
every number in it can be traced to the data. Sentences are plain text: names from the API are
not escaped here; the HTML templates escape them. The wording comes from the report language's
catalog (``language``); numbers follow ``locale``. Counts use ``ngettext``, so a language with
more plural forms (Arabic has six) says each count its own way.
"""

from __future__ import annotations

from reports.lang import name, number, translations
from reports.report import fmt
from reports.report.analysis import Analysis, Delta, Mover

MAX_HIGHLIGHTS = 5


def highlights(
    analysis: Analysis, *, locale: str = "en", language: str = "en"
) -> tuple[str, ...]:
    """Up to five sentences, the most important first."""
    if analysis.org_too_small:
        return (too_small_sentence(analysis, language),)
    w = _Words(locale, language)
    sentences = [
        _active_users(analysis, w),
        _top_course(analysis, w),
        _enrollments(analysis, w),
        _movers(analysis, w),
        _engagement(analysis, w),
        _missing(analysis, w),
    ]
    return tuple(s for s in sentences if s)[:MAX_HIGHLIGHTS]


class _Words:
    """The catalog and the number format of one report."""

    def __init__(self, locale: str, language: str) -> None:
        t = translations(language)
        self.locale, self.language = locale, language
        self.gettext, self.ngettext = t.gettext, t.ngettext

    def int(self, n: int) -> str:
        return number(fmt.integer(n, self.locale), self.language)

    def num(self, text: str) -> str:
        return number(text, self.language)

    def name(self, text: str) -> str:
        return name(text, self.language)


def _active_users(a: Analysis, w: _Words) -> str:
    _, ngettext = w.gettext, w.ngettext
    d = a.active_users
    words = {"now": fmt.period_noun(a.period, w.language),
             "before": fmt.previous_noun(a.period, w.language),
             "current": w.int(d.current)}
    if d.current == 0:
        if d.previous is None:
            return _("No users were active %(now)s, and there is no earlier data to compare "
                     "with.") % words
        if d.previous == 0:
            return _("No users were active %(now)s or %(before)s.") % words
        return ngettext("No users were active %(now)s, down from %(num)s user %(before)s.",
                        "No users were active %(now)s, down from %(num)s users %(before)s.",
                        d.previous) % {**words, "num": w.int(d.previous)}
    if d.previous is None:
        return ngettext(
            "%(num)s user was active %(now)s; there is no data for %(before)s to compare with.",
            "%(num)s users were active %(now)s; there is no data for %(before)s to compare "
            "with.", d.current) % {**words, "num": words["current"]}
    words["previous"] = w.int(d.previous)
    if d.previous == 0:
        return _("Active users rose to %(current)s, from none %(before)s.") % words
    if d.change == 0:
        return _("Active users held steady at %(current)s.") % words
    rose = (d.change or 0) > 0
    if d.pct is None:  # a base under min_group_size: no percentage
        text = (_("Active users rose to %(current)s (from %(previous)s %(before)s).")
                if rose else
                _("Active users fell to %(current)s (from %(previous)s %(before)s)."))
        return text % words
    if round(abs(d.pct), 1) == 0:
        text = (_("Active users rose slightly to %(current)s (from %(previous)s %(before)s).")
                if rose else
                _("Active users fell slightly to %(current)s (from %(previous)s %(before)s)."))
        return text % words
    words["pct"] = w.num(fmt.percent(d.pct, w.locale))
    text = (_("Active users rose %(pct)s to %(current)s (from %(previous)s %(before)s).")
            if rose else
            _("Active users fell %(pct)s to %(current)s (from %(previous)s %(before)s)."))
    return text % words


def _top_course(a: Analysis, w: _Words) -> str:
    if not a.top_courses:
        return ""
    top = a.top_courses[0]
    active = a.active_courses.current
    hidden = a.suppression.hides(top.users, top.course_id, "users")
    words = {"course": w.name(top.name),
             "num": a.suppression.label if hidden else w.int(top.users)}
    if active == 1:
        return w.ngettext("%(course)s was the only active course, with %(num)s active user.",
                          "%(course)s was the only active course, with %(num)s active users.",
                          top.users) % words
    return w.ngettext("%(course)s led with %(num)s active user, among %(courses)s active "
                      "courses.",
                      "%(course)s led with %(num)s active users, among %(courses)s active "
                      "courses.", top.users) % {**words, "courses": w.int(active)}


def _enrollments(a: Analysis, w: _Words) -> str:
    _, ngettext = w.gettext, w.ngettext
    e, u, net = a.enrollments.current, a.unenrollments.current, a.net_enrollments
    if e == 0 and u == 0:
        if a.daily and all(p.enrollments is None for p in a.daily):
            return ""  # nothing known: the missing-data sentence says so
        return _("There were no enrollments or unenrollments %(now)s.") % {
            "now": fmt.period_noun(a.period, w.language)}
    enrollments = ngettext("%(num)s enrollment", "%(num)s enrollments", e) % {"num": w.int(e)}
    unenrollments = ngettext("%(num)s unenrollment", "%(num)s unenrollments", u) % {
        "num": w.int(u)}
    words = {"enrollments": enrollments, "unenrollments": unenrollments,
             "net": w.int(abs(net.current)), "before": fmt.previous_noun(a.period, w.language)}
    if net.previous is None:
        if net.current > 0:
            text = _("There were %(enrollments)s and %(unenrollments)s, a net gain of %(net)s.")
        elif net.current < 0:
            text = _("There were %(enrollments)s and %(unenrollments)s, a net loss of %(net)s.")
        else:
            text = _("There were %(enrollments)s and %(unenrollments)s, no net change.")
        return text % words
    words["previous"] = w.num(fmt.signed(net.previous, w.locale))
    if net.current > 0:
        text = _("There were %(enrollments)s and %(unenrollments)s, a net gain of %(net)s "
                 "(%(before)s: %(previous)s).")
    elif net.current < 0:
        text = _("There were %(enrollments)s and %(unenrollments)s, a net loss of %(net)s "
                 "(%(before)s: %(previous)s).")
    else:
        text = _("There were %(enrollments)s and %(unenrollments)s, no net change "
                 "(%(before)s: %(previous)s).")
    return text % words


def _movers(a: Analysis, w: _Words) -> str:
    _ = w.gettext
    shown = [m for m in a.movers
             if not a.suppression.hides_change(m.users, m.previous_users, m.course_id)]
    rise = next((m for m in shown if m.change > 0), None)
    drop = next((m for m in shown if m.change < 0), None)

    def words(m: Mover) -> dict[str, str]:
        return {"course": w.name(m.name), "change": w.num(fmt.signed(m.change, w.locale)),
                "num": w.int(m.users)}

    if rise and drop:
        return _("The biggest rise was in %(course)s (%(change)s to %(num)s); the biggest drop "
                 "was in %(drop_course)s (%(drop_change)s to %(drop_num)s).") % {
            **words(rise), **{f"drop_{k}": v for k, v in words(drop).items()}}
    if rise:
        return _("The biggest rise was in %(course)s (%(change)s to %(num)s).") % words(rise)
    if drop:
        return _("The biggest drop was in %(course)s (%(change)s to %(num)s).") % words(drop)
    return ""


def _missing(a: Analysis, w: _Words) -> str:
    m = a.missing
    if m.days_fully_missing:
        n = m.days_fully_missing
        return w.ngettext("Enrollment data was missing for %(num)s day; it is not counted.",
                          "Enrollment data was missing for %(num)s days; those days are not "
                          "counted.", n) % {"num": w.int(n)}
    if m.enrollment_course_days + m.unenrollment_course_days:
        n = len(m.courses_with_gaps)
        return w.ngettext("Some enrollment data was missing (%(num)s course); missing days are "
                          "not counted.",
                          "Some enrollment data was missing (%(num)s courses); missing days "
                          "are not counted.", n) % {"num": w.int(n)}
    return ""


def _engagement(a: Analysis, w: _Words) -> str:
    eng, perf = a.engagement, a.performance
    if eng.mean is None:
        return ""
    words = {"mean": w.num(fmt.decimal(eng.mean, w.locale)), "num": w.int(eng.counted)}
    if perf.mean is None:
        return w.ngettext(
            "The average engagement index was %(mean)s across %(num)s user with a score.",
            "The average engagement index was %(mean)s across %(num)s users with a score.",
            eng.counted) % words
    return w.ngettext(
        "The average engagement index was %(mean)s across %(num)s user with a score; the "
        "average performance index was %(perf)s.",
        "The average engagement index was %(mean)s across %(num)s users with a score; the "
        "average performance index was %(perf)s.",
        eng.counted) % {**words, "perf": w.num(fmt.decimal(perf.mean, w.locale))}


def too_small_sentence(a: Analysis, language: str = "en") -> str:
    """What a report of an org with fewer than min_group_size active learners says instead."""
    _ = translations(language).gettext
    return _("Fewer than %(k)s learners were active %(now)s, so the key figures are not shown: "
             "groups under %(k)s learners could single out individuals.") % {
        "k": a.suppression.k, "now": fmt.period_noun(a.period, language)}


def describe_delta(delta: Delta, locale: str = "en", language: str = "en") -> str:
    """A short comparison, e.g. ``+12% (+124)`` or ``no previous data``."""
    _ = translations(language).gettext
    if delta.previous is None or delta.change is None:
        return _("no previous data")
    if delta.change == 0:
        return _("no change")
    change = fmt.signed(delta.change, locale)
    if delta.pct is None:
        return _("%(change)s (from 0)") % {"change": change} if delta.previous == 0 else change
    return f"{fmt.signed_percent(delta.pct, locale)} ({change})"
