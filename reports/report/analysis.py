"""Analysis: the figures a report shows, computed from the collected ``ReportData``.

``analyse`` is pure: the same data gives the same ``Analysis``. It never invents a number: every
figure is a count, sum, difference or ratio of collected values. Missing values stay missing:

- a day the API reported as null is not counted as zero; a day on which every course's value is
  missing is marked missing (``None``) in the daily series;
- a comparison with the previous period has ``previous = None`` when there is no previous data,
  and its percentage is ``None`` whenever the previous value is 0 or unknown (never inf/NaN).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from reports.report.longnames import with_shown_names
from reports.report.model import ActiveUser, CourseActivity, CourseEnrollments, ReportData
from reports.report.periods import Period
from reports.report.suppress import NO_SUPPRESSION, Suppression, is_small

DEFAULT_MOVERS = 10


@dataclass(frozen=True)
class Delta:
    """A figure of this period compared with the previous one."""

    current: int
    previous: int | None
    """None when there is no previous data to compare with."""
    min_base: int = 0
    """A percentage on a previous value from 1 to min_base - 1 is not shown (small groups)."""

    @property
    def change(self) -> int | None:
        """``current - previous`` (None without previous data)."""
        return None if self.previous is None else self.current - self.previous

    @property
    def pct(self) -> float | None:
        """The change in percent of ``previous`` (12.5 means +12.5%); None if previous is 0/None
        or a base too small to show (under ``min_base``)."""
        if not self.previous or is_small(self.previous, self.min_base):
            return None
        return (self.current - self.previous) * 100.0 / self.previous


@dataclass(frozen=True)
class CourseRow:
    """One course of the top-N table."""

    course_id: str
    name: str
    users: int
    previous_users: int | None
    """Active users in the previous period (0 if absent then; None without previous data)."""
    enrollments: int | None
    unenrollments: int | None
    """Sums over the period (None when the course has no enrollment data for any day)."""

    @property
    def change(self) -> int | None:
        """Change in active users vs the previous period."""
        return None if self.previous_users is None else self.users - self.previous_users


@dataclass(frozen=True)
class Mover:
    """A course whose active users changed vs the previous period."""

    course_id: str
    name: str
    users: int
    previous_users: int

    @property
    def change(self) -> int:
        """Change in active users (positive: rose)."""
        return self.users - self.previous_users


@dataclass(frozen=True)
class UserRow:
    """One of the most engaged users."""

    username: str
    name: str
    engagement_index: float
    performance_index: float | None


@dataclass(frozen=True)
class IndexAverage:
    """The mean of an index over the users that have it."""

    mean: float | None
    """None when no user has a value."""
    counted: int
    missing: int
    suppressed: bool = False
    """True when the mean is hidden because fewer than min_group_size learners have a value."""


@dataclass(frozen=True)
class DailyPoint:
    """Enrollments and unenrollments of one day, summed over all courses."""

    day: date
    enrollments: int | None
    unenrollments: int | None
    """None when every course's value of that day is missing."""
    partial: bool = False
    """True when some (not all) courses had no value that day."""


@dataclass(frozen=True)
class MissingData:
    """What the API did not deliver, for the notes section."""

    enrollment_course_days: int
    unenrollment_course_days: int
    """(course, day) values of the period reported as null or absent."""
    days_fully_missing: int
    """Days of the period on which no course had an enrollment or unenrollment value."""
    courses_with_gaps: tuple[str, ...]
    """Names of the courses with at least one missing value in the period, sorted."""
    users_without_engagement: int
    users_without_performance: int
    no_previous_data: bool

    @property
    def any(self) -> bool:
        """Whether there is anything to note."""
        return bool(
            self.enrollment_course_days or self.unenrollment_course_days
            or self.users_without_engagement or self.users_without_performance
            or self.no_previous_data
        )


