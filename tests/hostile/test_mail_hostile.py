"""Mail through the full ``ibl-reports send`` CLI (demo API over HTTP, a real aiosmtpd server):
header injection refused before anything is sent, credentials never offered without verified
TLS, 4xx retried to exactly one copy, 5xx final for one recipient only, the RFC 1047 window
costs at most one extra copy with the same Message-ID, and an oversized message is not sent."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi
from tests._e2e import API_KEY, SMTP_PASSWORD
from tests._smtp import (
    HOST,
    Recorder,
    TlsFiles,
    _Authenticator,
    _FreePortController,
    make_tls,
    smtp_server,
)
from tests.hostile import archived_files, cli, hostile_config, one_error_line, send

Start = Callable[..., RunningApi]
THREE = ("dean@acme.example", "programs@acme.example", "ops@acme.example")
USER = "reports-bot"
PASSWORD_ENV = {"IBL_SMTP_PASSWORD": SMTP_PASSWORD}


def smtp_table(port: int, *, security: str = "none", extra: str = "") -> str:
    return (
        f'backend = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        f'security = "{security}"\ntimeout_s = 5\nretry_backoff_s = 0.01\n{extra}'
    )


@pytest.fixture
def api(api_server: Start) -> RunningApi:
    return api_server(MockKnobs(courses=5, users=40, token=API_KEY))


def deliveries(config: Path) -> dict[str, tuple[str, int]]:
    """(state, attempts) per recipient in the ledger, read through ``runs --json``."""
    proc = cli(config, "runs", "--json")
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)
    return {d["recipient"]: (d["state"], d["attempts"]) for d in runs[0]["deliveries"]}


def copies(handler: Recorder) -> Counter[str]:
    """How many accepted messages each envelope recipient got."""
    return Counter(r for m in handler.messages for r in m.rcpt_tos)


# -- header injection: refused when the config is loaded --------------------------------------


@pytest.mark.parametrize(("where", "value", "needle"), [
    ("subject", "Report\r\nBcc: evil@example.org", "line break"),
    ("subject", "=?utf-8?q?x=0D=0ABcc:_evil@example.org?=", "encoded word"),
    ("display_name", "Acme\nBcc: evil@example.org", "line break"),
    ("display_name", "=?utf-8?q?x=0D=0ABcc:_evil@example.org?=", "encoded word"),
    ("recipient", '"Dean\r\nBcc: evil@example.org" <dean@acme.example>', "line break"),
    ("recipient", "=?utf-8?q?x=0D=0ABcc:_evil@example.org?= <dean@acme.example>", "encoded"),
    ("recipient", "alice@example.org(<bob@example.org>", "alice@example.org(<bob@example.org>"),
    ("recipient", '"a@b"@example.org', '"a@b"@example.org'),
])
def test_header_injection_is_refused_at_config_load(
    tmp_path: Path, where: str, value: str, needle: str
) -> None:
    with smtp_server() as server:
        extra = f"subject = {json.dumps(value)}\n" if where == "subject" else ""
        kw: dict[str, Any] = {"display_name": value} if where == "display_name" else {}
        if where == "recipient":
            kw["recipients"] = ("dean@acme.example", value)
        # No API at all: the run must stop before it would fetch anything.
        config = hostile_config(tmp_path, api_url="http://127.0.0.1:9",
                                email=smtp_table(server.port, extra=extra), **kw)
        proc = send(config)
        line = one_error_line(proc)
        assert proc.returncode == 2, proc.stderr
        assert needle in line
        assert ("subject" if where == "subject" else
                "display_name" if where == "display_name" else "recipients") in line
        assert server.handler.commands == [] and server.handler.messages == []
    assert archived_files(tmp_path) == []
    assert not (tmp_path / "state.db").exists()


# -- credentials only over verified TLS ---------------------------------------------------------


class SpySMTP(SMTP):
    """aiosmtpd's server, noting AUTH and STARTTLS, optionally refusing STARTTLS."""

    def __init__(self, *args: Any, seen: list[str], starttls_reply: str | None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = seen
        self.starttls_reply = starttls_reply

    async def smtp_AUTH(self, arg: str) -> None:
        self.seen.append("AUTH")
        await super().smtp_AUTH(arg)

    async def smtp_STARTTLS(self, arg: str) -> None:
        self.seen.append("STARTTLS")
        if self.starttls_reply is not None:
            await self.push(self.starttls_reply)
            return
        await super().smtp_STARTTLS(arg)


class SpyController(_FreePortController):
    def __init__(self, handler: Recorder, seen: list[str], starttls_reply: str | None,
                 **kwargs: Any) -> None:
        super().__init__(handler, hostname=HOST, port=0, **kwargs)
        self.seen = seen
        self.starttls_reply = starttls_reply

    def factory(self) -> SMTP:
        return SpySMTP(self.handler, seen=self.seen, starttls_reply=self.starttls_reply,
                       **self.SMTP_kwargs)


@contextmanager
def spy_server(
    tls: TlsFiles | None, starttls_reply: str | None = None
) -> Iterator[tuple[int, Recorder, list[str]]]:
    """A server with AUTH (USER/SMTP_PASSWORD), STARTTLS if ``tls``; yields what it saw."""
    handler, seen = Recorder(), list[str]()
    kwargs: dict[str, Any] = {
        "authenticator": _Authenticator({USER: SMTP_PASSWORD}), "auth_require_tls": True,
    }
    if tls is not None:
        kwargs["tls_context"] = tls.server_context
    controller = SpyController(handler, seen, starttls_reply, **kwargs)
    controller.start()
    try:
        yield controller.port, handler, seen
    finally:
        controller.stop()


@pytest.mark.parametrize(("case", "needle"), [
    ("no-starttls", "does not offer STARTTLS"),
    ("starttls-454", "454"),
    ("untrusted", "not trusted"),
])
def test_credentials_are_never_offered_without_verified_tls(
    tmp_path: Path, api: RunningApi, case: str, needle: str
) -> None:
    tls = None if case == "no-starttls" else make_tls(tmp_path)
    reply = "454 4.7.0 TLS not available due to temporary reason" if case == "starttls-454" \
        else None
    with spy_server(tls, reply) as (port, handler, seen):
        email = smtp_table(port, security="starttls", extra=f'username = "{USER}"\n')
        config = hostile_config(tmp_path, api_url=api.url, email=email,
                                recipients=("dean@acme.example",))
        proc = send(config, env=PASSWORD_ENV)
        line = one_error_line(proc)
        if case == "no-starttls":
            # a configuration mismatch, not a transient: exit 2 naming the key to change
            assert proc.returncode == 2
            assert line.startswith("error: email.security: ") and needle in line, line
            assert 'email.security = "ssl"' in line
        else:
            assert proc.returncode == 1
            assert "dean@acme.example" in line and needle in line, line
        assert "AUTH" not in seen and handler.messages == []
        assert SMTP_PASSWORD not in proc.stdout + proc.stderr
    # A 454 is a temporary refusal: retried within the run, but never past STARTTLS.
    attempts = 3 if case == "starttls-454" else 1
    assert deliveries(config) == {"dean@acme.example": ("failed-transient", attempts)}


def test_with_the_private_ca_the_report_goes_out_after_auth_over_tls(
    tmp_path: Path, api: RunningApi
) -> None:
    tls = make_tls(tmp_path)
    with spy_server(tls) as (port, handler, seen):
        email = smtp_table(port, security="starttls",
                           extra=f'username = "{USER}"\nca_file = "{tls.ca_file}"\n')
        config = hostile_config(tmp_path, api_url=api.url, email=email)
        proc = send(config, env=PASSWORD_ENV)
        assert proc.returncode == 0, proc.stderr
    assert seen.index("STARTTLS") < seen.index("AUTH")
    assert [(m.tls, m.login) for m in handler.messages] == [(True, USER), (True, USER)]
    assert copies(handler) == Counter({"dean@acme.example": 1, "programs@acme.example": 1})


# -- temporary refusals -------------------------------------------------------------------------


def test_4xx_at_rcpt_and_data_are_retried_to_exactly_one_copy_each(
    tmp_path: Path, api: RunningApi
) -> None:
    with smtp_server() as server:
        server.handler.rcpt_replies["programs@acme.example"] = [
            "421 4.3.0 closing, try later", "450 4.2.0 mailbox busy"]
        server.handler.data_replies = ["451 4.3.0 local error"]  # the first message, dean's
        config = hostile_config(tmp_path, api_url=api.url, email=smtp_table(server.port),
                                recipients=THREE)
        proc = send(config)
        assert proc.returncode == 0, proc.stderr
        assert copies(server.handler) == Counter(dict.fromkeys(THREE, 1))
    assert deliveries(config) == {
        "dean@acme.example": ("sent", 2), "programs@acme.example": ("sent", 3),
        "ops@acme.example": ("sent", 1),
    }


def test_retries_exhausted_wait_for_the_next_send_which_delivers_once(
    tmp_path: Path, api: RunningApi
) -> None:
    with smtp_server() as server:
        server.handler.rcpt_replies["programs@acme.example"] = ["451 4.3.0 try later"] * 3
        config = hostile_config(tmp_path, api_url=api.url, email=smtp_table(server.port))
        first = send(config)
        line = one_error_line(first)
        assert first.returncode == 1
        assert "programs@acme.example" in line and "transient" in line and "451" in line
        assert copies(server.handler) == Counter({"dean@acme.example": 1})
        assert deliveries(config)["programs@acme.example"] == ("failed-transient", 3)

        second = send(config)
        assert second.returncode == 0, second.stderr
        assert "sent to programs@acme.example" in second.stdout
        assert copies(server.handler) == Counter(
            {"dean@acme.example": 1, "programs@acme.example": 1})


# -- permanent refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("refusal", [
    "550 5.1.1 no such user", "553 5.1.3 mailbox name not allowed", "552 5.3.4 too big (DATA)",
])
def test_a_5xx_fails_one_recipient_for_good_and_the_others_get_theirs(
    tmp_path: Path, api: RunningApi, refusal: str
) -> None:
    target = "dean@acme.example"  # the first: its message is the first DATA
    with smtp_server() as server:
        if "DATA" in refusal:
            server.handler.data_replies = [refusal]
        else:
            server.handler.rcpt_replies[target] = [refusal]
        config = hostile_config(tmp_path, api_url=api.url, email=smtp_table(server.port),
                                recipients=THREE)
        first = send(config)
        line = one_error_line(first)
        assert first.returncode == 1
        assert target in line and "permanent" in line and refusal[:3] in line, line
        assert copies(server.handler) == Counter(dict.fromkeys(THREE[1:], 1))
        assert deliveries(config)[target] == ("failed-permanent", 1)

        if refusal.startswith("550"):
            again = send(config)
            assert again.returncode == 0, again.stderr
            assert copies(server.handler) == Counter(dict.fromkeys(THREE[1:], 1))
            forced = send(config, "--force")
            assert forced.returncode == 0, forced.stderr
            assert copies(server.handler) == Counter({target: 1, **dict.fromkeys(THREE[1:], 2)})


