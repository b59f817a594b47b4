"""`ibl-reports send` end to end: demo API over HTTP, a real SMTP server (aiosmtpd), the CLI as a
subprocess; exactly-once delivery, --force, --to, partial refusals, and SIGKILL at each stage."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from reports.report.fmt import compared_with, period_label
from reports.report.periods import weekly
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY, popen_cli, run_cli, sigkill_cli, write_config
from tests._smtp import HOST, Recorder, _FreePortController

AS_OF = "2026-11-26"
PERIOD = weekly(date(2026, 11, 26))
compared = compared_with(PERIOD, PERIOD.previous())  # "the week of Nov 9"
RCPTS = ("dean@acme.example", "programs@acme.example", "ops@acme.example")
ARCHIVED = Path("archive/acme-university/acme-weekly/2026-11-16_2026-11-22.pdf")


class HoldingRecorder(Recorder):
    """A Recorder that can hold a RCPT TO open (to kill the client mid-SMTP)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: set[str] = set()
        self.held: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.hold:
            self.held.append(address)
            await asyncio.sleep(60)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def smtp() -> Iterator[tuple[HoldingRecorder, int]]:
    handler = HoldingRecorder()
    controller = _FreePortController(handler, hostname=HOST, port=0)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest.fixture
def served(api_server: Callable[..., RunningApi]) -> RunningApi:  # noqa: F811
    return api_server(MockKnobs(token=API_KEY, courses=4, users=40))


def received_by(handler: Recorder) -> list[str]:
    return sorted(r for m in handler.messages for r in m.rcpt_tos)


def deliveries(folder: Path) -> dict[str, str]:
    with sqlite3.connect(folder / "state.db") as db:
        rows = db.execute("select recipient, state from deliveries").fetchall()
    return dict(rows)


def make_config(folder: Path, api: RunningApi, port: int, **kw: Any) -> Path:
    return write_config(folder, api_url=api.url, smtp_port=port, recipients=RCPTS,
                        extra=kw.pop("extra", ""), **kw)


def test_each_recipient_gets_one_private_message_and_a_second_send_sends_nothing(
    tmp_path: Path, served: RunningApi, smtp: tuple[HoldingRecorder, int]
) -> None:
    handler, port = smtp
    config = make_config(tmp_path, served, port)
    first = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert first.returncode == 0, first.stderr
    assert received_by(handler) == sorted(RCPTS)
    pdf = (tmp_path / ARCHIVED).read_bytes()
    for received in handler.messages:
        message = received.message
        assert message["To"] == received.rcpt_tos[0]  # nobody sees the others' addresses
        assert len(received.rcpt_tos) == 1
        assert message["Subject"] == f"Weekly report, Acme University, {period_label(PERIOD)}"
        parts = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert len(parts) == 1 and parts[0].get_payload(decode=True) == pdf
        body = message.get_body(preferencelist=("plain",))
        assert body is not None and "Active users" in body.get_content()
        # Both parts say what the figures are compared with; the HTML part has the cards.
        assert f"Changes are compared with {compared}." in body.get_content()
        html = message.get_body(preferencelist=("html",))
        assert html is not None and f"compared with {compared}." in html.get_content()
        assert "border-top:3px solid #" in html.get_content()
    ids = {m.message["To"]: m.message["Message-ID"] for m in handler.messages}
    assert len(set(ids.values())) == 3

    second = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert second.returncode == 0, second.stderr
    assert len(handler.messages) == 3
    assert "already" in second.stdout

    forced = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF, "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(handler.messages) == 6
    again = {m.message["To"]: m.message["Message-ID"] for m in handler.messages[3:]}
    assert again == ids  # the same Message-ID per (report, period, recipient)


def test_to_sends_one_test_copy_and_leaves_the_ledger_alone(
    tmp_path: Path, served: RunningApi, smtp: tuple[HoldingRecorder, int]
) -> None:
    handler, port = smtp
    config = make_config(tmp_path, served, port)
    proc = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF,
                   "--to", "tester@example.org")
    assert proc.returncode == 0, proc.stderr
    assert received_by(handler) == ["tester@example.org"]
    assert deliveries(tmp_path) == {}
    # in the order it happened: the PDF, then the one test copy (no second "sent to")
    head = "acme-weekly 2026-11-16..2026-11-22: "
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{head}archived ") and lines[0].endswith(str(ARCHIVED)), lines
    assert re.fullmatch(
        rf"{re.escape(head)}test copy sent to tester@example\.org \(server replied 250 .*\); "
        "no delivery recorded", lines[1]), lines
    assert len(lines) == 2, lines
    real = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert real.returncode == 0, real.stderr
    assert received_by(handler) == sorted([*RCPTS, "tester@example.org"])


