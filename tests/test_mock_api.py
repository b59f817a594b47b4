"""The demo API: the documented contract, consistency across endpoints, speed at scale."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from reports.errors import UsageError
from reports.source.mock import Fault, MockKnobs, create_app, listening_socket
from reports.source.mock.answercache import AnswerCache
from reports.source.mock.dataset import Dataset, default_size
from tests._apiserver import RunningApi, api_server

__all__ = ["api_server"]

ORG = "acme-university"
WEEK = {"start_date": "2026-03-02", "end_date": "2026-03-08"}
AUTH = {"Authorization": "Api-Token demo"}
Server = Callable[..., RunningApi]


def base(org: str = ORG) -> str:
    return f"/api/ai-analytics/audience/orgs/{org}"


def get(http: httpx.Client, path: str, **params: Any) -> Any:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def over_time_path(course: str, org: str = ORG) -> str:
    return f"{base(org)}/enrollments/courses/{quote(course, safe='')}/over-time"


@pytest.fixture
def http(api_server: Server) -> Any:
    api = api_server()
    with httpx.Client(base_url=api.url, headers=AUTH) as client:
        yield client


def sdk_models(*modules: str) -> list[Any]:
    """The official iblai SDK's model classes from ``iblai/models/<module>.py``, loaded without
    the SDK's ``__init__`` files: those import all its ~1,000 models and APIs (5-7 s of CPU) to
    re-export them. The classes are the SDK's own code; ``sys.modules`` is restored after."""
    import importlib
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("iblai")
    assert spec is not None and spec.submodule_search_locations
    root = next(iter(spec.submodule_search_locations))
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "iblai"}
    for name, path in (("iblai", root), ("iblai.models", f"{root}/models")):
        package = types.ModuleType(name)
        package.__path__ = [path]
        sys.modules[name] = package
    try:
        loaded = [importlib.import_module(f"iblai.models.{m}") for m in modules]
        return [getattr(module, "".join(w.title() for w in m.split("_")))
                for module, m in zip(loaded, modules, strict=True)]
    finally:
        for name in [k for k in sys.modules if k.split(".")[0] == "iblai"]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_answers_parse_with_the_official_sdk_models(http: httpx.Client) -> None:
    ActiveUsersList, ActiveUsersPerCourse, OvertimeWithChangeInfo = sdk_models(
        "active_users_list", "active_users_per_course", "overtime_with_change_info")
    assert ActiveUsersList.__module__ == "iblai.models.active_users_list"

    per_course = ActiveUsersPerCourse.from_dict(get(http, f"{base()}/active-users/per-course",
                                                    **WEEK))
    assert per_course is not None and per_course.total > 0
    users = ActiveUsersList.from_dict(get(http, f"{base()}/active-users/users", page=1,
                                          length=100, **WEEK))
    assert users is not None and users.pagination.total_items == per_course.total
    course = per_course.data[0].course_id
    series = OvertimeWithChangeInfo.from_dict(get(http, over_time_path(course), active="y",
                                                  **WEEK))
    assert series is not None and series.meta.total == series.total


def test_endpoints_agree_with_each_other(http: httpx.Client) -> None:
    per_course = get(http, f"{base()}/active-users/per-course", **WEEK)
    total = per_course["total"]
    usernames: list[str] = []
    page = 1
    while True:
        answer = get(http, f"{base()}/active-users/users", page=page, length=100, **WEEK)
        assert answer["pagination"]["totalItems"] == total
        usernames += [u["username"] for u in answer["data"]]
        if page >= answer["pagination"]["totalPages"]:
            break
        page += 1
    assert len(usernames) == len(set(usernames)) == total
    counts = [c["user_count"] for c in per_course["data"]]
    # Users of two courses count once in the total, and in each of their courses.
    assert max(counts) <= total < sum(counts)
    for course in per_course["data"][:5]:
        listed = get(http, f"{base()}/active-users/users", course_id=course["course_id"],
                     length=100, **WEEK)
        assert listed["pagination"]["totalItems"] == course["user_count"]
        assert set(u["username"] for u in listed["data"]) <= set(usernames)


