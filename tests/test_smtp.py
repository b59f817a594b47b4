"""SMTP delivery against real aiosmtpd servers on loopback (plain, STARTTLS, implicit TLS)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from reports.delivery.backends import SmtpMailer, backend_from_config
from reports.delivery.mail import build_message, make_message_id
from reports.delivery.mailer import deliver
from reports.errors import (
    ConfigError,
    MailPermanentError,
    MailSecurityError,
    MailTransientError,
)
from reports.report.periods import Period, PeriodKind
from reports.state.deliveries import DeliveryState
from reports.state.ledger import Ledger
from tests._smtp import SmtpServer, TlsFiles, email_config, make_tls, smtp_server

WEEK = Period(date(2026, 11, 9), date(2026, 11, 15), PeriodKind.WEEKLY)
RECIPIENTS = ["dean@acme.example", "programs@acme.example", "ops@acme.example"]
PASSWORD = "s3cret-Pa55word"
ENV = {"IBL_SMTP_PASSWORD": PASSWORD}


def message_for(recipient: str, pdf: bytes = b"%PDF-1.7 small\n%%EOF\n") -> EmailMessage:
    return build_message(
        sender="ibl.ai reports <reports@example.org>", recipient=recipient,
        subject="Weekly report, Acme University, 9-15 Nov 2026", text_body="KPIs\n",
        html_body="<p>KPIs</p>", pdf=pdf, pdf_name="report.pdf",
        message_id=make_message_id("acme-weekly", WEEK.key, recipient, "example.org"),
        date=datetime(2026, 11, 16, 7, tzinfo=UTC), report="acme-weekly", period_key=WEEK.key,
    )


class Sleeps:
    """Records the backoff instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("other-tls"))


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'state.db'}")


def test_each_recipient_gets_one_message_addressed_only_to_them(
    server: SmtpServer, ledger: Ledger
) -> None:
    mailer = SmtpMailer(server.config(), {})
    messages = {r: message_for(r) for r in RECIPIENTS}
    report = deliver(ledger, mailer, "acme-weekly", WEEK, messages)
    assert report.ok and report.sent == tuple(RECIPIENTS)
    received = server.handler.messages
    assert [m.rcpt_tos for m in received] == [(r,) for r in RECIPIENTS]
    for got, recipient in zip(received, RECIPIENTS, strict=True):
        assert got.mail_from == "reports@example.org"
        assert got.message["To"] == recipient
        assert got.message["Message-ID"] == messages[recipient]["Message-ID"]
    for record in ledger.deliveries("acme-weekly", period=WEEK):
        assert record.state is DeliveryState.SENT
        assert record.smtp_reply == "250 2.0.0 Ok: queued as TEST123"
        assert record.message_id == messages[record.recipient]["Message-ID"]
        assert record.pdf_sha256 is not None and len(record.pdf_sha256) == 64


def test_a_second_delivery_sends_nothing_and_force_sends_again(
    server: SmtpServer, ledger: Ledger
) -> None:
    mailer = SmtpMailer(server.config(), {})
    messages = {r: message_for(r) for r in RECIPIENTS}
    deliver(ledger, mailer, "acme-weekly", WEEK, messages)
    again = deliver(ledger, mailer, "acme-weekly", WEEK, messages)
    assert again.sent == () and again.skipped == tuple(RECIPIENTS)
    assert len(server.handler.messages) == 3
    forced = deliver(ledger, mailer, "acme-weekly", WEEK, {RECIPIENTS[0]: messages[RECIPIENTS[0]]},
                     force=True)
    assert forced.sent == (RECIPIENTS[0],)
    assert len(server.handler.messages) == 4


def test_a_451_is_retried_with_backoff_and_delivered_once(
    server: SmtpServer, ledger: Ledger
) -> None:
    server.handler.rcpt_replies["dean@acme.example"] = ["451 4.3.0 try again later"] * 2
    sleeps = Sleeps()
    report = deliver(ledger, SmtpMailer(server.config(), {}), "acme-weekly", WEEK,
                     {"dean@acme.example": message_for("dean@acme.example")},
                     max_attempts=3, backoff_s=2.0, sleep=sleeps)
    assert report.sent == ("dean@acme.example",)
    assert sleeps.calls == [2.0, 4.0]
    assert len(server.handler.messages) == 1
    record = ledger.delivery("acme-weekly", WEEK, "dean@acme.example")
    assert record is not None and (record.state, record.attempts) == (DeliveryState.SENT, 3)


