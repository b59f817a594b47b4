"""The demo API's HTTP layer: a plain ASGI app of a few GET routes, without a web framework.

The demo API runs in-process in every one-shot on the demo config (``httpx.ASGITransport``) and
over loopback for ``mock-api`` and the tests (uvicorn). It was a Starlette app; Starlette and what
it imports (anyio, python-multipart, http.cookies) cost that one-shot's parent ~25-35 ms of CPU
for three routes. This layer does what those routes used, as Starlette did it:

- routes are paths with ``{name}`` segments (one path segment each, already percent-decoded),
  for GET and HEAD; another path is 404 ``Not Found`` and another method 405 ``Method Not
  Allowed`` (with ``Allow``), as plain text;
- the query is ``parse_qsl(keep_blank_values=True)``, the last of repeated names winning;
  header names are case-insensitive, the first of repeated ones winning;
- a JSON answer is compact UTF-8 (``ensure_ascii=False``, no NaN), ``application/json``; an
  HTML one ``text/html; charset=utf-8``; the answer's own headers come first, then
  ``content-length`` and ``content-type``;
- an exception in a handler answers 500 ``Internal Server Error`` and is raised again (the
  server logs it; ``ASGITransport`` hands it to the client); the lifespan protocol is answered.

What Starlette did and this does not (no client of the demo API relies on it): no redirect of a
path with a trailing slash to the route without it (such a path is 404), and no websockets (a
websocket scope is not answered).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_METHODS = ("GET", "HEAD")
_SEGMENT = re.compile(r"\{(\w+)\}")


class Request:
    """What a handler reads of a request: query, path parameters, headers and the scope."""

    def __init__(self, scope: Scope, path_params: Mapping[str, str] | None = None) -> None:
        self.scope = scope
        self.path_params = dict(path_params or {})
        self._query: list[tuple[str, str]] | None = None

    @property
    def query_string(self) -> str:
        """The raw query, as sent (without the ``?``)."""
        raw: bytes = self.scope.get("query_string", b"")
        return raw.decode("latin-1")

    def query_items(self) -> list[tuple[str, str]]:
        """Every (name, value) of the query, in order."""
        if self._query is None:
            self._query = parse_qsl(self.query_string, keep_blank_values=True)
        return self._query

    def query(self, name: str) -> str | None:
        """The query parameter ``name`` (the last, if repeated), or None."""
        found = None
        for key, value in self.query_items():
            if key == name:
                found = value
        return found

    def header(self, name: str) -> str | None:
        """The header ``name`` (any case; the first, if repeated), or None."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.scope.get("headers", ()):
            if key.lower() == wanted:
                return bytes(value).decode("latin-1")
        return None


class Response:
    """An answer: status, body, media type and extra headers."""

    def __init__(self, body: bytes, status_code: int = 200,
                 media_type: str = "application/json",
                 headers: Mapping[str, str] | None = None) -> None:
        self.body = body
        self.status_code = status_code
        self.media_type = media_type
        self.headers = dict(headers or {})

    async def __call__(self, send: Send) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        named = {key for key, _ in raw}
        if b"content-length" not in named:
            raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        if b"content-type" not in named:
            raw.append((b"content-type", self.media_type.encode("latin-1")))
        await send({"type": "http.response.start", "status": self.status_code, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


def json_response(content: Any, status_code: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    """``content`` as compact UTF-8 JSON."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")
    return Response(body, status_code, "application/json", headers)


def html_response(text: str, status_code: int = 200) -> Response:
    """``text`` as an HTML page."""
    return Response(text.encode("utf-8"), status_code, "text/html; charset=utf-8")


def _text(text: str, status_code: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(text.encode("utf-8"), status_code, "text/plain; charset=utf-8", headers)


Handler = Callable[[Request], Awaitable[Response]]


class Routes:
    """GET routes: ``add(path, handler)``, then ``await routes(scope, receive, send)``."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], Handler]] = []

    def add(self, path: str, handler: Handler) -> None:
        """Route ``path`` (``{name}`` stands for one segment) to ``handler``."""
        parts = _SEGMENT.split(path)  # literal, name, literal, name, ..., literal
        pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
                          for i, part in enumerate(parts))
        self._routes.append((re.compile(f"^{pattern}$"), handler))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        for pattern, handler in self._routes:
            match = pattern.match(scope["path"])
            if match is None:
                continue
            if scope["method"] not in _METHODS:
                await _text("Method Not Allowed", 405, {"Allow": ", ".join(_METHODS)})(send)
                return
            try:
                response = await handler(Request(scope, match.groupdict()))
            except Exception:
                await _text("Internal Server Error", 500)(send)
                raise
            await response(send)
            return
        await _text("Not Found", 404)(send)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