def test_meta_changes_compare_with_the_previous_range(http: httpx.Client) -> None:
    now = get(http, f"{base()}/active-users/per-course", **WEEK)
    before = get(http, f"{base()}/active-users/per-course", start_date="2026-02-23",
                 end_date="2026-03-01")
    assert now["meta"]["total"] == now["total"]
    assert now["meta"]["change_range"] == now["total"] - before["total"]
    expected = round(100 * (now["total"] - before["total"]) / before["total"], 1)
    assert now["meta"]["change_range_percent"] == expected
    course = now["data"][0]["course_id"]
    series = get(http, over_time_path(course), active="true", **WEEK)
    earlier = get(http, over_time_path(course), active="true", start_date="2026-02-23",
                  end_date="2026-03-01")
    assert series["total"] == sum(v for v in series["data"].values() if v is not None)
    assert series["meta"]["change_range"] == series["total"] - earlier["total"]


def test_no_dates_means_the_last_seven_days(http: httpx.Client) -> None:
    end = date.today()
    start = end - timedelta(days=6)
    implicit = get(http, f"{base()}/active-users/per-course")
    explicit = get(http, f"{base()}/active-users/per-course", start_date=start.isoformat(),
                   end_date=end.isoformat())
    assert implicit == explicit
    course = implicit["data"][0]["course_id"]
    series = get(http, over_time_path(course), active="y")
    assert sorted(series["data"]) == [(start + timedelta(days=i)).isoformat() for i in range(7)]


@pytest.mark.parametrize("params", [
    pytest.param({"start_date": "2026-13-01"}, id="bad-month"),
    pytest.param({"end_date": "yesterday"}, id="not-a-date"),
    pytest.param({"start_date": "2026-03-08", "end_date": "2026-03-02"}, id="end-before-start"),
    pytest.param({"page": "0"}, id="page-zero"),
    pytest.param({"length": "-5"}, id="negative-length"),
])
def test_bad_parameters_are_400(http: httpx.Client, params: dict[str, str]) -> None:
    response = http.get(f"{base()}/active-users/users", params=params)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_active_flag_spellings(http: httpx.Client) -> None:
    course = get(http, f"{base()}/active-users/per-course", **WEEK)["data"][0]["course_id"]
    path = over_time_path(course)
    enrolled = [get(http, path, active=flag, **WEEK) for flag in ("y", "yes", "true", "True")]
    left = [get(http, path, active=flag, **WEEK) for flag in ("n", "no", "false", "False")]
    assert all(a == enrolled[0] for a in enrolled) and all(a == left[0] for a in left)
    assert enrolled[0] != left[0]
    for bad in ({"active": "maybe"}, {"active": "TRUE"}, {}):
        assert http.get(path, params={**WEEK, **bad}).status_code == 400


def test_unknown_course_is_404(http: httpx.Client) -> None:
    response = http.get(over_time_path("course-v1:Nope+X+2026_T1"), params={"active": "y"})
    assert response.status_code == 404
    response = http.get(f"{base()}/active-users/users",
                        params={"course_id": "course-v1:Nope+X+2026_T1"})
    assert response.status_code == 404


@pytest.mark.parametrize("header", [
    pytest.param(None, id="missing"),
    pytest.param("Bearer abc", id="wrong-scheme"),
    pytest.param("Api-Token", id="no-token"),
    pytest.param("Api-Token a b", id="two-tokens"),
])
def test_missing_or_malformed_authorization_is_401(api_server: Server, header: str | None
                                                   ) -> None:
    api = api_server()
    headers = {"Authorization": header} if header is not None else {}
    response = httpx.get(f"{api.url}{base()}/active-users/per-course", headers=headers)
    assert response.status_code == 401