def test_a_dropped_connection_after_data_is_resent_with_the_same_message_id(
    server: SmtpServer, ledger: Ledger
) -> None:
    server.handler.drop_after_data = 1
    message = message_for("dean@acme.example")
    report = deliver(ledger, SmtpMailer(server.config(), {}), "acme-weekly", WEEK,
                     {"dean@acme.example": message}, max_attempts=2, sleep=Sleeps())
    assert report.ok
    [dropped] = server.handler.dropped
    [accepted] = server.handler.messages
    assert dropped.message["Message-ID"] == accepted.message["Message-ID"] == message["Message-ID"]


def test_transient_failures_past_max_attempts_wait_for_the_next_send(
    server: SmtpServer, ledger: Ledger
) -> None:
    server.handler.rcpt_replies["dean@acme.example"] = ["421 4.7.0 busy"] * 2
    mailer = SmtpMailer(server.config(), {})
    messages = {"dean@acme.example": message_for("dean@acme.example")}
    first = deliver(ledger, mailer, "acme-weekly", WEEK, messages, max_attempts=2,
                    sleep=Sleeps())
    [failure] = first.failed
    assert not failure.permanent and "421 4.7.0 busy" in failure.reason
    assert "after 2 attempts" in first.lines()[0]
    record = ledger.delivery("acme-weekly", WEEK, "dean@acme.example")
    assert record is not None and record.state is DeliveryState.FAILED_TRANSIENT
    second = deliver(ledger, mailer, "acme-weekly", WEEK, messages, max_attempts=2,
                     sleep=Sleeps())
    assert second.sent == ("dean@acme.example",)
    assert len(server.handler.messages) == 1


def test_a_550_fails_one_recipient_permanently_and_the_others_still_get_theirs(
    server: SmtpServer, ledger: Ledger
) -> None:
    server.handler.rcpt_replies["programs@acme.example"] = ["550 5.1.1 no such mailbox"]
    mailer = SmtpMailer(server.config(), {})
    messages = {r: message_for(r) for r in RECIPIENTS}
    sleeps = Sleeps()
    report = deliver(ledger, mailer, "acme-weekly", WEEK, messages, sleep=sleeps)
    assert report.sent == ("dean@acme.example", "ops@acme.example")
    assert report.lines() == [
        "programs@acme.example: permanent: recipient refused: 550 5.1.1 no such mailbox"
    ]
    assert sleeps.calls == []  # never retried
    assert ledger.period_done("acme-weekly", WEEK, RECIPIENTS)
    # The next send does not try the refused address again.
    again = deliver(ledger, mailer, "acme-weekly", WEEK, messages)
    assert again.sent == () and len(server.handler.messages) == 2


def test_a_message_over_the_servers_size_is_not_sent(ledger: Ledger) -> None:
    big = message_for("dean@acme.example", pdf=b"%PDF" + b"x" * 60_000)
    with smtp_server(size_limit=50_000) as server:
        mailer = SmtpMailer(server.config(), {})
        with pytest.raises(MailPermanentError, match="over the limit of 50,000 bytes"):
            mailer.send(big, "dean@acme.example")
        report = deliver(ledger, mailer, "acme-weekly", WEEK, {"dean@acme.example": big})
        assert report.failed[0].permanent
        assert server.handler.messages == []


def test_a_message_over_the_configured_cap_is_not_sent(server: SmtpServer) -> None:
    mailer = SmtpMailer(server.config(max_message_bytes=20_000), {})
    with pytest.raises(MailPermanentError, match="over the limit of 20,000 bytes"):
        mailer.send(message_for("dean@acme.example", pdf=b"x" * 30_000), "dean@acme.example")
    assert server.handler.messages == []


def test_starttls_with_a_private_ca_and_credentials_delivers(tls: TlsFiles) -> None:
    with smtp_server(starttls=tls, users={"reports": PASSWORD}) as server:
        mailer = SmtpMailer(
            server.config(security="starttls", username="reports", ca_file=tls.ca_file), ENV
        )
        receipt = mailer.send(message_for("dean@acme.example"), "dean@acme.example")
        assert receipt.reply.startswith("250")
        [got] = server.handler.messages
        assert got.tls and got.login == "reports"


