"""Collect one report's data from the API: both periods' courses, the user list, the series.

Every request goes through one queue (``source.requestqueue``) served by as many workers as the
client may have requests in flight: first both periods' per-course answers and the first user
page; the over-time series of a course as soon as either per-course answer names it, the
remaining user pages as soon as the first page tells how many there are. User pages and series
take turns, so the series do not wait for the user list (or the other way round). Any failure
cancels everything else and fails the collection: a report is never built from partial data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from reports.errors import ApiPaginationError, ApiPayloadError, ReportsError
from reports.report.model import (
    ActiveUser,
    CourseActivity,
    CourseEnrollments,
    DailySeries,
    ReportData,
)
from reports.report.periods import Period
from reports.source.client import USERS, IblClient
from reports.source.payloads import OverTimeAnswer, PerCourseAnswer, UserRow, UsersPage
from reports.source.requestqueue import RequestQueue

Progress = Callable[[str, int, int], None]
"""``on_progress(stage, done, total)``; stages are USER_PAGES and COURSE_SERIES."""

USER_PAGES = "user pages"
COURSE_SERIES = "course series"
MAX_PAGES = 100_000
"""More pages than this is taken as a runaway paginator rather than a real org."""


@dataclass
class _Progress:
    callback: Progress | None
    done: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def grow(self, stage: str, by: int) -> None:
        self.total[stage] = self.total.get(stage, 0) + by
        self._report(stage)

    def step(self, stage: str) -> None:
        self.done[stage] = self.done.get(stage, 0) + 1
        self._report(stage)

    def _report(self, stage: str) -> None:
        if self.callback is not None:
            self.callback(stage, self.done.get(stage, 0), self.total.get(stage, 0))


async def collect(
    client: IblClient,
    org: str,
    period: Period,
    *,
    page_size: int,
    on_progress: Progress | None = None,
) -> ReportData:
    """Everything one report needs, or an ApiError naming what failed (never partial data)."""
    queue = RequestQueue(client.max_concurrency, (USER_PAGES, COURSE_SERIES))
    run = _Collection(client, org, period, page_size, _Progress(on_progress), queue)
    requests_before = client.requests
    queue.put(COURSE_SERIES, lambda: run.courses(current=True))
    queue.put(USER_PAGES, run.users)
    queue.put(COURSE_SERIES, lambda: run.courses(current=False))
    try:
        await queue.run()
    except BaseExceptionGroup as errors:
        raise _first_reports_error(errors) from None
    return run.result(client.requests - requests_before)


class _Collection:
    """The state of one collection while its tasks run."""

    def __init__(self, client: IblClient, org: str, period: Period, page_size: int,
                 progress: _Progress, queue: RequestQueue) -> None:
        self.client = client
        self.org = org
        self.period = period
        self.previous = period.previous()
        self.page_size = page_size
        self.progress = progress
        self.queue = queue
        self.answers: dict[bool, PerCourseAnswer] = {}
        self.days = Period(self.previous.start, period.end).dates()
        # Answers are turned into the report's model as they arrive, while other requests are
        # in flight, rather than all at the end.
        self.series: dict[tuple[str, bool], DailySeries] = {}
        self.course_order: list[str] = []
        self.pages: dict[int, list[ActiveUser]] = {}
        self.seen_users: dict[str, int] = {}

    # -- per-course answers and the series they call for -----------------------------------

    async def courses(self, *, current: bool) -> None:
        period = self.period if current else self.previous
        answer = await self.client.per_course(self.org, period.start, period.end)
        ids = [c.course_id for c in answer.data]
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise ApiPayloadError(f"the course {duplicate!r} is listed twice",
                                  endpoint="active-users/per-course", org=self.org)
        self.answers[current] = answer
        known = set(self.course_order)
        new = [i for i in ids if i not in known]
        self.course_order.extend(new)
        self.progress.grow(COURSE_SERIES, 2 * len(new))
        for course_id in new:
            for active in (True, False):
                self.queue.put(COURSE_SERIES, partial(self.course_series, course_id, active))

    async def course_series(self, course_id: str, active: bool) -> None:
        answer = await self.client.over_time(
            self.org, course_id, self.previous.start, self.period.end, active
        )
        self.series[course_id, active] = _series(answer, self.days)
        self.progress.step(COURSE_SERIES)

    # -- the paginated user list ------------------------------------------------------------

    async def users(self) -> None:
        first = await self._page(1)
        pagination = first.pagination
        total, per_page, pages = (
            pagination.total_items, pagination.per_page, pagination.total_pages
        )
        if total == 0:
            self._check_rows(1, first, expected=0)
            self.progress.grow(USER_PAGES, 1)
            self.progress.step(USER_PAGES)
            return
        if per_page < 1:
            raise self._pagination_error(f"perPage is {per_page} for {total} users")
        expected_pages = math.ceil(total / per_page)
        if pages != expected_pages:
            raise self._pagination_error(
                f"totalPages is {pages} but {total} users at {per_page} per page make "
                f"{expected_pages} pages"
            )
        if pages > MAX_PAGES:
            raise self._pagination_error(f"{pages} pages is more than the limit of {MAX_PAGES}")
        self._check_rows(1, first, expected=min(per_page, total))
        self.progress.grow(USER_PAGES, pages)
        self.progress.step(USER_PAGES)
        for number in range(2, pages + 1):
            expected = per_page if number < pages else total - per_page * (pages - 1)
            self.queue.put(USER_PAGES, partial(self._later_page, number, first, expected))

    async def _later_page(self, number: int, first: UsersPage, expected: int) -> None:
        page = await self._page(number)
        if page.pagination.model_dump() != {
            **first.pagination.model_dump(), "current_page": number
        }:
            got = page.pagination
            raise self._pagination_error(
                f"page {number} reports totalItems={got.total_items}, perPage={got.per_page}, "
                f"totalPages={got.total_pages}, currentPage={got.current_page}, unlike page 1 "
                f"(totalItems={first.pagination.total_items}, perPage="
                f"{first.pagination.per_page}, totalPages={first.pagination.total_pages})"
            )
        self._check_rows(number, page, expected)
        self.progress.step(USER_PAGES)

    async def _page(self, number: int) -> UsersPage:
        page = await self.client.users_page(
            self.org, self.period.start, self.period.end, number, self.page_size
        )
        if page.pagination.current_page != number:
            raise self._pagination_error(
                f"asked for page {number}, got currentPage={page.pagination.current_page}"
            )
        return page

    def _check_rows(self, number: int, page: UsersPage, expected: int) -> None:
        if len(page.data) != expected:
            raise self._pagination_error(
                f"page {number} has {len(page.data)} users, expected {expected}"
            )
        for row in page.data:
            earlier = self.seen_users.get(row.username)
            if earlier is not None:
                raise self._pagination_error(
                    f"page {number} repeats user {row.username!r} already on page {earlier}"
                )
            self.seen_users[row.username] = number
        self.pages[number] = [_user(row) for row in page.data]

    def _pagination_error(self, message: str) -> ApiPaginationError:
        return ApiPaginationError(f"the user list is inconsistent: {message}",
                                  endpoint=USERS, org=self.org)

    # -- the result -------------------------------------------------------------------------

    def result(self, requests: int) -> ReportData:
        current, previous = self.answers[True], self.answers[False]
        return ReportData(
            org=self.org,
            period=self.period,
            previous_period=self.previous,
            courses=_activities(current),
            total_active=current.total,
            previous_courses=_activities(previous),
            previous_total_active=previous.total,
            users=tuple(user for number in sorted(self.pages) for user in self.pages[number]),
            enrollments=tuple(
                CourseEnrollments(
                    course_id,
                    self.series[course_id, True],
                    self.series[course_id, False],
                )
                # Sorted: course_order depends on which per-course answer came first, and
                # the data (and its hash, which decides whether an archived PDF is reused)
                # must not.
                for course_id in sorted(self.course_order)
            ),
            requests=requests,
        )


def _activities(answer: PerCourseAnswer) -> tuple[CourseActivity, ...]:
    return tuple(CourseActivity(c.course_id, _name(c.name), c.user_count) for c in answer.data)


MAX_NAME = 200
"""Longer course and user names are cut (a 10,000-character name would fill pages)."""
_CONTROL = dict.fromkeys([*range(0x20), 0x7F], None)


def _name(text: str) -> str:
    """A printable name: control characters (NUL, CR, LF...) dropped, cut at MAX_NAME."""
    if len(text) <= MAX_NAME and text.isprintable():  # the usual name: nothing to drop or cut
        return text
    text = text.translate(_CONTROL)
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "\u2026"


def _user(row: UserRow) -> ActiveUser:
    return ActiveUser(row.username, _name(row.name), _num(row.engagement_index),
                      _num(row.performance_index))


def _series(answer: OverTimeAnswer, days: list[date]) -> DailySeries:
    return DailySeries(tuple((day, answer.data.get(day)) for day in days))


def _num(value: float | None) -> float | None:
    return None if value is None else float(value)


def _first_reports_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first of our errors in a (nested) group; anything else is a bug and goes up as is."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            inner = _first_reports_error(exc)
            if isinstance(inner, ReportsError):
                return inner
        elif isinstance(exc, ReportsError):
            return exc
    return group