def test_pages_are_capped_and_end_empty(api_server: Server) -> None:
    api = api_server(MockKnobs(page_cap=100))
    with httpx.Client(base_url=api.url, headers=AUTH) as http:
        first = get(http, f"{base()}/active-users/users", page=1, length=500, **WEEK)
        pagination = first["pagination"]
        assert pagination["perPage"] == 100 and len(first["data"]) == 100
        assert pagination["totalPages"] == math.ceil(pagination["totalItems"] / 100)
        beyond = get(http, f"{base()}/active-users/users", page=pagination["totalPages"] + 1,
                     length=500, **WEEK)
    assert beyond["data"] == [] and beyond["pagination"]["currentPage"] == \
        pagination["totalPages"] + 1


def test_the_dataset_is_deterministic_per_org() -> None:
    one = Dataset("acme-university")
    again = Dataset("acme-university")
    other = Dataset("globex-college")
    assert [c.course_id for c in one.courses] == [c.course_id for c in again.courses]
    assert one.usernames == again.usernames
    week = (date(2026, 3, 2), date(2026, 3, 8))
    assert one.active_total(*week) == again.active_total(*week)
    assert [c.course_id for c in one.courses] != [c.course_id for c in other.courses]
    for org in ("acme-university", "globex-college", "x", "a-very-long-org-name-indeed"):
        courses, users = default_size(org)
        assert 20 <= courses <= 60 and 500 <= users <= 3000


def test_course_ids_and_names_are_realistic() -> None:
    ds = Dataset("acme-university", courses=60)
    ids = [c.course_id for c in ds.courses]
    names = " ".join(c.name for c in ds.courses)
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("course-v1:") and i.count("+") == 2 for i in ids)
    for needle in ("&", "<", "$", "€", "データ", "البرمجة", "Φιλοσοφία"):
        assert needle in names


def test_activity_follows_the_week() -> None:
    ds = Dataset("acme-university", users=5000)
    monday, saturday = date(2026, 3, 2), date(2026, 3, 7)
    assert ds.active_total(monday, monday) > 1.5 * ds.active_total(saturday, saturday)


def test_about_one_day_in_a_hundred_is_null() -> None:
    ds = Dataset("acme-university", courses=50)
    values = [v for c in range(50)
              for v in ds.enrollments(c, date(2026, 1, 1), date(2026, 3, 31), True).values()]
    share = sum(v is None for v in values) / len(values)
    assert 0.002 < share < 0.03


@pytest.mark.parametrize(("courses", "users"), [
    pytest.param(300, 20_000, id="300-courses-20k-users"),
    pytest.param(2000, 100_000, id="2000-courses-100k-users"),
])
async def test_big_orgs_are_fast(courses: int, users: int) -> None:
    app = create_app(MockKnobs(courses=courses, users=users))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo",
                                 headers=AUTH) as http:
        started = time.perf_counter()
        per_course = (await http.get(f"{base()}/active-users/per-course", params=WEEK)).json()
        first = time.perf_counter() - started
        assert len(per_course["data"]) > courses * 0.8
        started = time.perf_counter()
        for page in range(1, 21):
            response = await http.get(f"{base()}/active-users/users",
                                      params={**WEEK, "page": page, "length": 100})
            assert len(response.json()["data"]) == 100
        for course in per_course["data"][:20]:
            response = await http.get(over_time_path(course["course_id"]),
                                      params={**WEEK, "active": "y"})
            assert response.status_code == 200
        per_request = (time.perf_counter() - started) / 40
    assert first < 5.0
    assert per_request < 0.02