# -- the RFC 1047 window ------------------------------------------------------------------------


def test_a_connection_dropped_after_data_costs_at_most_one_copy_with_the_same_message_id(
    tmp_path: Path, api: RunningApi
) -> None:
    dean, programs, ops = THREE
    with smtp_server() as server:
        server.handler.rcpt_replies[programs] = ["550 5.1.1 no such user"]
        server.handler.drop_after_data = 1  # dean's message arrives, the answer never does
        config = hostile_config(tmp_path, api_url=api.url, recipients=THREE,
                                email=smtp_table(server.port, extra="max_attempts = 1\n"))
        first = send(config)
        assert first.returncode == 1
        errors = first.stderr.strip().splitlines()
        assert len(errors) == 2, first.stderr
        assert dean in errors[0] and "transient" in errors[0]
        assert programs in errors[1] and "permanent" in errors[1]
        assert [m.rcpt_tos for m in server.handler.dropped] == [(dean,)]
        assert copies(server.handler) == Counter({ops: 1})

        second = send(config)
        assert second.returncode == 0, second.stderr
        third = send(config)
        assert third.returncode == 0, third.stderr

        assert copies(server.handler) == Counter({ops: 1, dean: 1})
        dropped_id = server.handler.dropped[0].message["Message-ID"]
        resent = [m for m in server.handler.messages if m.rcpt_tos == (dean,)]
        assert [m.message["Message-ID"] for m in resent] == [dropped_id]
    assert deliveries(config) == {
        dean: ("sent", 2), programs: ("failed-permanent", 1), ops: ("sent", 1),
    }


# -- size ---------------------------------------------------------------------------------------


def test_a_message_over_the_servers_size_is_failed_permanently_and_not_sent(
    tmp_path: Path, api: RunningApi
) -> None:
    with smtp_server(size_limit=20_000) as server:
        config = hostile_config(tmp_path, api_url=api.url, email=smtp_table(server.port),
                                recipients=("dean@acme.example",))
        proc = send(config)
        line = one_error_line(proc)
        assert proc.returncode == 1
        assert "dean@acme.example" in line and "permanent" in line
        assert "over the limit of 20,000 bytes" in line
        assert server.handler.messages == []
    assert deliveries(config) == {"dean@acme.example": ("failed-permanent", 1)}
