"""The per-recipient delivery loop over any ``MailBackend`` (see ``backends``), and alerts.

One message per recipient, recorded in the ledger before and after each send; transient
failures are retried within the run with a doubling backoff, permanent ones are not.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from reports.addresses import check_header_text, parse_address
from reports.delivery.backends import MailBackend
from reports.errors import (
    MailAddressError,
    MailConfigError,
    MailError,
    MailPermanentError,
    MailTransientError,
)
from reports.report.periods import Period
from reports.state.ledger import Ledger

MAX_BACKOFF_S = 300.0


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
            # CRLF line ends, as SMTP wants them (bare LFs made one over-long line).
            message = EmailMessage(policy=policy.SMTP)
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

