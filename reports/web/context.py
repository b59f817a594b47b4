"""What every request handler shares: the config, the ledger, sessions, templates, the clock.

``WebContext`` is built once by ``app.create_app`` and kept on ``app.state.web``. The two
decorators wrap every route: ``page`` answers only a signed-in principal (others are sent to the
login page), ``action`` also wants an operator (403) and the session's CSRF token (403).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from reports.config import Config
from reports.logs import log_event
from reports.web.auth import LoginThrottle, Passwords, Principal, Sessions, csrf_ok, csrf_token
from reports.web.scoped import Scoped

_log = logging.getLogger("reports.web")
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

Handler = Callable[[Request, Principal], Awaitable[Response]]
FormHandler = Callable[[Request, Principal, FormData], Awaitable[Response]]


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = _size
    return Jinja2Templates(env=env)


def _when(value: datetime | None, zone: str | None = None) -> str:
    if value is None:
        return "-"
    if zone:
        from zoneinfo import ZoneInfo

        value = value.astimezone(ZoneInfo(zone))
    return value.strftime("%Y-%m-%d %H:%M:%S ") + (value.tzname() or "")


def _size(value: int) -> str:
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024 / 1024:.1f} MiB"


@dataclass
class WebContext:
    """The state one web UI process shares between requests."""

    config: Config
    ledger: Any
    sessions: Sessions
    throttle: LoginThrottle
    clock: Callable[[], datetime]
    runner: Any
    passwords: Passwords = field(default_factory=Passwords)
    templates: Jinja2Templates = field(default_factory=_templates)

    def scoped(self, principal: Principal) -> Scoped:
        """The lookups this principal may make."""
        return Scoped(self.config, self.ledger, principal, clock=self.clock,
                       paused=self.ledger.paused_reports)

    def render(
        self, request: Request, name: str, principal: Principal | None, status: int = 200,
        **context: Any,
    ) -> Response:
        """A page from ``templates/``, with the principal and a CSRF token."""
        context.update(user=principal, csrf=csrf_token(request.session),
                       users_configured=bool(self.config.web.users),
                       flash=request.session.pop("flash", None))
        return self.templates.TemplateResponse(request, name, context, status_code=status)


def web(request: Request) -> WebContext:
    """The shared context of the app serving ``request``."""
    context: WebContext = request.app.state.web
    return context


def epoch() -> float:
    """Seconds since the epoch (the sessions' and throttle's clock)."""
    return time.time()


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Serve only a signed-in principal; send anyone else to the login page."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        principal = web(request).sessions.principal(request.session)
        if principal is None:
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return await handler(request, principal)

    return endpoint


def action(handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
    """A POST for operators only, with the session's CSRF token."""

    async def checked(request: Request, principal: Principal) -> Response:
        form = await request.form()
        refused = ("stale or missing CSRF token" if not csrf_ok(request.session, form.get("csrf"))
                   else None if principal.operator else "not an operator")
        if refused:
            log_event(_log, "web.action.refused", level=logging.WARNING, user=principal.name,
                      path=request.url.path, reason=refused)
        if not csrf_ok(request.session, form.get("csrf")):
            return web(request).render(
                request, "error.html.j2", principal, status=403,
                title="Refused", message="The form's security token is missing or stale; "
                "reload the page and try again.",
            )
        if not principal.operator:
            return web(request).render(
                request, "error.html.j2", principal, status=403,
                title="Not allowed", message="Only operators may do this.",
            )
        return await handler(request, principal, form)

    checked.__name__ = handler.__name__
    return page(checked)
