"""Very long names, clipped before layout: the PDF and the email show a course name, a learner's
name or username of at most ``NAME_LIMIT`` characters, cut at a word with an ellipsis.

The API may send any name; a 10,000-character one cost ~8 s of line breaking per render and a
dozen pages of one table cell. The report's tables, charts and sentences are made from the
``Analysis``, so ``analyse`` clips the names it is given; the CSV attachments are made from the
collected data and keep every name whole.
"""

from __future__ import annotations

import dataclasses

from reports.clip import clip
from reports.report.model import ActiveUser, CourseActivity, ReportData

NAME_LIMIT = 200
"""The most characters of a name the report shows (the ellipsis included)."""


def shown(text: str) -> str:
    """``text`` as the report shows it: unchanged up to ``NAME_LIMIT``, else clipped."""
    return text if len(text) <= NAME_LIMIT else clip(text, NAME_LIMIT)


def _course(course: CourseActivity) -> CourseActivity:
    if len(course.name) <= NAME_LIMIT:
        return course
    return dataclasses.replace(course, name=shown(course.name))


def _user(user: ActiveUser) -> ActiveUser:
    if len(user.name) <= NAME_LIMIT and len(user.username) <= NAME_LIMIT:
        return user
    return dataclasses.replace(user, name=shown(user.name), username=shown(user.username))


def with_shown_names(data: ReportData) -> ReportData:
    """``data`` with every course and learner name (and username) clipped for display; the
    same object when none is too long."""
    lengths = [len(c.name) for c in (*data.courses, *data.previous_courses)]
    lengths += [max(len(u.name), len(u.username)) for u in data.users]
    if max(lengths, default=0) <= NAME_LIMIT:
        return data
    return dataclasses.replace(
        data,
        courses=tuple(_course(c) for c in data.courses),
        previous_courses=tuple(_course(c) for c in data.previous_courses),
        users=tuple(_user(u) for u in data.users),
    )
