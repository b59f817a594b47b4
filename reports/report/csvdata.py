"""The CSV attachments of a report: the tables behind the charts, for spreadsheets.

Decisions:

- **UTF-8 with a BOM** (``utf-8-sig``) and CRLF line ends (the csv module's default): Excel only
  reads a CSV as UTF-8 when it starts with a BOM, and names with accents are common; Python
  (``encoding="utf-8-sig"``), LibreOffice, pandas and R all skip the BOM.
- **Formula-injection safe** (OWASP "CSV Injection"): a text cell that starts with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so a spreadsheet shows it as text
  instead of running it. Numbers we format ourselves (e.g. ``-3``) are left alone: they are data,
  not text typed by a user.
- **Deterministic**: rows are sorted (courses by id, users by username, enrollments by date then
  course) and numbers are formatted without locale, so the same data gives the same bytes.
- A missing value (a day the API reported as null, an index the platform did not compute) is an
  empty cell, never ``0``.
- Linear work: rows are written one by one into one buffer (100,000 users take well under a
  second); the daily lookup uses a dict per course, not ``DailySeries.get``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date

from reports.report.model import DailySeries, ReportData
from reports.report.pdf import Attachment
from reports.report.suppress import NO_SUPPRESSION, Suppression, daily_cells

MIME = "text/csv"
_DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | None


def safe_text(value: str) -> str:
    """``value`` made inert for spreadsheets (OWASP CSV injection): prefix risky starts with '."""
    return "'" + value if value.startswith(_DANGEROUS_PREFIXES) else value


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # bool is an int: keep it out of the number branch
        return safe_text(str(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 6))
    return safe_text(value)


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """One CSV file (UTF-8 with BOM, CRLF) from a header and rows of cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_text(name) for name in header])
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def courses_csv(data: ReportData, hide: Suppression = NO_SUPPRESSION) -> bytes:
    """Active users per course, this period and the previous one, with the change.

    Counts of a small group print as ``<k``; a change that would reveal one is left empty.
    """
    previous = {course.course_id: course.user_count for course in data.previous_courses}
    current = {course.course_id: course for course in data.courses}
    names = {course.course_id: course.name for course in data.previous_courses}
    names.update({cid: course.name for cid, course in current.items()})
    rows: list[list[Cell]] = []
    for course_id in sorted(names):
        now = current[course_id].user_count if course_id in current else 0
        before = previous.get(course_id, 0)
        if hide.hides_change(now, before, course_id):
            rows.append([course_id, names[course_id], _count(now, hide), _count(before, hide),
                         None])
        else:
            rows.append([course_id, names[course_id], now, before, now - before])
    header = (
        "course_id",
        "name",
        "active_users",
        "active_users_previous_period",
        "change",
    )
    return to_csv(header, rows)


def active_users_csv(data: ReportData, form: str = "named") -> bytes:
    """Every active user of the period (the full list, not the top of the report).

    ``form`` "pseudonymous": one ``learner`` column holding the pseudonym (no name column).
    """
    users = sorted(data.users, key=lambda user: user.username)
    if form != "named":
        return to_csv(
            ("learner", "engagement_index", "performance_index"),
            ((u.username, u.engagement_index, u.performance_index) for u in users),
        )
    return to_csv(
        ("username", "name", "engagement_index", "performance_index"),
        (
            (user.username, user.name, user.engagement_index, user.performance_index)
            for user in users
        ),
    )


def _by_day(series: DailySeries) -> dict[date, int | None]:
    return dict(series.values)


def _count(value: int, hide: Suppression) -> Cell:
    return hide.label if hide.hides(value) else value


def daily_enrollments_csv(data: ReportData, hide: Suppression = NO_SUPPRESSION) -> bytes:
    """Enrollments and unenrollments per day and course over the report period (small groups
    and their complements print as ``<k``)."""
    rows: list[list[Cell]] = []
    courses = sorted(data.enrollments, key=lambda item: item.course_id)
    lookups = [
        (item.course_id, _by_day(item.enrollments), _by_day(item.unenrollments))
        for item in courses
    ]
    for day in data.period.dates():
        for course_id, enrolled, unenrolled in lookups:
            rows.append([day.isoformat(), course_id, enrolled.get(day), unenrolled.get(day)])
    if hide.active:
        hidden = daily_cells([(r[0], r[1], r[2], r[3]) for r in rows], hide.k)  # type: ignore[misc]
        for index, column in hidden:
            rows[index][column] = hide.label
    return to_csv(("date", "course_id", "enrollments", "unenrollments"), rows)


def csv_attachments(
    data: ReportData, *, learners: str | None = "named", hide: Suppression = NO_SUPPRESSION
) -> list[Attachment]:
    """The CSV attachments of a report, in a fixed order.

    ``learners``: the form of the per-learner list ("named" or "pseudonymous"), or None to leave
    it out (the default of a configured report: ``attach_learner_list = false``).
    """
    period = f"{data.period.start.isoformat()} to {data.period.end.isoformat()}"
    files = [
        Attachment(
            "courses.csv",
            courses_csv(data, hide),
            MIME,
            f"Active users per course, {period}, with the previous period.",
        ),
    ]
    if learners is not None:
        who = "All active users" if learners == "named" else "All active learners (pseudonyms)"
        files.append(Attachment(
            "active_users.csv",
            active_users_csv(data, learners),
            MIME,
            f"{who} with engagement and performance indexes, {period}.",
        ))
    files.append(Attachment(
        "daily_enrollments.csv",
        daily_enrollments_csv(data, hide),
        MIME,
        f"Enrollments and unenrollments per day and course, {period}.",
    ))
    return files
