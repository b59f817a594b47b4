"""Deliveries: one period's report to one recipient, planned once and sent exactly once.

A delivery is keyed by (report, period, recipient) and moves through ``DeliveryState``
(pending -> sending -> sent | failed-transient | failed-permanent), counting its attempts and
keeping the server's last reply. A delivery found in ``sending`` after a crash is sent again
with the same Message-ID: the server may or may not have accepted it before the crash (the
RFC 1047 window), and the same Message-ID lets mail clients fold a possible duplicate.

A delivery has an edition: ``provisional`` (sent despite the freshness gate, with its own
Message-ID) or final (None). Planning the final report makes a provisional one due again, as a
final with the final Message-ID; ``provisional_sent_at`` keeps when the provisional copy went out,
so the final can say that it replaces it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from reports.errors import StateError
from reports.logs import log_event
from reports.report.periods import Period
from reports.state.engine import LedgerStore
from reports.state.schema import deliveries

# The name the ledger always logged under, kept for whoever filters on it.
_log = logging.getLogger("reports.state.ledger")


class DeliveryState(enum.StrEnum):
    """Where the delivery of one period's report to one recipient is."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED_TRANSIENT = "failed-transient"
    FAILED_PERMANENT = "failed-permanent"


# States from which a send may (re)start; "sending" is there for the crash window.
SENDABLE_STATES = frozenset(
    {DeliveryState.PENDING, DeliveryState.FAILED_TRANSIENT, DeliveryState.SENDING}
)
FINAL_STATES = frozenset({DeliveryState.SENT, DeliveryState.FAILED_PERMANENT})


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of ``deliveries``: one period's report for one recipient."""

    report: str
    period_start: date
    period_end: date
    recipient: str
    state: DeliveryState
    attempts: int
    smtp_reply: str | None
    message_id: str
    pdf_sha256: str | None
    run_id: int | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    edition: str | None = None
    """None: the final report; ``provisional``: a copy sent despite the freshness gate."""
    provisional_sent_at: datetime | None = None