def test_implicit_tls_delivers(tls: TlsFiles) -> None:
    with smtp_server(implicit_tls=tls) as server:
        mailer = SmtpMailer(server.config(security="ssl", ca_file=tls.ca_file), {})
        mailer.send(message_for("dean@acme.example"), "dean@acme.example")
        assert len(server.handler.messages) == 1


def test_credentials_are_never_sent_without_starttls() -> None:
    with smtp_server(users={"reports": PASSWORD}) as plain:
        mailer = SmtpMailer(plain.config(security="starttls", username="reports"), ENV)
        with pytest.raises(MailSecurityError, match="does not offer STARTTLS"):
            mailer.send(message_for("dean@acme.example"), "dean@acme.example")
        assert plain.authenticator is not None and plain.authenticator.attempts == []
        assert plain.handler.messages == []


@pytest.mark.parametrize("ca", [pytest.param("none", id="system-store"),
                                pytest.param("other", id="other-ca")])
def test_an_untrusted_certificate_stops_before_auth(
    tls: TlsFiles, other_tls: TlsFiles, ca: str
) -> None:
    with smtp_server(starttls=tls, users={"reports": PASSWORD}) as server:
        ca_file = other_tls.ca_file if ca == "other" else None
        mailer = SmtpMailer(
            server.config(security="starttls", username="reports", ca_file=ca_file), ENV
        )
        with pytest.raises(MailSecurityError, match="certificate") as info:
            mailer.send(message_for("dean@acme.example"), "dean@acme.example")
        assert PASSWORD not in str(info.value)
        assert server.authenticator is not None and server.authenticator.attempts == []


def test_a_wrong_password_is_permanent_and_never_revealed(tls: TlsFiles, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ledger = Ledger(url)
    with smtp_server(starttls=tls, users={"reports": "the-right-one"}) as server:
        mailer = SmtpMailer(
            server.config(security="starttls", username="reports", ca_file=tls.ca_file), ENV
        )
        assert PASSWORD not in repr(mailer)
        report = deliver(ledger, mailer, "acme-weekly", WEEK,
                         {"dean@acme.example": message_for("dean@acme.example")})
        [failure] = report.failed
        assert failure.permanent and "535" in failure.reason
        assert PASSWORD not in failure.line()
    ledger.close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        for table in ("runs", "run_events", "deliveries", "archive_entries"):
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                assert PASSWORD not in " ".join(str(value) for value in row)
    engine.dispose()


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        mailer = SmtpMailer(email_config(sock.getsockname()[1]), {})
        with pytest.raises(MailTransientError, match=r"connection to 127\.0\.0\.1"):
            mailer.send(message_for("dean@acme.example"), "dean@acme.example")


@pytest.mark.parametrize(
    ("overrides", "env", "match"),
    [
        pytest.param({"username": "reports", "security": "starttls"}, {}, "IBL_SMTP_PASSWORD",
                     id="password-env-empty"),
        pytest.param({"username": "reports", "security": "none"}, ENV, "plaintext",
                     id="credentials-over-plaintext"),
    ],
)
def test_unsafe_or_incomplete_credentials_are_config_errors(
    overrides: dict[str, str], env: dict[str, str], match: str
) -> None:
    config = email_config(2525, **overrides)
    with pytest.raises(ConfigError, match=match) as info:
        backend_from_config(config, env)
    assert PASSWORD not in str(info.value)


def test_after_a_crash_mid_send_the_first_message_id_is_reused(
    server: SmtpServer, ledger: Ledger
) -> None:
    first_id = "<first-attempt@example.org>"
    ledger.plan_deliveries("acme-weekly", WEEK, ["dean@acme.example"],
                           {"dean@acme.example": first_id}, force=False)
    ledger.mark_sending("acme-weekly", WEEK, "dean@acme.example")  # then the process died
    rebuilt = message_for("dean@acme.example")  # e.g. rebuilt with another domain
    assert rebuilt["Message-ID"] != first_id
    report = deliver(ledger, SmtpMailer(server.config(), {}), "acme-weekly", WEEK,
                     {"dean@acme.example": rebuilt})
    assert report.sent == ("dean@acme.example",)
    [got] = server.handler.messages
    assert got.message["Message-ID"] == first_id
    assert got.message.get_all("Message-ID") == [first_id]
