"""Mail backends (file outbox, SMTP) and the per-recipient delivery loop.

The backend is the seam: ``deliver`` talks to any ``MailBackend``. ``SmtpMailer`` opens one
connection per message (a dropped connection costs one recipient one attempt, nothing more) and
maps every outcome onto the error tree:

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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from reports.addresses import check_header_text, parse_address
from reports.atomic import write_atomic
from reports.config import EmailConfig
from reports.errors import (
    ConfigError,
    MailAddressError,
    MailConfigError,
    MailError,
    MailPermanentError,
    MailSecurityError,
    MailTransientError,
)
from reports.report.periods import Period
from reports.state.ledger import Ledger

MAX_BACKOFF_S = 300.0


@dataclass(frozen=True)
class Receipt:
    """What the backend said when it accepted a message."""

    reply: str


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
        return Receipt(reply=f"written to {path}")


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


@dataclass(frozen=True)
class DeliveryFailure:
    """One recipient that did not get the message, and why."""

    recipient: str
    permanent: bool
    reason: str

    def line(self) -> str:
        """One line for the CLI and alerts."""
        kind = "permanent" if self.permanent else "transient, retried on the next send"
        return f"{self.recipient}: {kind}: {self.reason}"


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did."""

    sent: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[DeliveryFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """Nobody failed."""
        return not self.failed

    def lines(self) -> list[str]:
        """One line per failed recipient."""
        return [failure.line() for failure in self.failed]


def _pdf_sha256(message: EmailMessage) -> str | None:
    for part in message.iter_attachments():
        if part.get_content_type() == "application/pdf":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return hashlib.sha256(payload).hexdigest()
    return None


def deliver(
    ledger: Ledger, backend: MailBackend, report: str, period: Period,
    messages: Mapping[str, EmailMessage], *, max_attempts: int = 3, backoff_s: float = 5.0,
    force: bool = False, run_id: int | None = None,
    sleep: Callable[[float], None] = time.sleep, edition: str | None = None,
) -> DeliveryReport:
    """Send each due message once, recording every step in the ledger.

    ``edition`` is ``provisional`` for a copy sent despite the freshness gate (None: the final
    report, which also goes to whoever got a provisional copy).

    Who is due comes from ``ledger.plan_deliveries``: already sent or permanently failed
    recipients are skipped unless ``force``. A 4xx is retried up to ``max_attempts`` times with
    a doubling backoff (capped); after that the delivery is failed-transient and the next send
    tries again. A 5xx fails the delivery permanently at once. One recipient's failure never
    stops the others.
    """
    ids = {recipient: str(msg.get("Message-ID", "")) for recipient, msg in messages.items()}
    due = ledger.plan_deliveries(report, period, list(messages), ids, force=force,
                                 run_id=run_id, edition=edition)
    skipped = tuple(r for r in messages if r not in due)
    sent: list[str] = []
    failed: list[DeliveryFailure] = []
    for recipient in due:
        record = ledger.delivery(report, period, recipient)
        message = messages[recipient]
        if record is not None and record.message_id and record.message_id != ids[recipient]:
            # Resending after a crash: keep the Message-ID the first attempt used.
            del message["Message-ID"]
            message["Message-ID"] = record.message_id
        failure = _deliver_one(ledger, backend, report, period, recipient, message,
                               max_attempts=max_attempts, backoff_s=backoff_s, sleep=sleep,
                               run_id=run_id)
        if failure is None:
            sent.append(recipient)
        else:
            failed.append(failure)
    return DeliveryReport(sent=tuple(sent), skipped=skipped, failed=tuple(failed))


def _deliver_one(
    ledger: Ledger, backend: MailBackend, report: str, period: Period, recipient: str,
    message: EmailMessage, *, max_attempts: int, backoff_s: float,
    sleep: Callable[[float], None], run_id: int | None = None,
) -> DeliveryFailure | None:
    pdf_hash = _pdf_sha256(message)
    attempt = 0
    while True:
        attempt += 1
        ledger.mark_sending(report, period, recipient, pdf_sha256=pdf_hash, run_id=run_id)
        try:
            receipt = backend.send(message, recipient)
        except (MailPermanentError, MailAddressError) as exc:
            ledger.mark_failed(report, period, recipient, transient=False, reply=exc.message)
            return DeliveryFailure(recipient, permanent=True, reason=_reason(exc))
        except MailTransientError as exc:
            ledger.mark_failed(report, period, recipient, transient=True, reply=exc.message)
            if attempt >= max_attempts:
                return DeliveryFailure(recipient, permanent=False,
                                       reason=f"{_reason(exc)} (after {attempt} attempts)")
            sleep(min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            continue
        except MailConfigError as exc:
            # The same for every recipient: stop the send (exit 2). Not the recipient's fault,
            # so the row stays retryable for the send after the config is fixed.
            ledger.mark_failed(report, period, recipient, transient=True, reply=exc.message)
            raise
        except MailError as exc:
            # Security and other setup problems: no point retrying now; retried next send.
            ledger.mark_failed(report, period, recipient, transient=True, reply=exc.message)
            return DeliveryFailure(recipient, permanent=False, reason=_reason(exc))
        except BaseException as exc:
            # A bug or an interrupt: do not leave the row in "sending" when we know it failed.
            ledger.mark_failed(report, period, recipient, transient=True,
                               reply=f"interrupted: {exc.__class__.__name__}")
            raise
        ledger.mark_sent(report, period, recipient, receipt.reply)
        return None


def _reason(exc: MailError) -> str:
    prefix = f"{exc.recipient}: "
    return exc.message[len(prefix):] if exc.message.startswith(prefix) else exc.message


def send_alert(
    backend: MailBackend, sender: str, recipients: Sequence[str], subject: str, text: str, *,
    now: datetime | None = None,
) -> DeliveryReport:
    """A plain-text alert to each recipient (no ledger, no retries); never raises per recipient."""
    from_addr = parse_address(sender, what="sender address")
    check_header_text(subject, what="subject")
    sent: list[str] = []
    failed: list[DeliveryFailure] = []
    for recipient in recipients:
        try:
            message = EmailMessage()
            message["From"] = from_addr
            message["To"] = parse_address(recipient, what="alert recipient")
            message["Subject"] = subject
            message["Date"] = format_datetime(now or datetime.now(UTC))
            message["Message-ID"] = make_msgid("ibl-reports-alert", domain=from_addr.domain)
            message["Auto-Submitted"] = "auto-generated"
            message.set_content(text)
            backend.send(message, recipient)
        except MailError as exc:
            permanent = isinstance(exc, MailPermanentError | MailAddressError)
            failed.append(DeliveryFailure(recipient, permanent, _reason(exc)))
        else:
            sent.append(recipient)
    return DeliveryReport(sent=tuple(sent), failed=tuple(failed))

