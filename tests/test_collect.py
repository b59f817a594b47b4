"""Collecting one report over real HTTP: completeness, pagination, concurrency, failures."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date

import httpx
import pytest

from reports.config import ApiConfig
from reports.errors import ApiPaginationError, ApiPayloadError, ApiStatusError
from reports.report.periods import monthly, weekly
from reports.source.client import IblClient, client_from_config
from reports.source.collect import COURSE_SERIES, USER_PAGES, collect
from reports.source.mock import DemoApp, Fault, MockKnobs, create_app
from tests._apiserver import RunningApi, api_server

__all__ = ["api_server"]

ORG = "acme-university"
WEEK = weekly(date(2026, 3, 11))  # 2026-03-02 .. 2026-03-08
Server = Callable[..., RunningApi]


def client_for(api: RunningApi, **options: object) -> IblClient:
    options.setdefault("backoff_scale", 0.0)
    return IblClient(api.url, "test-key", **options)  # type: ignore[arg-type]


async def test_a_weekly_report_is_complete_and_consistent(api_server: Server) -> None:
    api = api_server(MockKnobs(courses=25, users=800))
    async with client_for(api) as client:
        reference = await client.per_course(ORG, WEEK.start, WEEK.end)
        previous = await client.per_course(ORG, WEEK.previous().start, WEEK.previous().end)
        data = await collect(client, ORG, WEEK, page_size=100)
        some_course = data.enrollments[0].course_id
        raw = await client.over_time(ORG, some_course, WEEK.previous().start, WEEK.end, True)
    assert data.period == WEEK and data.previous_period == WEEK.previous()
    assert [c.course_id for c in data.courses] == [c.course_id for c in reference.data]
    assert data.total_active == reference.total and data.previous_total_active == previous.total
    assert len(data.users) == len({u.username for u in data.users}) == data.total_active
    union = {c.course_id for c in reference.data} | {c.course_id for c in previous.data}
    assert {e.course_id for e in data.enrollments} == union
    days = WEEK.previous().dates() + WEEK.dates()
    for series in data.enrollments:
        assert [d for d, _ in series.enrollments.values] == days
        assert [d for d, _ in series.unenrollments.values] == days
    first = data.enrollments[0].enrollments
    assert first.values == tuple((d, raw.data.get(d)) for d in days)
    pages = math.ceil(data.total_active / 100)
    assert data.requests == 2 + pages + 2 * len(union)


async def test_the_server_page_cap_is_followed(api_server: Server) -> None:
    api = api_server(MockKnobs(page_cap=100, courses=20, users=1500))
    async with client_for(api) as client:
        data = await collect(client, ORG, WEEK, page_size=500)
    user_requests = [r for r in api.app.stats.log if r.kind == "users"]
    assert all("length=500" in r.query for r in user_requests)
    assert len(user_requests) == math.ceil(data.total_active / 100) > 1
    assert len(data.users) == data.total_active


async def test_a_month_collects_two_months_of_series(api_server: Server) -> None:
    api = api_server(MockKnobs(courses=10, users=600))
    period = monthly(date(2026, 3, 11))  # February, compared with January
    async with client_for(api) as client:
        data = await collect(client, ORG, period, page_size=100)
    assert data.previous_period.start == date(2026, 1, 1)
    assert len(data.enrollments[0].enrollments.values) == 31 + 28


async def test_concurrency_never_exceeds_the_limit(api_server: Server) -> None:
    api = api_server(MockKnobs(latency_s=0.02, courses=30, users=1000))
    async with client_for(api, max_concurrency=5) as client:
        data = await collect(client, ORG, WEEK, page_size=50)
    assert data.requests > 50
    assert api.app.stats.max_in_flight == 5


async def test_progress_reaches_the_totals(api_server: Server) -> None:
    api = api_server(MockKnobs(courses=12, users=700))
    seen: dict[str, tuple[int, int]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        assert 0 <= done <= total
        seen[stage] = (done, total)

    async with client_for(api) as client:
        data = await collect(client, ORG, WEEK, page_size=100, on_progress=progress)
    assert seen[USER_PAGES] == (math.ceil(data.total_active / 100),) * 2
    assert seen[COURSE_SERIES] == (2 * len(data.enrollments),) * 2


@pytest.mark.parametrize("fault", [
    pytest.param(Fault("repeat-page", endpoint="users", page=3), id="repeated-page"),
    pytest.param(Fault("inflate-pages", endpoint="users"), id="inflated-total-pages"),
    pytest.param(Fault("inflate-pages", endpoint="users", page=2), id="totals-change"),
])
async def test_an_inconsistent_paginator_is_detected(api_server: Server, fault: Fault) -> None:
    api = api_server(MockKnobs(courses=5, users=1500, faults=(fault,)))
    async with client_for(api) as client:
        with pytest.raises(ApiPaginationError) as caught:
            await collect(client, ORG, WEEK, page_size=100)
    assert "user list is inconsistent" in str(caught.value)
    assert caught.value.org == ORG and "\n" not in str(caught.value)
    assert client.requests < 100


async def test_one_failure_fails_the_whole_collection_at_once(api_server: Server) -> None:
    api = api_server(MockKnobs(courses=20, users=800))
    async with client_for(api) as client:
        victim = (await client.per_course(ORG, WEEK.start, WEEK.end)).data[3].course_id
    faults = (
        Fault("status", endpoint="over-time", course=victim, status=404),
        Fault("delay", endpoint="users", page=2, delay_s=30.0),
    )
    api = api_server(MockKnobs(courses=20, users=800, faults=faults))
    started = time.monotonic()
    async with client_for(api) as client:
        with pytest.raises(ApiStatusError) as caught:
            await collect(client, ORG, WEEK, page_size=100)
    assert time.monotonic() - started < 10
    assert caught.value.course == victim and caught.value.status == 404


async def test_a_bad_series_names_its_course(api_server: Server) -> None:
    api = api_server(MockKnobs(courses=8, users=600))
    async with client_for(api) as client:
        victim = (await client.per_course(ORG, WEEK.start, WEEK.end)).data[0].course_id
    api = api_server(MockKnobs(courses=8, users=600, faults=(
        Fault("html", endpoint="over-time", course=victim),)))
    async with client_for(api) as client:
        with pytest.raises(ApiPayloadError) as caught:
            await collect(client, ORG, WEEK, page_size=100)
    assert caught.value.course == victim
    assert f"enrollments/over-time (org {ORG!r}, course {victim!r})" in str(caught.value)


async def test_embedded_mode_collects_a_report() -> None:
    async with client_from_config(ApiConfig(base_url="embedded"), {}) as client:
        data = await collect(client, ORG, WEEK, page_size=100)
    assert data.total_active == len(data.users) > 0
    assert 20 <= len(data.courses) <= 60


async def test_the_collected_data_does_not_depend_on_which_answer_came_first(
    api_server: Server,
) -> None:
    from reports.report.datahash import data_hash

    # The first per-course request (this period's) is slow once, so the previous period's
    # answer names the courses first; the second collection sees the usual order.
    served = api_server(MockKnobs(courses=12, users=80, faults=(
        Fault(action="delay", endpoint="per-course", delay_s=0.3, times=1),
    )))
    period = weekly(date(2026, 11, 26))
    hashes = []
    for _ in range(2):
        async with IblClient(served.url, "k", backoff_scale=0) as client:
            hashes.append(data_hash(await collect(client, "acme", period, page_size=100)))
    assert hashes[0] == hashes[1]


def embedded(knobs: MockKnobs, **options: object) -> tuple[IblClient, DemoApp]:
    """A client of a demo app in this process (no sockets): cheap, and the app's log is ours."""
    app = create_app(knobs)
    options.setdefault("backoff_scale", 0.0)
    client = IblClient("http://demo", "k", transport=httpx.ASGITransport(app=app),
                       **options)  # type: ignore[arg-type]
    return client, app