def test_late_days_are_null_and_inactive_until_they_arrive(api_server: Server) -> None:
    # Monday 16 Nov: Sunday's and Monday's data have not been loaded yet.
    knobs = MockKnobs(today=date(2026, 11, 16), late_days=2)
    api = api_server(knobs)
    week = {"start_date": "2026-11-09", "end_date": "2026-11-15"}
    saturday = {"start_date": "2026-11-14", "end_date": "2026-11-14"}
    sunday = {"start_date": "2026-11-15", "end_date": "2026-11-15"}
    with httpx.Client(base_url=api.url, headers=AUTH) as http:
        course = get(http, f"{base()}/active-users/per-course", **week)["data"][0]["course_id"]
        series = get(http, over_time_path(course), active="y", **week)["data"]
        assert series["2026-11-15"] is None and series["2026-11-14"] is not None
        assert get(http, f"{base()}/active-users/per-course", **sunday)["total"] == 0
        assert get(http, f"{base()}/active-users/users", **sunday)["pagination"][
            "totalItems"] == 0
        saturday_total = get(http, f"{base()}/active-users/per-course", **saturday)["total"]
        assert saturday_total > 0
        # The data arrives: the same server now answers the complete day.
        api.app.knobs = replace(knobs, late_days=0)
        assert get(http, over_time_path(course), active="y", **week)["data"][
            "2026-11-15"] is not None
        assert get(http, f"{base()}/active-users/per-course", **sunday)["total"] > 0
        assert get(http, f"{base()}/active-users/per-course", **saturday)["total"] == (
            saturday_total
        )


def test_a_real_drop_has_complete_days_with_low_figures() -> None:
    normal = Dataset(ORG)
    dropped = Dataset(ORG, drop=(date(2026, 11, 9), 0.2))
    before = (date(2026, 11, 2), date(2026, 11, 8))
    after = (date(2026, 11, 9), date(2026, 11, 15))
    assert dropped.active_total(*before) == normal.active_total(*before)
    assert dropped.active_total(*after) < 0.4 * normal.active_total(*after)
    course = 0
    series = dropped.enrollments(course, *after, True)
    assert sum(v is None for v in series.values()) <= 1  # the usual rare null, no gap
    assert dropped.enrollment_total(course, *after, True) < normal.enrollment_total(
        course, *after, True)


async def test_a_repeated_request_is_answered_from_the_cache_until_the_knobs_change() -> None:
    app = create_app(MockKnobs(courses=20, users=900, page_cap=100))
    users = f"{base()}/active-users/users"
    params = {**WEEK, "page": "2", "length": "500"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://demo", headers=AUTH) as http:
        first = await http.get(users, params=params)
        cached = len(app.answers)
        again = await http.get(users, params=params)
        assert again.content == first.content and len(app.answers) == cached > 0
        assert again.headers["content-type"] == first.headers["content-type"]
        app.knobs = replace(app.knobs, page_cap=50)  # "the server changed": not the old bytes
        capped = (await http.get(users, params=params)).json()
        assert capped["pagination"]["perPage"] == 50 and len(capped["data"]) == 50
        app.knobs = replace(app.knobs, faults=(Fault("wrong-types", endpoint="users"),))
        faulty = (await http.get(users, params=params)).json()
        assert isinstance(faulty["pagination"]["totalItems"], str)  # faults are never cached
        app.knobs = replace(app.knobs, faults=())
        assert (await http.get(users, params=params)).json() == capped


def test_the_answer_cache_is_bounded_by_its_bytes() -> None:
    cache = AnswerCache(100)
    for key in range(5):
        cache.put(key, bytes(30))
    assert len(cache) == 3 and cache.size == 90 and cache.get(0) is None
    assert cache.get(2) is not None  # now the most recently used: 3 goes first
    cache.put("big", bytes(40))
    assert cache.get(3) is None and cache.get(2) is not None and cache.size == 100
    cache.put("huge", bytes(101))
    assert cache.get("huge") is None and cache.size == 100


def test_a_port_in_use_is_one_line_naming_it() -> None:
    taken = listening_socket("127.0.0.1", 0)
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(UsageError) as caught:
            listening_socket("127.0.0.1", port)
    finally:
        taken.close()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "in use" in message and "\n" not in message
