"""The API client against the demo API served over real HTTP (uvicorn on loopback)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import pytest

from reports.config import ApiConfig
from reports.errors import (
    ApiAuthError,
    ApiError,
    ApiPayloadError,
    ApiStatusError,
    ApiUnavailableError,
    ConfigError,
)
from reports.source.client import IblClient, client_from_config
from reports.source.mock import Fault, MockKnobs
from reports.source.retry import parse_retry_after
from tests._apiserver import RunningApi, api_server

__all__ = ["api_server"]

ORG = "acme-university"
START, END = date(2026, 3, 2), date(2026, 3, 8)
SECRET = "s3cret-key-0123456789"
Server = Callable[..., RunningApi]


def make_client(api: RunningApi, **options: object) -> IblClient:
    options.setdefault("backoff_scale", 0.0)
    return IblClient(api.url, SECRET, **options)  # type: ignore[arg-type]


def assert_clean(exc: BaseException, client: IblClient) -> None:
    """One line, no secret, anywhere in the chain."""
    text = str(exc)
    assert "\n" not in text
    seen: BaseException | None = exc
    while seen is not None:
        assert SECRET not in str(seen)
        seen = seen.__cause__ or seen.__context__
    assert SECRET not in repr(client)


async def test_every_endpoint_sends_its_parameters(api_server: Server) -> None:
    api = api_server()
    client = make_client(api, department_id=7, department_mode=True, include_main_platform=False)
    async with client:
        courses = await client.per_course(ORG, START, END)
        course = courses.data[0].course_id
        page = await client.users_page(ORG, START, END, 2, 10, course_id=course)
        series = await client.over_time(ORG, course, START, END, active=False)
    assert page.pagination.current_page == 2
    assert len(series.data) == 7
    queries = [parse_qs(r.query) for r in api.app.stats.log]
    for query in queries:
        assert query["start_date"] == ["2026-03-02"] and query["end_date"] == ["2026-03-08"]
        assert query["department_id"] == ["7"] and query["department_mode"] == ["1"]
        assert query["include_main_platform"] == ["false"] and query["format"] == ["json"]
    assert queries[1]["page"] == ["2"] and queries[1]["length"] == ["10"]
    assert queries[1]["course_id"] == [course]
    assert queries[2]["active"] == ["false"]
    assert client.requests == 3


async def test_course_id_is_one_percent_encoded_path_segment(api_server: Server) -> None:
    api = api_server()
    async with make_client(api) as client:
        courses = await client.per_course(ORG, START, END)
        course = courses.data[0].course_id
        assert ":" in course and "+" in course
        series = await client.over_time(ORG, course, START, END, active=True)
    assert series.total == sum(v for v in series.data.values() if v)
    raw = api.app.stats.log[-1].raw_path
    encoded = course.replace(":", "%3A").replace("+", "%2B")
    assert raw.endswith(f"/enrollments/courses/{encoded}/over-time")
    assert api.app.stats.log[-1].course == course


@pytest.mark.parametrize("header", [
    pytest.param("7", id="seconds"),
    pytest.param("http-date", id="http-date"),
])
async def test_429_is_retried_after_the_wait_asked_for(api_server: Server, header: str) -> None:
    if header == "http-date":
        header = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fault = Fault("status", endpoint="per-course", status=429,
                  headers=(("Retry-After", header),), times=2)
    api = api_server(MockKnobs(faults=(fault,)))
    async with make_client(api) as client:
        answer = await client.per_course(ORG, START, END)
    assert answer.total > 0
    assert client.requests == 3
    assert len(client.retry_waits) == 2
    for wait in client.retry_waits:
        assert (wait == 7.0) if header == "7" else (25 <= wait <= 31)


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried(api_server: Server, status: int) -> None:
    api = api_server(MockKnobs(faults=(Fault("status", status=status, times=3),)))
    async with make_client(api) as client:
        page = await client.users_page(ORG, START, END, 1, 50)
    assert len(page.data) == 50
    assert client.requests == 4


async def test_gateway_errors_that_persist_fail_after_max_retries(api_server: Server) -> None:
    api = api_server(MockKnobs(faults=(Fault("status", status=503),)))
    async with make_client(api, max_retries=2) as client:
        with pytest.raises(ApiStatusError) as caught:
            await client.per_course(ORG, START, END)
    assert caught.value.status == 503
    assert client.requests == 3 and api.app.stats.requests == 3
    assert "503" in str(caught.value) and "active-users/per-course" in str(caught.value)
    assert_clean(caught.value, client)


async def test_a_retry_after_longer_than_the_cap_fails_at_once(api_server: Server) -> None:
    fault = Fault("status", status=429, headers=(("Retry-After", "3600"),))
    api = api_server(MockKnobs(faults=(fault,)))
    started = time.monotonic()
    async with make_client(api, retry_after_cap_s=60, backoff_scale=1.0) as client:
        with pytest.raises(ApiStatusError) as caught:
            await client.per_course(ORG, START, END)
    assert time.monotonic() - started < 5
    assert client.requests == 1
    message = str(caught.value)
    assert "3600 s" in message and "retry_after_cap_s" in message
    assert_clean(caught.value, client)


async def test_a_wrong_key_fails_at_once_without_retries(api_server: Server) -> None:
    api = api_server(MockKnobs(token="the-right-token"))
    client = make_client(api, api_key_env="IBL_API_KEY")
    async with client:
        with pytest.raises(ApiAuthError) as caught:
            await client.per_course(ORG, START, END)
    assert client.requests == 1 and api.app.stats.requests == 1
    assert "401" in str(caught.value) and "IBL_API_KEY" in str(caught.value)
    assert_clean(caught.value, client)


@pytest.mark.parametrize(("kind", "call"), [
    pytest.param("per-course", "per_course", id="per-course"),
    pytest.param("users", "users_page", id="users"),
    pytest.param("over-time", "over_time", id="over-time"),
])
@pytest.mark.parametrize("action", ["html", "invalid-json", "wrong-types", "null-number"])
async def test_answers_that_are_not_the_expected_json_name_where(
    api_server: Server, kind: str, call: str, action: str
) -> None:
    api = api_server(MockKnobs(faults=(Fault(action, endpoint=kind),)))  # type: ignore[arg-type]
    async with make_client(api) as client:
        course = "course-v1:Acme+CS101+2026_T1"
        with pytest.raises(ApiPayloadError) as caught:
            if call == "per_course":
                await client.per_course(ORG, START, END)
            elif call == "users_page":
                await client.users_page(ORG, START, END, 1, 10, course_id=None)
            else:
                course = await _first_course(client)
                await client.over_time(ORG, course, START, END, active=True)
    error = caught.value
    assert error.org == ORG
    assert error.endpoint.endswith(kind)
    if kind == "over-time":
        assert error.course == course and repr(course) in str(error)
    if action == "html":
        assert "HTML page" in str(error)
    assert_clean(error, client)


async def _first_course(client: IblClient) -> str:
    return (await client.per_course(ORG, START, END)).data[0].course_id


async def test_client_errors_fail_at_once(api_server: Server) -> None:
    api = api_server()
    async with make_client(api) as client:
        with pytest.raises(ApiStatusError) as bad_range:
            await client.per_course(ORG, END, START)
        with pytest.raises(ApiStatusError) as unknown:
            await client.over_time(ORG, "course-v1:Nope+X1+2026_T1", START, END, active=True)
    assert bad_range.value.status == 400 and unknown.value.status == 404
    assert unknown.value.course == "course-v1:Nope+X1+2026_T1"
    assert client.requests == 2


async def test_an_unreachable_api_fails_after_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = IblClient(f"http://127.0.0.1:{port}", SECRET, max_retries=2, backoff_scale=0.0)
    async with client:
        with pytest.raises(ApiUnavailableError) as caught:
            await client.per_course(ORG, START, END)
    assert client.requests == 3
    assert "could not be reached" in str(caught.value)
    assert_clean(caught.value, client)


async def test_a_slow_answer_times_out_and_is_retried(api_server: Server) -> None:
    api = api_server(MockKnobs(faults=(Fault("delay", delay_s=0.5, times=1),)))
    async with make_client(api, timeout_s=0.1, max_retries=1) as client:
        answer = await client.per_course(ORG, START, END)
    assert answer.total > 0 and client.requests == 2


async def test_the_deadline_stops_everything(api_server: Server) -> None:
    api = api_server(MockKnobs(faults=(Fault("delay", delay_s=5.0),)))
    started = time.monotonic()
    async with make_client(api, deadline_s=0.3, timeout_s=30) as client:
        with pytest.raises(ApiUnavailableError) as caught:
            await client.per_course(ORG, START, END)
        with pytest.raises(ApiUnavailableError):
            await client.users_page(ORG, START, END, 1, 10)
    assert time.monotonic() - started < 3
    assert "deadline" in str(caught.value) and "api.deadline_s" in str(caught.value)


def test_the_key_is_not_in_repr() -> None:
    client = IblClient("https://example.org", SECRET)
    assert SECRET not in repr(client) and SECRET not in str(client)
    assert "example.org" in repr(client)


async def test_embedded_mode_needs_no_key() -> None:
    client = client_from_config(ApiConfig(base_url="embedded"), {})
    async with client:
        answer = await client.per_course(ORG, START, END)
        page = await client.users_page(ORG, START, END, 1, 10)
    assert answer.total == page.pagination.total_items > 0


def test_a_real_url_without_a_key_names_the_env_var() -> None:
    api = ApiConfig(base_url="https://base.manager.iblai.app", api_key_env="ACME_IBL_KEY")
    for env in ({}, {"ACME_IBL_KEY": ""}, {"ACME_IBL_KEY": "  "}):
        with pytest.raises(ConfigError, match="ACME_IBL_KEY"):
            client_from_config(api, env)
    client = client_from_config(api, {"ACME_IBL_KEY": SECRET})
    assert client.base_url == "https://base.manager.iblai.app"
    assert SECRET not in repr(client)


async def test_real_url_client_from_config_reaches_the_server(api_server: Server) -> None:
    api = api_server(MockKnobs(token=SECRET))
    config = ApiConfig(base_url=api.url, max_concurrency=3, max_retries=0)
    async with client_from_config(config, {"IBL_API_KEY": SECRET}) as client:
        assert (await client.per_course(ORG, START, END)).total > 0


@pytest.mark.parametrize(("header", "expected"), [
    pytest.param("12", 12.0, id="seconds"),
    pytest.param("0.5", 0.5, id="fraction"),
    pytest.param("-3", 0.0, id="negative"),
    pytest.param("Wed, 11 Mar 2026 10:01:00 GMT", 60.0, id="http-date"),
    pytest.param("Wed, 11 Mar 2026 09:00:00 GMT", 0.0, id="past-date"),
    pytest.param("soon", None, id="garbage"),
    pytest.param("nan", None, id="nan"),
])
def test_parse_retry_after(header: str, expected: float | None) -> None:
    now = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


def test_api_errors_are_reports_errors() -> None:
    assert issubclass(ApiPayloadError, ApiError)
