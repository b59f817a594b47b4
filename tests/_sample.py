"""Hand-made ReportData for the analysis, chart and render tests (and for previews)."""

from __future__ import annotations

import random
from datetime import date

from reports.report.model import (
    ActiveUser,
    CourseActivity,
    CourseEnrollments,
    DailySeries,
    ReportData,
)
from reports.report.periods import Period, PeriodKind, weekly

COURSE_NAMES = (
    "Data & Analytics <Advanced>",
    "Introduction to Machine Learning",
    "Academic Writing for Graduate Students: Structure, Argument and Style in Research Papers",
    "Calculus I",
    "Organic Chemistry",
    "Financial Accounting $101",
    "Ethics in AI",
    "Public Health Foundations",
    "Spanish for Beginners",
    "Statistics with R",
    "Project Management Essentials",
    "Introduction to Philosophy",
    "Climate Science and Policy",
    "Digital Marketing",
    "Linear Algebra",
    "World History since 1945",
    "Cybersecurity Fundamentals",
    "Creative Writing Workshop",
    "Microeconomics",
    "Cell Biology",
)


def series(period: Period, values: list[int | None]) -> DailySeries:
    """A daily series over ``period`` with the given values in order."""
    return DailySeries(tuple(zip(period.dates(), values, strict=True)))


def realistic(seed: int = 7, kind: str = "weekly") -> ReportData:
    """A mid-sized org: 20 courses, ~1,160 active users, a few missing enrollment days."""
    rng = random.Random(seed)
    if kind == "weekly":
        period = weekly(date(2026, 11, 18))
    else:
        period = Period(date(2026, 10, 1), date(2026, 10, 31), PeriodKind.MONTHLY)
    previous = period.previous()
    span = Period(previous.start, period.end)
    courses, previous_courses, enrollments = [], [], []
    for i, name in enumerate(COURSE_NAMES):
        course_id = f"course-v1:Acme+C{i:03d}+2026_T2"
        users = max(0, int(rng.gauss(90 - i * 4, 12)))
        before = max(0, users + rng.randint(-15, 12))
        courses.append(CourseActivity(course_id, name, users))
        previous_courses.append(CourseActivity(course_id, name, before))
        e_values: list[int | None] = [rng.randint(0, 9) for _ in span.dates()]
        u_values: list[int | None] = [rng.randint(0, 3) for _ in span.dates()]
        if i in (4, 11):  # two courses lost a day of data
            e_values[-2] = None
            u_values[-2] = None
        enrollments.append(CourseEnrollments(course_id, series(span, e_values),
                                             series(span, u_values)))
    courses.append(CourseActivity("course-v1:Acme+NEW+2026_T2", "Brand-new Seminar", 12))
    previous_courses.append(CourseActivity("course-v1:Acme+OLD+2026_T1", "Retired Course", 18))
    users = tuple(
        ActiveUser(
            username=f"user{j:04d}",
            name=f"Student {j:04d}",
            engagement_index=None if j % 17 == 0 else round(rng.uniform(5, 99), 1),
            performance_index=None if j % 11 == 0 else round(rng.uniform(20, 100), 1),
        )
        for j in range(400)
    )
    return ReportData(
        org="acme-university",
        period=period,
        previous_period=previous,
        courses=tuple(courses),
        total_active=1160,
        previous_courses=tuple(previous_courses),
        previous_total_active=1036,
        users=users,
        enrollments=tuple(enrollments),
    )


def empty(*, with_previous: bool = False) -> ReportData:
    """A new org: nothing this week (and, unless asked, nothing before)."""
    period = weekly(date(2026, 11, 18))
    return ReportData(
        org="new-org",
        period=period,
        previous_period=period.previous(),
        courses=(),
        total_active=0,
        previous_courses=(CourseActivity("c1", "Old", 5),) if with_previous else (),
        previous_total_active=5 if with_previous else 0,
        users=(),
        enrollments=(),
    )
