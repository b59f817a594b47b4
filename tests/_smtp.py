"""Real SMTP servers on loopback for tests (aiosmtpd), with scripted replies and trustme TLS.

``smtp_server(...)`` starts a server on a free port and yields an ``SmtpServer`` whose
``handler`` records every accepted message and can be told to answer differently:

- ``handler.rcpt_replies[address] = ["451 4.3.0 try later"]``: the next RCPT TO for that
  address gets these replies in turn, then the normal 250;
- ``handler.data_replies = ["451 ..."]``: the next DATA commands get these replies;
- ``handler.drop_after_data = 1``: after receiving the next message, close the connection
  without answering (the RFC 1047 window: the client cannot know whether it was accepted).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from reports.config import EmailConfig

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """The aiosmtpd handler: records messages and plays scripted replies."""

    messages: list[Received] = field(default_factory=list)
    dropped: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)
    drop_after_data: int = 0
    commands: list[str] = field(default_factory=list)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.commands.append("EHLO")
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        script = self.rcpt_replies.get(address)
        if script:
            reply = script.pop(0)
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(
            mail_from=envelope.mail_from, rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content), tls=session.ssl is not None,
            login=session.auth_data if session.authenticated else None,
        )
        if self.drop_after_data > 0:
            self.drop_after_data -= 1
            self.dropped.append(received)
            server.transport.close()
            return "250 never seen by the client"
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.messages.append(received)
        return "250 2.0.0 Ok: queued as TEST123"


class _Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.attempts: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.attempts.append(login)
        ok = self.users.get(login) == password
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class _FreePortController(Controller):
    """A Controller that binds port 0 and learns the port the OS chose."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class TlsFiles:
    """A trustme CA, its PEM file, and a server context with a certificate for 127.0.0.1."""

    ca: trustme.CA
    ca_file: Path
    server_context: ssl.SSLContext


def make_tls(folder: Path) -> TlsFiles:
    """A fresh private CA and a server certificate for localhost / 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(ca=ca, ca_file=ca_file, server_context=context)


@dataclass
class SmtpServer:
    """A running server and what it received."""

    host: str
    port: int
    handler: Recorder
    authenticator: _Authenticator | None

    def config(self, **overrides: Any) -> EmailConfig:
        """An [email] table pointing at this server."""
        return email_config(self.port, **overrides)


def email_config(port: int, **overrides: Any) -> EmailConfig:
    """An [email] table for an SMTP server on 127.0.0.1:port (plaintext unless overridden)."""
    values: dict[str, Any] = {
        "backend": "smtp", "smtp_host": HOST, "smtp_port": port, "security": "none",
        "from": "ibl.ai reports <reports@example.org>", "timeout_s": 5.0,
    }
    values.update(overrides)
    return EmailConfig.model_validate(values)


@contextmanager
def smtp_server(
    *, starttls: TlsFiles | None = None, implicit_tls: TlsFiles | None = None,
    require_starttls: bool = False, users: dict[str, str] | None = None,
    size_limit: int | None = None,
) -> Iterator[SmtpServer]:
    """Run an aiosmtpd server on a free loopback port for the duration of the block."""
    handler = Recorder()
    authenticator = _Authenticator(users) if users is not None else None
    kwargs: dict[str, Any] = {}
    if starttls is not None:
        kwargs.update(tls_context=starttls.server_context, require_starttls=require_starttls)
    if implicit_tls is not None:
        kwargs["ssl_context"] = implicit_tls.server_context
    if authenticator is not None:
        kwargs.update(authenticator=authenticator, auth_require_tls=True)
    if size_limit is not None:
        kwargs["data_size_limit"] = size_limit
    controller = _FreePortController(handler, hostname=HOST, port=0, **kwargs)
    controller.start()
    try:
        yield SmtpServer(host=HOST, port=controller.port, handler=handler,
                         authenticator=authenticator)
    finally:
        controller.stop()
