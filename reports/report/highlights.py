"""Highlights: a few plain-language sentences about the period, from deterministic rules.

Each sentence only restates figures of the ``Analysis`` (formatted in the report's locale), so
every number in it can be traced to the data. Sentences are plain text: names from the API are
not escaped here; the HTML templates escape them.
"""

from __future__ import annotations

from reports.report import fmt
from reports.report.analysis import Analysis, Delta

MAX_HIGHLIGHTS = 5


def highlights(analysis: Analysis, *, locale: str = "en") -> tuple[str, ...]:
    """Up to five sentences, the most important first."""
    if analysis.org_too_small:
        return (too_small_sentence(analysis),)
    sentences = [
        _active_users(analysis, locale),
        _top_course(analysis, locale),
        _enrollments(analysis, locale),
        _movers(analysis, locale),
        _engagement(analysis, locale),
        _missing(analysis, locale),
    ]
    return tuple(s for s in sentences if s)[:MAX_HIGHLIGHTS]


def _users(n: int, locale: str) -> str:
    return f"{fmt.integer(n, locale)} {'user' if n == 1 else 'users'}"


def _active_users(a: Analysis, locale: str) -> str:
    d, now, before = a.active_users, fmt.period_noun(a.period), fmt.previous_noun(a.period)
    current = fmt.integer(d.current, locale)
    if d.current == 0:
        if d.previous is None:
            return f"No users were active {now}, and there is no earlier data to compare with."
        if d.previous == 0:
            return f"No users were active {now} or {before}."
        return f"No users were active {now}, down from {_users(d.previous, locale)} {before}."
    if d.previous is None:
        verb = "was" if d.current == 1 else "were"
        return (
            f"{_users(d.current, locale)} {verb} active {now}; there is no data for "
            f"{before} to compare with."
        )
    previous = fmt.integer(d.previous, locale)
    if d.previous == 0:
        return f"Active users rose to {current}, from none {before}."
    if d.change == 0:
        return f"Active users held steady at {current}."
    verb = "rose" if (d.change or 0) > 0 else "fell"
    if d.pct is None:  # a base too small for a percentage
        return f"Active users {verb} to {current} (from {previous} {before})."
    if round(abs(d.pct), 1) == 0:
        return f"Active users {verb} slightly to {current} (from {previous} {before})."
    return (
        f"Active users {verb} {fmt.percent(d.pct, locale)} to {current} "
        f"(from {previous} {before})."
    )


def _top_course(a: Analysis, locale: str) -> str:
    if not a.top_courses:
        return ""
    top = a.top_courses[0]
    if a.suppression.hides(top.users, top.course_id, "users"):
        users = f"{a.suppression.label} active users"
    else:
        users = _count(top.users, "active user", locale)
    active = a.active_courses.current
    if active == 1:
        return f"{top.name} was the only active course, with {users}."
    return (
        f"{top.name} led with {users}, among {fmt.integer(active, locale)} active courses."
    )


def _count(n: int, word: str, locale: str) -> str:
    return f"{fmt.integer(n, locale)} {word}{'' if n == 1 else 's'}"


def _enrollments(a: Analysis, locale: str) -> str:
    e, u, net = a.enrollments.current, a.unenrollments.current, a.net_enrollments
    if e == 0 and u == 0:
        if a.daily and all(p.enrollments is None for p in a.daily):
            return ""  # nothing known: the missing-data sentence says so
        return f"There were no enrollments or unenrollments {fmt.period_noun(a.period)}."
    if net.current > 0:
        result = f"a net gain of {fmt.integer(net.current, locale)}"
    elif net.current < 0:
        result = f"a net loss of {fmt.integer(-net.current, locale)}"
    else:
        result = "no net change"
    text = (
        f"There were {_count(e, 'enrollment', locale)} and "
        f"{_count(u, 'unenrollment', locale)}, {result}"
    )
    if net.previous is not None:
        text += f" ({fmt.previous_noun(a.period)}: {fmt.signed(net.previous, locale)})"
    return text + "."


def _movers(a: Analysis, locale: str) -> str:
    shown = [m for m in a.movers
             if not a.suppression.hides_change(m.users, m.previous_users, m.course_id)]
    rise = next((m for m in shown if m.change > 0), None)
    drop = next((m for m in shown if m.change < 0), None)
    parts = []
    if rise:
        parts.append(
            f"the biggest rise was in {rise.name} ({fmt.signed(rise.change, locale)} "
            f"to {fmt.integer(rise.users, locale)})"
        )
    if drop:
        parts.append(
            f"the biggest drop was in {drop.name} ({fmt.signed(drop.change, locale)} "
            f"to {fmt.integer(drop.users, locale)})"
        )
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _missing(a: Analysis, locale: str) -> str:
    m = a.missing
    if m.days_fully_missing:
        days = _count(m.days_fully_missing, "day", locale)
        return f"Enrollment data was missing for {days}; those days are not counted."
    gaps = m.enrollment_course_days + m.unenrollment_course_days
    if gaps:
        courses = _count(len(m.courses_with_gaps), "course", locale)
        return f"Some enrollment data was missing ({courses}); missing days are not counted."
    return ""


def _engagement(a: Analysis, locale: str) -> str:
    eng, perf = a.engagement, a.performance
    if eng.mean is None:
        return ""
    text = (
        f"The average engagement index was {fmt.decimal(eng.mean, locale)} "
        f"across {_users(eng.counted, locale)} with a score"
    )
    if perf.mean is not None:
        text += f"; the average performance index was {fmt.decimal(perf.mean, locale)}"
    return text + "."


def too_small_sentence(a: Analysis) -> str:
    """What a report of an org with fewer than min_group_size active learners says instead."""
    k = a.suppression.k
    return (
        f"Fewer than {k} learners were active {fmt.period_noun(a.period)}, so the key figures "
        f"are not shown: groups under {k} learners could single out individuals."
    )


def describe_delta(delta: Delta, locale: str = "en") -> str:
    """A short comparison, e.g. ``+12% (+124)`` or ``no previous data``."""
    if delta.previous is None or delta.change is None:
        return "no previous data"
    if delta.change == 0:
        return "no change"
    change = fmt.signed(delta.change, locale)
    if delta.pct is None:
        return f"{change} (from 0)" if delta.previous == 0 else change
    return f"{fmt.signed_percent(delta.pct, locale)} ({change})"
