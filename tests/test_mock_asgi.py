"""The demo API's ASGI layer answers what the routes do not, as Starlette did (in-process)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
import pytest

from reports.source.mock import MockKnobs, create_app
from reports.source.mock.asgi import Request, Response, Routes, json_response

PER_COURSE = "/api/ai-analytics/audience/orgs/acme/active-users/per-course"
TOKEN = {"Authorization": "Api-Token demo-token"}


def _get(app: Any, path: str, method: str = "GET", **options: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.request(method, path, **options)

    return asyncio.run(go())


def test_an_unknown_path_is_404_and_another_method_405() -> None:
    app = create_app(MockKnobs())
    missing = _get(app, "/api/nothing-here", headers=TOKEN)
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert missing.headers["content-type"] == "text/plain; charset=utf-8"
    posted = _get(app, PER_COURSE, "POST", headers=TOKEN)
    assert (posted.status_code, posted.text) == (405, "Method Not Allowed")
    assert posted.headers["allow"] == "GET, HEAD"


def test_headers_are_case_insensitive_and_the_last_query_value_wins() -> None:
    app = create_app(MockKnobs())
    answer = _get(app, PER_COURSE, headers={"aUtHoRiZaTiOn": "Api-Token demo-token"},
                  params=[("start_date", "2026-13-01"), ("start_date", "2026-11-16"),
                          ("end_date", "2026-11-22")])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.content))


def test_a_handler_that_fails_answers_500_and_raises() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError(f"broken for {request.path_params['name']}")

    routes = Routes()
    routes.add("/items/{name}", broken)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/items/x", "headers": []}
    with pytest.raises(RuntimeError, match="broken for x"):
        asyncio.run(routes(scope, receive, send))
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"Internal Server Error"


def test_the_lifespan_is_answered() -> None:
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    asyncio.run(create_app(MockKnobs())({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_an_answer_that_names_its_own_type_or_length_gets_no_second_one() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    answer = Response(b"oops", 503, headers={"Content-Type": "text/plain", "Retry-After": "2"})
    asyncio.run(answer(send))
    names = [name for name, _ in sent[0]["headers"]]
    assert sorted(names) == [b"content-length", b"content-type", b"retry-after"]
    assert (b"content-type", b"text/plain") in sent[0]["headers"]


def test_json_is_compact_utf8_and_refuses_nan() -> None:
    assert json_response({"name": "Zoë", "n": [1, 2]}).body == '{"name":"Zoë","n":[1,2]}'.encode()
    with pytest.raises(ValueError):
        json_response({"n": float("nan")})


def test_the_embedded_api_imports_no_web_framework() -> None:
    code = ("import sys; from reports.source.mock.app import create_app; create_app(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'anyio'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
