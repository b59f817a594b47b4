"""Mail backends: the file outbox and SMTP, behind one ``MailBackend`` seam.

``SmtpMailer`` opens one connection per message (a dropped connection costs one recipient one
attempt, nothing more) and maps every outcome onto the error tree:

- 4xx replies, dropped connections, timeouts      -> MailTransientError (retried)
- 5xx replies, a message over SIZE or the cap     -> MailPermanentError (never retried)
- an unverifiable certificate, AUTH over plaintext -> MailSecurityError; with credentials set
  we stop BEFORE sending AUTH;
- no STARTTLS with security = "starttls", no AUTH with a username -> MailConfigError: a
  configuration mismatch that stops the whole send (exit 2) naming the key to change.

The password is read from the environment variable named in the config, kept in a private
attribute, and never appears in a repr, an error message or the ledger.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from reports.addresses import parse_address
from reports.atomic import write_atomic
from reports.config import EmailConfig
from reports.errors import (
    ConfigError,
    MailConfigError,
    MailError,
    MailPermanentError,
    MailSecurityError,
    MailTransientError,
)


@dataclass(frozen=True)
class Receipt:
    """What the backend said when it accepted a message."""

    reply: str
    by_server: bool = True
    """False for the file outbox: ``reply`` says where the message was written."""

    def said(self) -> str:
        """For a person: what the mail server replied, or where the message was written."""
        return f"server replied {self.reply}" if self.by_server else self.reply


class MailBackend(Protocol):
    """Sends one message to one recipient, or raises a MailError leaf."""

    def send(self, message: EmailMessage, recipient: str) -> Receipt: ...


def _safe_part(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", value)[:150] or "_"


class FileOutbox:
    """Writes each message to ``<outbox>/<period>_<report>_<recipient>.eml`` (atomically);
    a provisional one to ``<period>_<report>_provisional_<recipient>.eml``."""

    def __init__(self, outbox_dir: str | os.PathLike[str]) -> None:
        self.outbox_dir = Path(outbox_dir)

    def __repr__(self) -> str:
        return f"FileOutbox({str(self.outbox_dir)!r})"

    def path_for(self, message: EmailMessage, recipient: str) -> Path:
        """The file a message goes to."""
        report, period = message.get("X-IBL-Report"), message.get("X-IBL-Period")
        if report and period:
            edition = message.get("X-IBL-Edition")
            stem = f"{period}_{report}" + (f"_{edition}" if edition else "")
        else:
            token = hashlib.sha256(str(message.get("Message-ID", "")).encode()).hexdigest()[:12]
            stem = f"message_{token}"
        return self.outbox_dir / f"{_safe_part(stem)}_{_safe_part(recipient)}.eml"

    def send(self, message: EmailMessage, recipient: str) -> Receipt:
        """Write the message; the receipt names the file."""
        path = self.path_for(message, recipient)
        try:
            write_atomic(path, message.as_bytes())
        except OSError as exc:
            # A full disk or an unwritable folder may heal by the next run.
            raise MailTransientError(f"cannot write {path}: {exc.strerror or exc}",
                                     recipient=recipient) from exc
        return Receipt(reply=f"written to {path}", by_server=False)


class SmtpMailer:
    """Sends through an SMTP server with smtplib (one connection per message)."""

    def __init__(self, config: EmailConfig, env: Mapping[str, str]) -> None:
        self.host = config.smtp_host
        self.port = config.smtp_port
        self.security = config.security
        self.username = config.username
        self.timeout_s = config.timeout_s
        self.max_message_bytes = config.max_message_bytes
        self.ca_file = config.ca_file
        self.sender = parse_address(config.from_, what="email.from address").addr_spec
        self._password: str | None = None
        if self.username:
            password = env.get(config.password_env, "")
            if not password:
                raise ConfigError(
                    f"email.username is set but the environment variable {config.password_env} "
                    "(email.password_env) is empty", key="email.password_env",
                )
            self._password = password
            if self.security == "none":
                raise ConfigError(
                    'email.username is set with security = "none": credentials are never sent '
                    'over plaintext; use "starttls" or "ssl"', key="email.security",
                )
        self._context = self._tls_context() if self.security != "none" else None

    def __repr__(self) -> str:
        user = f", username={self.username!r}" if self.username else ""
        return f"SmtpMailer({self.host!r}, {self.port}, security={self.security!r}{user})"

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the CA file {self.ca_file}: {exc}",
                              key="email.ca_file") from exc

    def _redact(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def send(self, message: EmailMessage, recipient: str) -> Receipt:
        """Deliver ``message`` to ``recipient`` (the envelope recipient) or raise."""
        data = message.as_bytes()
        try:
            return self._send(data, recipient)
        except MailError:
            raise
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, self._reply(exc.smtp_code, exc.smtp_error),
                           recipient) from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError) as exc:
            raise MailTransientError(
                f"the TLS connection to {self.host}:{self.port} was closed "
                f"({exc.__class__.__name__})", recipient=recipient,
            ) from None
        except ssl.SSLError as exc:
            raise MailSecurityError(
                f"TLS with {self.host}:{self.port} failed ({exc.__class__.__name__}: "
                f"{getattr(exc, 'verify_message', None) or exc.reason}); the certificate is not "
                "trusted or TLS is broken (set email.ca_file for a private CA)",
                recipient=recipient,
            ) from None
        except (smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPException) as exc:
            raise MailTransientError(
                f"the connection to {self.host}:{self.port} failed "
                f"({exc.__class__.__name__}: {self._redact(str(exc)) or 'no detail'})",
                recipient=recipient,
            ) from None

    def _reply(self, code: int, text: bytes | str) -> str:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return self._redact(f"{code} {' '.join(text.split())}")

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                    context=self._context)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)

    def _send(self, data: bytes, recipient: str) -> Receipt:
        smtp = self._connect()
        try:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailConfigError(
                        f'{self.host}:{self.port} does not offer STARTTLS, which security = '
                        '"starttls" needs; nothing is sent in plaintext. Set email.security = '
                        '"ssl" if the server speaks TLS from the start (usually port 465), or '
                        "point email.smtp_host/smtp_port at a server that offers STARTTLS",
                        key="email.security",
                    )
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if self.username and self._password is not None:
                if not smtp.has_extn("auth"):
                    raise MailConfigError(
                        f"{self.host}:{self.port} does not offer AUTH, so it cannot log in as "
                        f"{self.username!r}; remove email.username if this server needs no "
                        "login, or point email.smtp_host/smtp_port at the right server",
                        key="email.username",
                    )
                try:
                    smtp.login(self.username, self._password)
                except smtplib.SMTPAuthenticationError as exc:
                    refusal = self._reply(exc.smtp_code, exc.smtp_error)
                    raise _by_code(
                        exc.smtp_code, f"{self.host}:{self.port} refused the login of "
                        f"{self.username!r}: "
                        f"{refusal}", recipient,
                    ) from None
            limit = self.max_message_bytes
            size_text = smtp.esmtp_features.get("size", "").strip()
            server_size = int(size_text) if size_text.isdigit() else 0
            if server_size > 0:
                limit = min(limit, server_size)
            if len(data) > limit:
                raise MailPermanentError(
                    f"the message is {len(data):,} bytes, over the limit of {limit:,} bytes "
                    "(server SIZE or email.max_message_bytes); it was not sent",
                    recipient=recipient,
                )
            options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
            code, reply = smtp.mail(self.sender, options)
            if code != 250:
                raise _by_code(code, f"MAIL FROM refused: {self._reply(code, reply)}", recipient)
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise _by_code(code, f"recipient refused: {self._reply(code, reply)}", recipient)
            code, reply = smtp.data(data)
            if code != 250:
                raise _by_code(code, f"message refused: {self._reply(code, reply)}", recipient)
            return Receipt(reply=self._reply(code, reply))
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()


def _by_code(code: int, text: str, recipient: str) -> MailError:
    if 400 <= code < 500:
        return MailTransientError(text, recipient=recipient)
    return MailPermanentError(text, recipient=recipient)


def backend_from_config(config: EmailConfig, env: Mapping[str, str]) -> MailBackend:
    """The backend ``[email] backend`` names."""
    if config.backend == "smtp":
        return SmtpMailer(config, env)
    return FileOutbox(config.outbox_dir)