@dataclass(frozen=True)
class Analysis:
    """Everything the charts, the HTML and the highlights need."""

    org: str
    period: Period
    previous_period: Period
    active_users: Delta
    active_courses: Delta
    enrollments: Delta
    unenrollments: Delta
    net_enrollments: Delta
    top_courses: tuple[CourseRow, ...]
    movers: tuple[Mover, ...]
    top_users: tuple[UserRow, ...]
    engagement: IndexAverage
    performance: IndexAverage
    daily: tuple[DailyPoint, ...]
    missing: MissingData
    course_count: int
    """Courses listed for the period (with or without active users)."""
    top_n: int
    suppression: Suppression = NO_SUPPRESSION
    """Which per-course counts are too small to show (``min_group_size``)."""

    @property
    def org_too_small(self) -> bool:
        """Fewer than min_group_size learners were active in the whole org (but some were)."""
        return is_small(self.active_users.current, self.suppression.k)

    @property
    def courses_suppressed(self) -> int:
        """Courses whose active users this period are too few to show."""
        return sum(1 for c in self.course_counts if is_small(c, self.suppression.k))

    course_counts: tuple[int, ...] = ()
    """Active users of every listed course this period (for the suppression note)."""


def analyse(
    data: ReportData, *, top_n: int, movers_n: int | None = None,
    suppression: Suppression = NO_SUPPRESSION,
) -> Analysis:
    """Compute the report's figures from the collected data (``suppression``: see suppress.py)."""
    if top_n < 1:
        raise ValueError("top_n must be at least 1")
    data = with_shown_names(data)  # a 10,000-character name is clipped before layout
    n_movers = min(top_n, DEFAULT_MOVERS) if movers_n is None else movers_n
    has_previous = bool(data.previous_courses) or data.previous_total_active > 0
    by_id = {e.course_id: e for e in data.enrollments}

    enroll_now = _sum_series(data.enrollments, data.period, unenroll=False)
    unenroll_now = _sum_series(data.enrollments, data.period, unenroll=True)
    enroll_before = _sum_series(data.enrollments, data.previous_period, unenroll=False)
    unenroll_before = _sum_series(data.enrollments, data.previous_period, unenroll=True)
    net_before = (
        None if enroll_before is None or unenroll_before is None
        else enroll_before - unenroll_before
    )

    k = suppression.k
    engagement = _average((u.engagement_index for u in data.users), k)
    performance = _average((u.performance_index for u in data.users), k)
    daily = _daily(data.enrollments, data.period)
    return Analysis(
        org=data.org,
        period=data.period,
        previous_period=data.previous_period,
        active_users=Delta(
            data.total_active, data.previous_total_active if has_previous else None, k
        ),
        active_courses=Delta(
            _active_count(data.courses),
            _active_count(data.previous_courses) if has_previous else None,
        ),
        enrollments=Delta(enroll_now or 0, enroll_before, k),
        unenrollments=Delta(unenroll_now or 0, unenroll_before, k),
        net_enrollments=Delta((enroll_now or 0) - (unenroll_now or 0), net_before),
        top_courses=_top_courses(data, by_id, top_n, has_previous),
        movers=_movers(data, n_movers) if has_previous else (),
        top_users=_top_users(data.users, top_n),
        engagement=engagement,
        performance=performance,
        daily=daily,
        missing=_missing(data, daily, has_previous, engagement, performance),
        course_count=len(data.courses),
        top_n=top_n,
        suppression=suppression,
        course_counts=tuple(c.user_count for c in data.courses),
    )


def _active_count(courses: Iterable[CourseActivity]) -> int:
    return sum(1 for c in courses if c.user_count > 0)


def _course_key(course: CourseActivity) -> tuple[int, str, str]:
    return (-course.user_count, course.name.casefold(), course.course_id)


def _values(series: CourseEnrollments, period: Period, *, unenroll: bool) -> list[int | None]:
    """The series' value of every day of ``period`` (None when null or absent)."""
    known = dict((series.unenrollments if unenroll else series.enrollments).values)
    return [known.get(day) for day in period.dates()]


def _sum_series(
    all_series: Iterable[CourseEnrollments], period: Period, *, unenroll: bool
) -> int | None:
    """Sum of the known values in ``period``; None when not a single value is known."""
    total: int | None = None
    for series in all_series:
        for value in _values(series, period, unenroll=unenroll):
            if value is not None:
                total = (total or 0) + value
    return total


def _course_sum(series: CourseEnrollments | None, period: Period, *, unenroll: bool) -> int | None:
    return None if series is None else _sum_series((series,), period, unenroll=unenroll)


