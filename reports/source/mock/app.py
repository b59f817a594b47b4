"""The demo Data Manager API: the three documented endpoints over a synthetic dataset.

Serves any org name; the data is derived from the name (see
``reports.source.mock.dataset``). Knobs add
latency, random 429/5xx and targeted faults (a status, an HTML page with 200, invalid JSON, wrong
types, nulls, a repeated page, inflated totalPages, a delay) for the hostile tests, data that has
not arrived yet (``late_days``) and a sudden real drop (``drop_from``/``drop_factor``) for the
freshness gate; ``stats`` on the app counts requests and the most seen in flight at once. The
knobs may be replaced while the server runs (``app.knobs = replace(...)``): "the data arrived".
A well-formed answer is kept as JSON bytes and given again to the same request under the same
data knobs (``answers``); an answer a fault bends is never kept.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections import OrderedDict
from datetime import date, timedelta
from typing import Any

from reports.source.mock.answercache import ANSWER_CACHE_BYTES, AnswerCache
from reports.source.mock.asgi import (
    Receive,
    Request,
    Response,
    Routes,
    Scope,
    Send,
    html_response,
    json_response,
)
from reports.source.mock.dataset import Course, Dataset, previous_range
from reports.source.mock.knobs import (
    Fault,
    Kind,
    MockKnobs,
    RequestRecord,
    ServerStats,
)

PREFIX = "/api/ai-analytics/audience/orgs/{org}"
MAX_RANGE_DAYS = 3660
_AUTH_RE = re.compile(r"^Api-Token (\S+)$")
_TRUE = {"y", "yes", "true", "True"}
_FALSE = {"n", "no", "false", "False"}


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class DemoApp:
    """The ASGI app (``mock.asgi``) with its knobs, dataset cache and stats."""

    def __init__(self, knobs: MockKnobs) -> None:
        self._routes = Routes()
        self._routes.add(f"{PREFIX}/active-users/per-course", self._per_course)
        self._routes.add(f"{PREFIX}/active-users/users", self._users)
        self._routes.add(f"{PREFIX}/enrollments/courses/{{course_id}}/over-time", self._over_time)
        self.knobs = knobs
        self.stats = ServerStats()
        self._random = random.Random(knobs.seed)
        self._datasets: OrderedDict[tuple[Any, ...], Dataset] = OrderedDict()
        self.answers = AnswerCache(ANSWER_CACHE_BYTES)
        """The JSON bytes of well-formed answers already given (``mock.answercache``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._routes(scope, receive, send)

    def dataset(self, org: str) -> Dataset:
        """The (cached) synthetic data of ``org`` under the current knobs."""
        return self._dataset(self._data_key(org))

    def _data_key(self, org: str) -> tuple[Any, ...]:
        """Everything the data of ``org`` depends on (the knobs may change while serving)."""
        knobs = self.knobs
        drop = (knobs.drop_from, knobs.drop_factor) if knobs.drop_from is not None else None
        return (org, knobs.courses, knobs.users, knobs.seed, knobs.launched,
                knobs.arrived_until(), drop, knobs.small_courses, knobs.small_course_size,
                knobs.course_names, knobs.user_names)

    def _dataset(self, key: tuple[Any, ...]) -> Dataset:
        ds = self._datasets.get(key)
        if ds is None:
            knobs = self.knobs
            org, arrived, drop = key[0], key[5], key[6]
            ds = Dataset(org, courses=knobs.courses, users=knobs.users, seed=knobs.seed,
                         launched=knobs.launched, arrived_until=arrived, drop=drop,
                         small_courses=knobs.small_courses,
                         small_course_size=knobs.small_course_size)
            _rename(ds, knobs)
            self._datasets[key] = ds
            while len(self._datasets) > 16:
                self._datasets.popitem(last=False)
        self._datasets.move_to_end(key)
        return ds

    # -- endpoints ---------------------------------------------------------------------------

    async def _per_course(self, request: Request) -> Response:
        return await self._handle(request, "per-course", None, None, self._per_course_body)

    async def _users(self, request: Request) -> Response:
        course = request.query("course_id") or None
        page_text = request.query("page")
        page = int(page_text) if page_text and page_text.isdigit() else None
        return await self._handle(request, "users", course, page, self._users_body)

    async def _over_time(self, request: Request) -> Response:
        course = request.path_params["course_id"]
        return await self._handle(request, "over-time", course, None, self._over_time_body)

    def _per_course_body(self, request: Request, ds: Dataset) -> dict[str, Any]:
        start, end = _dates(request)
        activity = ds.range_activity(start, end)
        counts = activity.course_counts.tolist()
        order = sorted((i for i, n in enumerate(counts) if n > 0), key=lambda i: -counts[i])
        data = [
            {"course_id": ds.courses[i].course_id, "name": ds.courses[i].name,
             "user_count": counts[i]}
            for i in order
        ]
        total = len(activity.active_users)
        return {"data": data, "total": total,
                "meta": _meta(total, start, end, ds.active_total)}

    def _users_body(self, request: Request, ds: Dataset) -> dict[str, Any]:
        start, end = _dates(request)
        page = _positive(request.query("page"), "page", 1)
        length = min(_positive(request.query("length"), "length", 20), self.knobs.page_cap)
        course_id = request.query("course_id") or None
        if course_id is None:
            users = ds.range_activity(start, end).active_users
        else:
            users = ds.course_users(start, end, _course(ds, course_id))
        total = len(users)
        rows = ds.user_rows(users[(page - 1) * length: page * length])
        return {"data": rows, "pagination": {
            "totalItems": total, "currentPage": page, "perPage": length,
            "totalPages": math.ceil(total / length)}}

    def _over_time_body(self, request: Request, ds: Dataset) -> dict[str, Any]:
        start, end = _dates(request)
        course = _course(ds, request.path_params["course_id"])
        flag = request.query("active")
        if flag in _TRUE:
            active = True
        elif flag in _FALSE:
            active = False
        else:
            raise _BadRequest(400, "active must be one of y, yes, true, True, n, no, false, False")
        data = ds.enrollments(course, start, end, active)
        total = sum(v for v in data.values() if v)
        return {"data": data, "total": total, "meta": _meta(
            total, start, end, lambda s, e: ds.enrollment_total(course, s, e, active))}

    # -- the common path of every request --------------------------------------------------

    async def _handle(self, request: Request, kind: Kind, course: str | None, page: int | None,
                      body: Any) -> Response:
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        org = request.path_params["org"]
        response: Response | None = None
        try:
            response = await self._respond(request, kind, org, course, page, body)
            return response
        finally:
            stats.in_flight -= 1
            stats.log.append(RequestRecord(
                kind, org, course, request.scope.get("raw_path", b"").decode("latin-1"),
                request.query_string, response.status_code if response is not None else 0))

    async def _respond(self, request: Request, kind: Kind, org: str, course: str | None,
                       page: int | None, body: Any) -> Response:
        knobs = self.knobs
        match = _AUTH_RE.match(request.header("authorization") or "")
        if match is None or (knobs.token is not None and match.group(1) != knobs.token):
            return json_response({"detail": "Invalid or missing API token."}, 401)
        if knobs.latency_s > 0:
            await asyncio.sleep(knobs.latency_s)
        if knobs.rate_429 and self._random.random() < knobs.rate_429:
            return json_response({"detail": "Too many requests."}, 429,
                                 {"Retry-After": knobs.retry_after})
        if knobs.rate_5xx and self._random.random() < knobs.rate_5xx:
            return html_response("<html><body>Bad gateway</body></html>",
                                 self._random.choice((502, 503, 504)))
        transforms: list[Fault] = []
        for index, fault in enumerate(knobs.faults):
            if not fault.matches(kind, org, course, page):
                continue
            hits = self.stats.fault_hits.get(index, 0)
            if fault.times is not None and hits >= fault.times:
                continue
            self.stats.fault_hits[index] = hits + 1
            early = await _early_fault(fault)
            if early is not None:
                return early
            transforms.append(fault)
        data_key = self._data_key(org)
        # A well-formed answer depends only on the data, the page cap, the URL and (for a
        # missing end_date) today: the same request is answered from the cache.
        answer_key = (data_key, knobs.page_cap, date.today(),
                      request.scope["path"], request.scope["query_string"])
        cached = None if transforms else self.answers.get(answer_key)
        if cached is not None:
            return Response(cached)
        ds = self._dataset(data_key)
        try:
            payload = body(request, ds)
            for fault in transforms:
                payload = self._transform(fault, payload, request, ds)
        except _BadRequest as exc:
            return json_response({"detail": exc.detail}, exc.status)
        response = json_response(payload)
        if not transforms:
            self.answers.put(answer_key, bytes(response.body))
        return response

    def _transform(self, fault: Fault, payload: dict[str, Any], request: Request, ds: Dataset
                   ) -> dict[str, Any]:
        if fault.action == "wrong-types":
            if "pagination" in payload:
                payload["pagination"]["totalItems"] = str(payload["pagination"]["totalItems"])
            elif isinstance(payload["data"], list) and payload["data"]:
                payload["data"][0]["user_count"] = f"{payload['data'][0]['user_count']} users"
            else:
                payload["total"] = "many"
        elif fault.action == "null-number":
            if "pagination" in payload:
                payload["pagination"]["totalPages"] = None
            elif isinstance(payload["data"], dict):
                payload["meta"]["total"] = None  # the over-time total itself may be null
            else:
                payload["total"] = None
        elif fault.action == "inflate-pages" and "pagination" in payload:
            payload["pagination"]["totalPages"] += 5
        elif fault.action == "repeat-page" and "pagination" in payload:
            # A paginator that serves the previous page again while claiming the one asked for.
            page = payload["pagination"]["currentPage"]
            if page > 1:
                scope = dict(request.scope)
                query = request.query_items()
                scope["query_string"] = "&".join(
                    f"{k}={v if k != 'page' else page - 1}" for k, v in query
                ).encode()
                earlier = self._users_body(Request(scope, request.path_params), ds)
                payload["data"] = earlier["data"]
        return payload


def _rename(ds: Dataset, knobs: MockKnobs) -> None:
    """Give the courses and users the names the knobs ask for, cycling through them."""
    if knobs.course_names:
        ds.courses = [
            Course(c.course_id, knobs.course_names[i % len(knobs.course_names)])
            for i, c in enumerate(ds.courses)
        ]
    if knobs.user_names:
        ds.names = [knobs.user_names[i % len(knobs.user_names)] for i in range(len(ds.names))]


async def _early_fault(fault: Fault) -> Response | None:
    if fault.action == "status":
        return json_response({"detail": f"injected status {fault.status}"}, fault.status,
                             dict(fault.headers))
    if fault.action == "html":
        return html_response("<!DOCTYPE html><html><head><title>Maintenance</title></head>"
                             "<body><h1>We'll be back soon</h1></body></html>")
    if fault.action == "invalid-json":
        return Response(b'{"data": [{"course_id": ')
    if fault.action == "delay":
        await asyncio.sleep(fault.delay_s)
    return None


def _dates(request: Request) -> tuple[date, date]:
    start_text = request.query("start_date") or None
    end_text = request.query("end_date") or None
    start = _date(start_text, "start_date") if start_text else None
    end = _date(end_text, "end_date") if end_text else None
    if end is None:
        end = date.today() if start is None else max(start, date.today())
    if start is None:
        start = end - timedelta(days=6)
    if end < start:
        raise _BadRequest(400, "end_date is before start_date")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise _BadRequest(400, f"the date range is longer than {MAX_RANGE_DAYS} days")
    return start, end


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _BadRequest(400, f"{name} must be an ISO date (YYYY-MM-DD)") from None


def _positive(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < 1:
        raise _BadRequest(400, f"{name} must be a positive integer")
    return int(text)


def _course(ds: Dataset, course_id: str) -> int:
    index = ds.course_index.get(course_id)
    if index is None:
        raise _BadRequest(404, f"course {course_id!r} not found")
    return index


def _meta(total: int, start: date, end: date, total_of: Any) -> dict[str, Any]:
    """Change information against the previous range and the last 7/30 days."""
    prev_start, prev_end = previous_range(start, end)
    previous = total_of(prev_start, prev_end)
    last7 = total_of(end - timedelta(days=6), end)
    before7 = total_of(end - timedelta(days=13), end - timedelta(days=7))
    last30 = total_of(end - timedelta(days=29), end)
    before30 = total_of(end - timedelta(days=59), end - timedelta(days=30))
    return {
        "total": total,
        "change_range": total - previous,
        "change_last_seven_days": last7 - before7,
        "change_last_thirty_days": last30 - before30,
        "change_last_seven_days_percent": _percent(last7, before7),
        "change_last_thirty_days_percent": _percent(last30, before30),
        "change_range_percent": _percent(total, previous),
    }


def _percent(now: int, before: int) -> float:
    return round(100.0 * (now - before) / before, 1) if before else 0.0


def create_app(knobs: MockKnobs | None = None) -> DemoApp:
    """The demo API as an ASGI app."""
    return DemoApp(knobs or MockKnobs())