def test_one_refused_recipient_fails_alone_and_is_named(
    tmp_path: Path, served: RunningApi, smtp: tuple[HoldingRecorder, int]
) -> None:
    handler, port = smtp
    handler.rcpt_replies["programs@acme.example"] = ["550 5.1.1 no such user"]
    config = make_config(tmp_path, served, port)
    proc = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert proc.returncode == 1
    assert "programs@acme.example" in proc.stderr and "550" in proc.stderr
    assert received_by(handler) == ["dean@acme.example", "ops@acme.example"]
    assert deliveries(tmp_path)["programs@acme.example"] == "failed-permanent"
    runs = json.loads(run_cli(config, "runs", "--json", check=True).stdout)
    assert runs[0]["state"] == "failed"
    # A permanent failure is not retried without --force.
    again = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert again.returncode == 0
    assert len(handler.messages) == 2


def test_temporary_refusal_is_retried_within_the_run(
    tmp_path: Path, served: RunningApi, smtp: tuple[HoldingRecorder, int]
) -> None:
    handler, port = smtp
    handler.rcpt_replies["dean@acme.example"] = ["451 4.3.0 try again later"]
    config = make_config(tmp_path, served, port, extra="")
    text = config.read_text().replace("timeout_s = 10", "timeout_s = 10\nretry_backoff_s = 0.05")
    config.write_text(text)
    proc = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stderr
    assert received_by(handler) == sorted(RCPTS)
    assert deliveries(tmp_path)["dean@acme.example"] == "sent"


def _wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.mark.long
@pytest.mark.parametrize(
    "held",
    [
        pytest.param("dean@acme.example", id="after-archive-before-any-mail"),
        pytest.param("programs@acme.example", id="between-recipients"),
    ],
)
def test_sigkill_mid_smtp_then_resume_sends_each_recipient_once(
    tmp_path: Path, served: RunningApi, smtp: tuple[HoldingRecorder, int], held: str
) -> None:
    handler, port = smtp
    handler.hold.add(held)
    config = make_config(tmp_path, served, port, lease_s=1)  # resumed 1 s after the kill
    proc = popen_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    _wait_for(lambda: bool(handler.held))
    sigkill_cli(proc)
    before = RCPTS[: RCPTS.index(held)]
    assert received_by(handler) == sorted(before)
    assert (tmp_path / ARCHIVED).is_file()
    assert deliveries(tmp_path)[held] == "sending"

    handler.hold.clear()
    resumed = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert resumed.returncode == 0, resumed.stderr
    assert received_by(handler) == sorted(RCPTS)  # each recipient exactly once
    assert "reused archived PDF" in resumed.stdout
    assert set(deliveries(tmp_path).values()) == {"sent"}


@pytest.mark.long
def test_sigkill_while_collecting_leaves_nothing_then_resume_completes(
    tmp_path: Path, api_server: Callable[..., RunningApi],  # noqa: F811
    smtp: tuple[HoldingRecorder, int],
) -> None:
    handler, port = smtp
    slow = api_server(MockKnobs(token=API_KEY, courses=4, users=40, latency_s=2.0))
    config = make_config(tmp_path, slow, port, lease_s=1)
    proc = popen_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    _wait_for(lambda: slow.app.stats.requests > 0 or slow.app.stats.in_flight > 0)
    sigkill_cli(proc)
    assert not (tmp_path / ARCHIVED).exists()
    assert handler.messages == []

    slow.app.knobs = replace(slow.app.knobs, latency_s=0.0)  # the same data, at full speed
    resumed = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF)
    assert resumed.returncode == 0, resumed.stderr
    assert received_by(handler) == sorted(RCPTS)


def test_structured_logs_give_one_line_per_run_transition_and_delivery(
    tmp_path: Path, served: RunningApi, smtp: tuple[HoldingRecorder, int]
) -> None:
    _handler, port = smtp
    config = make_config(tmp_path, served, port)
    proc = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF,
                   env={"IBL_REPORTS_LOG_FORMAT": "json"})
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    runs = [(r["from"], r["to"]) for r in records if r["event"] == "run.transition"]
    assert runs == [(None, "collecting"), ("collecting", "rendering"), ("rendering", "archived"),
                    ("archived", "delivering"), ("delivering", "done")]
    sent = [r["recipient"] for r in records
            if r["event"] == "delivery.transition" and r["to"] == "sent"]
    assert sorted(sent) == sorted(RCPTS)
    assert all(API_KEY not in line for line in proc.stderr.splitlines())
