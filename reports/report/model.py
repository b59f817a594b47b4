"""The values passed between pipeline stages: what was collected for one report.

These are frozen dataclasses (internal values); the pydantic models of the raw API answers live in
``reports.source.payloads`` and are converted into these at the collect stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from reports.report.periods import Period


@dataclass(frozen=True)
class CourseActivity:
    """Active users of one course in one period."""

    course_id: str
    name: str
    user_count: int


@dataclass(frozen=True)
class ActiveUser:
    """One active user of the period, with the platform's indexes (None when missing)."""

    username: str
    name: str
    engagement_index: float | None
    performance_index: float | None


@dataclass(frozen=True)
class DailySeries:
    """Values per day; a day the API reported as null is kept as ``None`` (missing, not zero)."""

    values: tuple[tuple[date, int | None], ...]

    def total(self, period: Period | None = None) -> int:
        """Sum of the known values (in ``period`` if given); missing days count as nothing."""
        return sum(
            v for d, v in self.values if v is not None and (period is None or d in period)
        )

    def missing_days(self, period: Period | None = None) -> int:
        """How many days had no value."""
        return sum(1 for d, v in self.values if v is None and (period is None or d in period))

    def get(self, day: date) -> int | None:
        """The value of ``day`` (None when missing or absent)."""
        for d, v in self.values:
            if d == day:
                return v
        return None


@dataclass(frozen=True)
class CourseEnrollments:
    """Enrollments and unenrollments of one course, per day, over both periods."""

    course_id: str
    enrollments: DailySeries
    unenrollments: DailySeries


@dataclass(frozen=True)
class ReportData:
    """Everything collected from the API for one report run (never partial)."""

    org: str
    period: Period
    previous_period: Period
    courses: tuple[CourseActivity, ...]
    total_active: int
    previous_courses: tuple[CourseActivity, ...]
    previous_total_active: int
    users: tuple[ActiveUser, ...]
    enrollments: tuple[CourseEnrollments, ...]
    requests: int = 0
    extra: dict[str, str] = field(default_factory=dict)