class DeliveryLedger(LedgerStore):
    """Deliveries: who is due for a period, and each attempt's state and server reply."""

    def plan_deliveries(
        self, report: str, period: Period, recipients: Iterable[str],
        message_ids: Mapping[str, str], *, force: bool, run_id: int | None = None,
        edition: str | None = None,
    ) -> list[str]:
        """Who must be sent to now, in the order given.

        New recipients become pending with their Message-ID. Pending, failed-transient and
        sending (a crash mid-send) are due again and keep the Message-ID they were first given.
        Sent and failed-permanent are skipped unless ``force``, which makes them pending again
        with the Message-ID passed now. A delivery of the other ``edition`` that is not due is
        skipped when planning a provisional copy, and due again when planning the final report
        (the final replaces the provisional copy).
        """
        now = self._now()
        due: list[str] = []
        try:
            with self._begin() as conn:
                for recipient in dict.fromkeys(recipients):
                    if recipient not in message_ids:
                        raise StateError(f"no Message-ID was given for {recipient}")
                    created = conn.execute(_insert_new(conn).values(
                        report=report, period_start=period.start, period_end=period.end,
                        recipient=recipient, state=DeliveryState.PENDING.value, attempts=0,
                        message_id=message_ids[recipient], created_at=now, updated_at=now,
                        run_id=run_id, edition=edition,
                    ))
                    if created.rowcount == 1:
                        due.append(recipient)
                        continue
                    row = conn.execute(
                        sa.select(deliveries).where(*_delivery_key(report, period, recipient))
                    ).mappings().one()
                    state = DeliveryState(row["state"])
                    values: dict[str, Any] = {"updated_at": now}
                    if run_id is not None:
                        values["run_id"] = run_id
                    other = row["edition"] != edition
                    if state in SENDABLE_STATES:
                        if other:  # a copy of the other edition never went out: send this one
                            values.update(edition=edition, message_id=message_ids[recipient])
                        due.append(recipient)
                    elif other and edition is None:  # the final replaces a provisional copy
                        values.update(state=DeliveryState.PENDING.value, attempts=0,
                                      message_id=message_ids[recipient], sent_at=None,
                                      edition=None)
                        due.append(recipient)
                    elif other:
                        continue  # the final (or a failure) is there: no provisional copy
                    elif force:
                        values.update(state=DeliveryState.PENDING.value, attempts=0,
                                      message_id=message_ids[recipient], sent_at=None)
                        due.append(recipient)
                    else:
                        continue
                    conn.execute(deliveries.update().where(deliveries.c.id == row["id"])
                                 .values(**values))
        except SQLAlchemyError as exc:
            raise self._fail("planning deliveries", exc) from exc
        return due

    def provisional_recipients(self, report: str, period: Period) -> dict[str, datetime]:
        """Who got a provisional copy of this period's report, and when."""
        return {
            d.recipient: d.provisional_sent_at for d in self.deliveries(report, period=period)
            if d.provisional_sent_at is not None
        }

    def delivery(self, report: str, period: Period, recipient: str) -> DeliveryRecord | None:
        """The delivery of ``report`` for ``period`` to ``recipient``."""
        rows = self._select(sa.select(deliveries).where(*_delivery_key(report, period, recipient)))
        return _delivery(rows[0]) if rows else None

    def deliveries(
        self, report: str | None = None, *, period: Period | None = None,
        run_id: int | None = None, state: DeliveryState | str | None = None,
    ) -> list[DeliveryRecord]:
        """Deliveries, filtered, in a stable order (period, then recipient)."""
        query = sa.select(deliveries).order_by(
            deliveries.c.period_start, deliveries.c.report, deliveries.c.recipient
        )
        if report is not None:
            query = query.where(deliveries.c.report == report)
        if period is not None:
            query = query.where(deliveries.c.period_start == period.start,
                                deliveries.c.period_end == period.end)
        if run_id is not None:
            query = query.where(deliveries.c.run_id == run_id)
        if state is not None:
            query = query.where(deliveries.c.state == DeliveryState(state).value)
        return [_delivery(row) for row in self._select(query)]

    def mark_sending(
        self, report: str, period: Period, recipient: str, *, pdf_sha256: str | None = None,
        run_id: int | None = None,
    ) -> DeliveryRecord:
        """About to hand the message to the backend: counts one attempt.

        With ``run_id``, fenced: in the same transaction the run must still be delivering and
        owned by this attempt (a run taken over after its lease ran out sends nothing more).
        The transaction commits before the message goes out: no lock is held during SMTP.
        """
        return self._move(report, period, recipient, DeliveryState.SENDING,
                          allowed_from=SENDABLE_STATES, attempt=True, pdf_sha256=pdf_sha256,
                          fence_run=run_id)

    def mark_sent(self, report: str, period: Period, recipient: str, reply: str) -> DeliveryRecord:
        """The server accepted the message (``reply`` is its answer)."""
        return self._move(report, period, recipient, DeliveryState.SENT,
                          allowed_from={DeliveryState.SENDING}, reply=reply)

    def mark_failed(
        self, report: str, period: Period, recipient: str, *, transient: bool, reply: str,
    ) -> DeliveryRecord:
        """The send failed: transient failures are retried by the next send, permanent ones not."""
        target = DeliveryState.FAILED_TRANSIENT if transient else DeliveryState.FAILED_PERMANENT
        return self._move(report, period, recipient, target,
                          allowed_from={DeliveryState.SENDING}, reply=reply)

    def _move(
        self, report: str, period: Period, recipient: str, target: DeliveryState, *,
        allowed_from: Iterable[DeliveryState], attempt: bool = False, reply: str | None = None,
        pdf_sha256: str | None = None, fence_run: int | None = None,
    ) -> DeliveryRecord:
        now = self._now()
        allowed = {s.value for s in allowed_from}
        where = f"{report} {period.key} -> {recipient}"
        try:
            with self._begin() as conn:
                if fence_run is not None:
                    self._fence(conn, fence_run, "delivering", f"delivery {where}")
                row = conn.execute(
                    sa.select(deliveries).where(*_delivery_key(report, period, recipient))
                ).mappings().first()
                if row is None:
                    raise StateError(f"delivery {where} was never planned")
                if row["state"] not in allowed:
                    raise StateError(
                        f"delivery {where} cannot go from {row['state']} to {target.value}"
                    )
                values: dict[str, Any] = {"state": target.value, "updated_at": now}
                if attempt:
                    values["attempts"] = row["attempts"] + 1
                if reply is not None:
                    values["smtp_reply"] = reply[:2000]
                if pdf_sha256 is not None:
                    values["pdf_sha256"] = pdf_sha256
                if target is DeliveryState.SENT:
                    values["sent_at"] = now
                    if row["edition"] is not None:
                        values["provisional_sent_at"] = now
                result = conn.execute(
                    deliveries.update()
                    .where(deliveries.c.id == row["id"], deliveries.c.state == row["state"])
                    .values(**values)
                )
                if result.rowcount != 1:
                    raise StateError(f"delivery {where} changed state concurrently")
                updated = _delivery(conn.execute(
                    sa.select(deliveries).where(deliveries.c.id == row["id"])
                ).mappings().one())
        except SQLAlchemyError as exc:
            raise self._fail(f"updating delivery {where}", exc) from exc
        failed = target in (DeliveryState.FAILED_TRANSIENT, DeliveryState.FAILED_PERMANENT)
        log_event(
            _log, "delivery.transition", level=logging.WARNING if failed else logging.INFO,
            report=report, period=period.key, recipient=recipient,
            **{"from": str(row["state"]), "to": target.value}, attempts=updated.attempts,
            reply=reply, message_id=updated.message_id,
        )
        return updated

    def period_done(self, report: str, period: Period, recipients: Iterable[str],
                    *, edition: str | None = None) -> bool:
        """Whether every recipient was sent to or failed permanently for this period.

        Only deliveries of ``edition`` count (by default the final report: a provisional copy
        does not complete a period).
        """
        wanted = set(recipients)
        final = {
            d.recipient for d in self.deliveries(report, period=period)
            if d.state in FINAL_STATES and d.edition == edition
        }
        return wanted <= final

    def periods_done(
        self, wanted: Iterable[tuple[str, Period, Iterable[str]]], *, edition: str | None = None,
    ) -> set[tuple[str, Period]]:
        """``period_done`` for many (report, period, recipients) at once, in one query.

        Reads the finished deliveries of the few distinct periods asked about (a weekly and a
        monthly one for a whole catalogue), not one query per report: planning ``send --all``
        over 10,000 reports is one round trip.
        """
        want = {(report, period): set(recipients) for report, period, recipients in wanted}
        periods = {period for _report, period in want}
        if not periods:
            return set()
        same_edition = (deliveries.c.edition.is_(None) if edition is None
                        else deliveries.c.edition == edition)
        query = sa.select(deliveries.c.report, deliveries.c.period_start,
                          deliveries.c.period_end, deliveries.c.recipient).where(
            deliveries.c.state.in_([state.value for state in FINAL_STATES]), same_edition,
            sa.or_(*(sa.and_(deliveries.c.period_start == p.start,
                             deliveries.c.period_end == p.end) for p in periods)),
        )
        got: dict[tuple[str, Any, Any], set[str]] = {}
        for row in self._select(query):
            key = (row["report"], row["period_start"], row["period_end"])
            got.setdefault(key, set()).add(row["recipient"])
        return {(report, period) for (report, period), recipients in want.items()
                if recipients <= got.get((report, period.start, period.end), set())}

    def requeue_deliveries(
        self, report: str, period: Period, recipients: Iterable[str],
    ) -> list[str]:
        """Make sent or failed deliveries pending again (same Message-ID); returns who moved.

        The next ``send`` of the period then delivers to them (an operator's retry or resend).
        Pending and sending deliveries are due already and are left as they are.
        """
        now = self._now()
        movable = {DeliveryState.SENT.value, DeliveryState.FAILED_TRANSIENT.value,
                   DeliveryState.FAILED_PERMANENT.value}
        moved: list[tuple[str, str]] = []
        try:
            with self._begin() as conn:
                for recipient in dict.fromkeys(recipients):
                    key = _delivery_key(report, period, recipient)
                    row = conn.execute(sa.select(deliveries).where(*key)).mappings().first()
                    if row is None or row["state"] not in movable:
                        continue
                    conn.execute(deliveries.update().where(
                        deliveries.c.id == row["id"], deliveries.c.state == row["state"],
                    ).values(state=DeliveryState.PENDING.value, attempts=0, sent_at=None,
                             updated_at=now))
                    moved.append((recipient, row["state"]))
        except SQLAlchemyError as exc:
            raise self._fail(f"requeueing deliveries of {report} {period.key}", exc) from exc
        for recipient, was in moved:
            moved_fields: dict[str, Any] = {"from": was, "to": DeliveryState.PENDING.value}
            log_event(_log, "delivery.transition", report=report, period=period.key,
                      recipient=recipient, **moved_fields, detail="requeued")
        return [recipient for recipient, _ in moved]


def _insert_new(conn: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` on the delivery key: two planners never collide."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(deliveries).on_conflict_do_nothing(constraint="ux_deliveries_key")
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(deliveries).on_conflict_do_nothing(
        index_elements=["report", "period_start", "period_end", "recipient"]
    )


def _delivery_key(report: str, period: Period, recipient: str) -> Sequence[Any]:
    return (deliveries.c.report == report, deliveries.c.period_start == period.start,
            deliveries.c.period_end == period.end, deliveries.c.recipient == recipient)


def _delivery(row: sa.RowMapping) -> DeliveryRecord:
    return DeliveryRecord(
        report=row["report"], period_start=row["period_start"], period_end=row["period_end"],
        recipient=row["recipient"], state=DeliveryState(row["state"]),
        attempts=row["attempts"], smtp_reply=row["smtp_reply"], message_id=row["message_id"],
        pdf_sha256=row["pdf_sha256"], run_id=row["run_id"], created_at=row["created_at"],
        updated_at=row["updated_at"], sent_at=row["sent_at"], edition=row["edition"],
        provisional_sent_at=row["provisional_sent_at"],
    )
