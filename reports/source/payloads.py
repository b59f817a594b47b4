"""pydantic models of the three Data Manager answers the reports read.

Extra fields are ignored (real servers add some); numbers are strict, so an HTML page, a string
where an int belongs or a null total is rejected. Field lists follow the official SDK models
(``ActiveUsersPerCourse``, ``ActiveUsersList``, ``OvertimeWithChangeInfo``).
"""

from __future__ import annotations

from datetime import date

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Meta(_Payload):
    """Change information the API attaches to totals (all optional but ``total``)."""

    total: StrictInt
    change_range: StrictInt | None = 0
    change_last_seven_days: StrictInt | None = 0
    change_last_thirty_days: StrictInt | None = 0
    change_last_seven_days_percent: StrictFloat | StrictInt | None = 0.0
    change_last_thirty_days_percent: StrictFloat | StrictInt | None = 0.0
    change_range_percent: StrictFloat | StrictInt | None = None


class CourseCount(_Payload):
    """Active users of one course."""

    course_id: StrictStr = Field(min_length=1)
    name: StrictStr
    user_count: StrictInt = Field(ge=0)


class PerCourseAnswer(_Payload):
    """``GET .../active-users/per-course``."""

    data: list[CourseCount]
    total: StrictInt = Field(ge=0)
    meta: Meta


class UserRow(_Payload):
    """One active user; the indexes may be missing (kept as None)."""

    username: StrictStr = Field(min_length=1)
    name: StrictStr
    engagement_index: StrictFloat | StrictInt | None = None
    performance_index: StrictFloat | StrictInt | None = None


class Pagination(_Payload):
    """Pagination block of the user list (camelCase on the wire)."""

    total_items: StrictInt = Field(alias="totalItems", ge=0)
    current_page: StrictInt = Field(alias="currentPage", ge=0)
    per_page: StrictInt = Field(alias="perPage", ge=0)
    total_pages: StrictInt = Field(alias="totalPages", ge=0)


class UsersPage(_Payload):
    """``GET .../active-users/users``: one page of the active-user list."""

    data: list[UserRow]
    pagination: Pagination


class OverTimeAnswer(_Payload):
    """``GET .../enrollments/courses/{course_id}/over-time``; a null day stays None."""

    data: dict[date, StrictInt | None]
    total: StrictInt | None = None
    meta: Meta

    @field_validator("data", mode="before")
    @classmethod
    def _integral_floats(cls, value: object) -> object:
        # The schema types day values as "object"; accept 3.0 as 3 but nothing fractional.
        if isinstance(value, dict):
            return {
                k: int(v) if isinstance(v, float) and v.is_integer() else v
                for k, v in value.items()
            }
        return value