async def test_user_pages_and_series_take_turns_once_both_are_known() -> None:
    client, app = embedded(MockKnobs(latency_s=0.002, courses=15, users=1200),
                           max_concurrency=3)
    async with client:
        data = await collect(client, ORG, WEEK, page_size=50)
    kinds = [r.kind for r in app.stats.log]
    assert sorted(kinds[:3]) == ["per-course", "per-course", "users"]
    pages, series = kinds.count("users") - 1, kinds.count("over-time")
    assert pages > 10 and series == 2 * len(data.enrollments) > 10
    # While both kinds are queued they alternate (give or take the answers' order in flight):
    # neither waits for the other to drain.
    both = 2 * min(pages, series)
    for end in range(1, both + 1):
        prefix = kinds[3:3 + end]
        assert abs(prefix.count("users") - prefix.count("over-time")) <= 3, (end, prefix)


async def test_a_failed_series_fails_the_fetch_while_user_pages_are_in_flight() -> None:
    knobs = MockKnobs(courses=10, users=900)
    client, _ = embedded(knobs)
    async with client:
        victim = (await client.per_course(ORG, WEEK.start, WEEK.end)).data[2].course_id
    client, app = embedded(MockKnobs(courses=10, users=900, latency_s=0.01, faults=(
        Fault("delay", endpoint="users", page=2, delay_s=30.0),
        Fault("delay", endpoint="users", page=3, delay_s=30.0),
        Fault("status", endpoint="over-time", course=victim, status=500),
    )), max_concurrency=4)
    started = time.monotonic()
    async with client:
        with pytest.raises(ApiStatusError) as caught:
            await collect(client, ORG, WEEK, page_size=50)
    assert time.monotonic() - started < 10
    error = caught.value
    assert error.course == victim and error.status == 500 and error.org == ORG
    assert f"course {victim!r}" in str(error) and "\n" not in str(error)
    # The two hanging pages (and any other request in flight) were cancelled, answering
    # nothing; nothing was sent after the failure: most of the requests were never made.
    cancelled = {r.query.split("page=")[1].split("&")[0] for r in app.stats.log
                 if r.status == 0 and r.kind == "users"}
    assert {"2", "3"} <= cancelled
    full = 2 + 18 + 2 * 10  # per-course x2, at least 18 pages of 50, two series per course
    assert client.requests < full