def _top_courses(
    data: ReportData, by_id: dict[str, CourseEnrollments], top_n: int, has_previous: bool
) -> tuple[CourseRow, ...]:
    before = {c.course_id: c.user_count for c in data.previous_courses}
    ranked = sorted((c for c in data.courses if c.user_count > 0), key=_course_key)[:top_n]
    return tuple(
        CourseRow(
            course_id=c.course_id,
            name=c.name,
            users=c.user_count,
            previous_users=before.get(c.course_id, 0) if has_previous else None,
            enrollments=_course_sum(by_id.get(c.course_id), data.period, unenroll=False),
            unenrollments=_course_sum(by_id.get(c.course_id), data.period, unenroll=True),
        )
        for c in ranked
    )


def _movers(data: ReportData, limit: int) -> tuple[Mover, ...]:
    now = {c.course_id: c for c in data.courses}
    before = {c.course_id: c for c in data.previous_courses}
    movers = []
    for course_id in now.keys() | before.keys():
        current, previous = now.get(course_id), before.get(course_id)
        users = current.user_count if current else 0
        previous_users = previous.user_count if previous else 0
        if users == previous_users:
            continue
        name = current.name if current else previous.name if previous else course_id
        movers.append(Mover(course_id, name, users, previous_users))
    movers.sort(key=lambda m: (-abs(m.change), -m.change, m.name.casefold(), m.course_id))
    return tuple(movers[:limit])


def _top_users(users: Iterable[ActiveUser], top_n: int) -> tuple[UserRow, ...]:
    scored = [u for u in users if u.engagement_index is not None]
    scored.sort(key=lambda u: (-(u.engagement_index or 0.0), u.name.casefold(), u.username))
    return tuple(
        UserRow(u.username, u.name, u.engagement_index or 0.0, u.performance_index)
        for u in scored[:top_n]
    )


def _average(values: Iterable[float | None], k: int = 0) -> IndexAverage:
    all_values = list(values)
    known = [v for v in all_values if v is not None]
    missing = len(all_values) - len(known)
    if is_small(len(known), k):
        return IndexAverage(None, len(known), missing, suppressed=True)
    return IndexAverage(sum(known) / len(known) if known else None, len(known), missing)


def _daily(all_series: tuple[CourseEnrollments, ...], period: Period) -> tuple[DailyPoint, ...]:
    enroll = [_values(s, period, unenroll=False) for s in all_series]
    unenroll = [_values(s, period, unenroll=True) for s in all_series]
    points = []
    for i, day in enumerate(period.dates()):
        e_values = [column[i] for column in enroll]
        u_values = [column[i] for column in unenroll]
        e_known = [v for v in e_values if v is not None]
        u_known = [v for v in u_values if v is not None]
        # Without any course there is nothing missing: the day simply had no enrollments.
        e_sum = sum(e_known) if e_known or not all_series else None
        u_sum = sum(u_known) if u_known or not all_series else None
        partial = (0 < len(e_known) < len(e_values)) or (0 < len(u_known) < len(u_values))
        points.append(DailyPoint(day, e_sum, u_sum, partial))
    return tuple(points)


def _missing(
    data: ReportData,
    daily: tuple[DailyPoint, ...],
    has_previous: bool,
    engagement: IndexAverage,
    performance: IndexAverage,
) -> MissingData:
    names = {c.course_id: c.name for c in (*data.previous_courses, *data.courses)}
    e_missing = u_missing = 0
    gaps: set[str] = set()
    for series in data.enrollments:
        e = sum(1 for v in _values(series, data.period, unenroll=False) if v is None)
        u = sum(1 for v in _values(series, data.period, unenroll=True) if v is None)
        e_missing += e
        u_missing += u
        if e or u:
            gaps.add(names.get(series.course_id, series.course_id))
    return MissingData(
        enrollment_course_days=e_missing,
        unenrollment_course_days=u_missing,
        days_fully_missing=sum(
            1 for p in daily if p.enrollments is None and p.unenrollments is None
        ),
        courses_with_gaps=tuple(sorted(gaps, key=str.casefold)),
        users_without_engagement=engagement.missing,
        users_without_performance=performance.missing,
        no_previous_data=not has_previous,
    )
