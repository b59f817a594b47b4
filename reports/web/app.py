"""The web UI's application: routes, sessions, security headers, login and logout.

``create_app`` takes its seams (the ledger, the send runner, the clocks)
so tests run the real server against a state database of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reports.config import Config
from reports.logs import log_event
from reports.web import actions, pages
from reports.web.auth import LoginThrottle, Sessions, csrf_ok, throttle_keys
from reports.web.context import STATIC, WebContext, epoch, web
from reports.web.scoped import NotFound
from reports.web.serve import is_loopback

_log = logging.getLogger("reports.web")
SESSION_COOKIE = "ibl_reports_session"
LOGIN_FAILED = "login-failed"
_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'"),
]


class _Sessions:
    """Signed-cookie sessions whose cookie is ``Secure`` exactly when the request came by https."""

    def __init__(self, app: ASGIApp, secret: str, max_age: int) -> None:
        common: dict[str, Any] = {"secret_key": secret, "session_cookie": SESSION_COOKIE,
                                  "max_age": max_age, "same_site": "strict"}
        self._plain = SessionMiddleware(app, https_only=False, **common)
        self._tls = SessionMiddleware(app, https_only=True, **common)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self._tls if scope.get("scheme") in ("https", "wss") else self._plain
        await chosen(scope, receive, send)


class _SecurityHeaders:
    """No framing, no sniffing, no referrer, a strict CSP; pages are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in names]
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, with_headers)


class _LoopbackHosts:
    """Without users, answer only requests addressed to a loopback name (no DNS rebinding)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_loopback(_host_of(scope)):
            response = PlainTextResponse("this UI answers loopback addresses only", 400)
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)


def _host_of(scope: Scope) -> str:
    raw: bytes = dict(scope.get("headers", [])).get(b"host", b"")
    host = raw.decode("latin-1")
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme) is followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


async def login_page(request: Request) -> Response:
    """The login form (GET) and its check (POST), throttled after failures."""
    ctx = web(request)
    if not ctx.config.web.users:
        return RedirectResponse("/", status_code=303)
    target = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return ctx.render(request, "login.html.j2", None, next=target, error=None)
    form = await request.form()
    name = str(form.get("name", ""))[:100]
    password = str(form.get("password", ""))[:1000]
    target = _safe_next(str(form.get("next", "/")))
    if not csrf_ok(request.session, form.get("csrf")):
        return ctx.render(request, "login.html.j2", None, status=403, next=target,
                          error="The form was stale; please try again.")
    client = request.client.host if request.client else "unknown"
    keys = throttle_keys(name, client)
    wait = ctx.throttle.wait_s(keys)
    if wait > 0:
        log_event(_log, "web.login.throttled", user=name, client=client)
        return ctx.render(request, "login.html.j2", None, status=429, next=target,
                          error=f"Too many failed logins; try again in {int(wait) + 1} s.")
    user = ctx.config.web.user(name)
    if user is None or not await run_in_threadpool(ctx.passwords.verify, user, password):
        if user is None:  # the same work as a wrong password, so names cannot be probed
            await run_in_threadpool(ctx.passwords.verify, None, password)
        ctx.throttle.failed(keys)
        log_event(_log, "web.login.failed", level=logging.WARNING, user=name, client=client)
        # Who tried which name from where (never the password): the operators' audit page.
        await run_in_threadpool(ctx.ledger.audit, name or "(empty)", LOGIN_FAILED,
                                detail=f"from {client}")
        return ctx.render(request, "login.html.j2", None, status=401, next=target,
                          error="Wrong name or password.")
    ctx.throttle.succeeded(keys[:1])  # the name's count; the address keeps its own
    ctx.sessions.sign_in(request.session, user)
    log_event(_log, "web.login", user=user.name, client=client)
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    """End the session (POST with the CSRF token)."""
    form = await request.form()
    if csrf_ok(request.session, form.get("csrf")):
        request.session.clear()
    return RedirectResponse("/login" if web(request).config.web.users else "/", status_code=303)


async def _not_found(request: Request, exc: Exception) -> Response:
    principal = web(request).sessions.principal(request.session)
    return web(request).render(request, "error.html.j2", principal, status=404,
                               title="Not found", message="There is nothing here.")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await _not_found(request, exc)
    principal = web(request).sessions.principal(request.session)
    return web(request).render(request, "error.html.j2", principal, status=exc.status_code,
                               title="Refused", message=str(exc.detail))


def routes() -> list[Route | Mount]:
    """Every URL of the UI."""
    post = ["POST"]
    return [
        Route("/", pages.reports_page),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=post),
        Route("/archive/verify", pages.verify_page),
        Route("/reports/{name}", pages.report_page),
        Route("/audit", pages.audit_page),
        Route("/reports/{name}/pdf/{period}", pages.download_pdf),
        Route("/reports/{name}/pdf/{period}/{edition}", pages.download_pdf),
        Route("/reports/{name}/pdf/{period}/{edition}/{ref}", pages.download_pdf),
        Route("/reports/{name}/html/{period}", pages.preview_html),
        Route("/reports/{name}/html/{period}/{edition}", pages.preview_html),
        Route("/reports/{name}/html/{period}/{edition}/{ref}", pages.preview_html),
        Route("/reports/{name}/test-copy", actions.test_copy, methods=post),
        Route("/reports/{name}/run", actions.run_now, methods=post),
        Route("/reports/{name}/pause", actions.pause, methods=post),
        Route("/reports/{name}/resume", actions.resume, methods=post),
        Route("/runs/{run_id:int}", pages.run_page),
        Route("/runs/{run_id:int}/retry", actions.retry_failed, methods=post),
        Route("/runs/{run_id:int}/resend", actions.resend, methods=post),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(
    config: Config, *, secret: str, ledger: Any, runner: Any,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    epoch_clock: Callable[[], float] = epoch,
) -> Starlette:
    """The web UI for ``config``, signing sessions with ``secret``."""
    web_config = config.web
    context = WebContext(
        config=config, ledger=ledger, runner=runner, clock=clock,
        sessions=Sessions(web_config, secret, epoch_clock),
        throttle=LoginThrottle(web_config.login_max_failures, web_config.login_lockout_s,
                               epoch_clock),
    )
    app = Starlette(
        routes=routes(),
        exception_handlers={NotFound: _not_found, HTTPException: _http_error},
    )
    app.state.web = context
    app.add_middleware(_Sessions, secret=secret, max_age=context.sessions.max_age_s)
    if not web_config.users:
        app.add_middleware(_LoopbackHosts)
    app.add_middleware(_SecurityHeaders)
    return app
