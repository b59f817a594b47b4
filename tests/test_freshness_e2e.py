"""The freshness gate end to end: the demo API over HTTP with data that has not arrived (or a
real drop), the CLI (``tests._e2e.run_cli``), the file outbox, the archive and the PDFs read back;
the scheduler's hold, re-check and provisional timeout with a controlled clock."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pypdf
import pytest
import time_machine

from reports.config import Config, load_config
from reports.report.periods import weekly
from reports.schedule.firetimes import RunRequest
from reports.schedule.runner import HELD_EXIT_CODE, OutcomeKind, Runner, RunOutcome, send_command
from reports.schedule.scheduler import Daemon
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server

__all__ = ["api_server"]
from tests._e2e import API_KEY, popen_cli, run_cli, sigkill_cli, write_config
from tests._smtp import HOST, _FreePortController, smtp_server
from tests.test_send_e2e import HoldingRecorder

MONDAY = date(2026, 11, 16)
WEEK = "2026-11-09..2026-11-15"
ARCHIVE = Path("archive/acme-university/acme-weekly")
# 8 courses, 7 with activity that week
LATE = MockKnobs(token=API_KEY, courses=8, users=120, today=MONDAY, late_days=2)
Server = Callable[..., RunningApi]
OPS = "ops@acme.example"


def mails(folder: Path, *, alerts: bool = False) -> dict[str, EmailMessage]:
    """The reports in the file outbox (or, with ``alerts``, the alerts to ops@)."""
    out = {}
    for path in sorted((folder / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if (message["To"] == OPS) is alerts:
            out[path.name] = message
    return out


def first_line(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).splitlines()[0]


def page_one(path: Path) -> str:
    return pypdf.PdfReader(path).pages[0].extract_text() or ""


def sends_in_this_process(config: Config) -> Runner:
    """The scheduler's runs: the ``send`` command line it starts (``send_command``), run by
    ``run_cli``. Its exit code is the outcome as ``SubprocessRunner`` reads it (0 sent, 3 held);
    the child process itself (its group, time limit, exit codes, relayed log lines) is tested
    in tests/test_scheduler.py and the daemon as a process in tests/test_scheduler_e2e.py."""
    command = send_command(config)

    def run(request: RunRequest) -> RunOutcome:
        argv = list(command(request))
        assert argv[1:6] == ["-m", "reports.cli", "--config", str(config.source), "send"], argv
        proc = run_cli(config.source, *argv[5:])
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        if proc.returncode == 0:
            return RunOutcome(OutcomeKind.OK, 0)
        if proc.returncode == HELD_EXIT_CODE:
            return RunOutcome(OutcomeKind.HELD, proc.returncode, last)
        return RunOutcome(OutcomeKind.FAILED, proc.returncode, last, proc.stderr[-2000:])

    return run


@pytest.mark.long
def test_held_then_provisional_by_the_scheduler_then_the_final_report_once(
    tmp_path: Path, api_server: Server,
) -> None:
    api = api_server(LATE)
    config_path = write_config(
        tmp_path, api_url=api.url,
        extra='\n[reports.freshness]\nhold_for = "2h"\n', org="acme-university")
    config_path.write_text(config_path.read_text().replace(
        "[[reports]]", '[alerts]\nrecipients = ["ops@acme.example"]\n\n[[reports]]'))
    # A manual send while Sunday has not arrived: held, nothing mailed or archived.
    held = run_cli(config_path, "send", "--report", "acme-weekly", "--as-of", "2026-11-16")
    assert held.returncode == 3, held.stderr
    assert held.stderr.strip() == (
        f"acme-weekly {WEEK}: held: data for Nov 15 has not arrived for 7 of 7 courses "
        "(send --provisional to send it now, marked provisional)")
    assert mails(tmp_path) == {} and not (tmp_path / ARCHIVE).exists()
    # The send that first holds the period alerts the ops recipients, once.
    assert [m["Subject"] for m in mails(tmp_path, alerts=True).values()] == [
        "ibl-reports: acme-weekly held for 2026-11-09_2026-11-15"]
    runs = json.loads(run_cli(config_path, "runs", "--json", check=True).stdout)
    assert [(r["state"], r["reason"]) for r in runs] == [
        ("held", "data for Nov 15 has not arrived for 7 of 7 courses")]
    assert runs[0]["gate"]["failed"][0]["rule"] == "day_coverage"
    jobs = run_cli(config_path, "jobs", "--json", check=True).stdout
    assert json.loads(jobs)[0]["last_state"] == "held"

    # The scheduler takes over with a controlled clock; its runs are real `send` commands.
    config = load_config(config_path)
    now = [datetime(2026, 11, 16, 6, 0, tzinfo=UTC)]
    alerts: list[str] = []
    daemon = Daemon(config, clock=lambda: now[0], runner=sends_in_this_process(config),
                    alerter=lambda subject, _text: alerts.append(subject))
    fired = daemon.execute(RunRequest("acme-weekly", now[0], MONDAY, weekly(MONDAY)))
    assert fired is not None and fired.kind is OutcomeKind.HELD
    assert alerts == [] and len(mails(tmp_path, alerts=True)) == 1  # held before: no new alert
    now[0] += timedelta(hours=1)
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.HELD]
    now[0] += timedelta(hours=1)  # hold_for: sent marked provisional
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.OK]
    # The provisional send alerts the ops recipients itself, once; the daemon does not.
    assert alerts == []
    told = sorted(mails(tmp_path, alerts=True).values(), key=lambda m: m["Subject"])
    assert [m["Subject"] for m in told] == [
        "ibl-reports: acme-weekly held for 2026-11-09_2026-11-15",
        "ibl-reports: acme-weekly sent provisional for 2026-11-09_2026-11-15"]
    text = " ".join(told[1].get_content().split())
    assert "for the period 2026-11-09 to 2026-11-15 was sent marked provisional to 2 " in text
    assert "Failed rules: day_coverage Reason: data for Nov 15 has not arrived for 7 of 7 " in text
    # Sending it provisional again by hand sends nothing new and alerts nobody.
    again = run_cli(config_path, "send", "--report", "acme-weekly", "--as-of", "2026-11-16",
                    "--provisional", check=True)
    assert "nothing to send: every recipient has the provisional report" in again.stdout
    assert len(mails(tmp_path, alerts=True)) == 2
    sent = mails(tmp_path)
    assert len(sent) == 2 and all(
        m["Subject"].startswith("[Provisional] ") for m in sent.values())
    banner = "Provisional: data for Nov 15 has not arrived for 7 of 7 courses"
    assert all(first_line(m) == banner for m in sent.values())
    provisional_pdf = tmp_path / ARCHIVE / "2026-11-09_2026-11-15.provisional.pdf"
    assert banner in page_one(provisional_pdf)
    assert not (tmp_path / ARCHIVE / "2026-11-09_2026-11-15.pdf").exists()

    # The data arrives: the next tick sends the final report, once, replacing the provisional.
    api.app.knobs = replace(LATE, late_days=0)
    now[0] += timedelta(hours=1)
    assert [o.kind for o in daemon.recheck()] == [OutcomeKind.OK]
    assert daemon.holds.holds() == [] and alerts == []
    assert len(mails(tmp_path, alerts=True)) == 2
    finals = {k: m for k, m in mails(tmp_path).items() if k not in sent}
    assert len(finals) == 2
    for message in finals.values():
        assert message["Subject"].endswith("(final: replaces the provisional report)")
        assert not message["Subject"].startswith("[Provisional]")
        assert first_line(message).startswith("This final report replaces the provisional "
                                               "report of Nov 9")
    final_pdf = tmp_path / ARCHIVE / "2026-11-09_2026-11-15.pdf"
    assert "Provisional" not in page_one(final_pdf) and provisional_pdf.exists()
    # The final PDF says itself, on page 1, which provisional report it replaces.
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(final_pdf), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert re.search(r"^This final report replaces the provisional report of Nov 9 \u2013 15, 2026 "
                     r"sent on \w+ \d+, \d{4}\. Acme University", " ".join(text.split()))
    again = run_cli(config_path, "send", "--report", "acme-weekly", "--as-of", "2026-11-16",
                    check=True)
    assert "nothing to send" in again.stdout and len(mails(tmp_path)) == 4
    listed = json.loads(run_cli(config_path, "archive", "list", "--json", check=True).stdout)
    assert sorted(e["edition"] for e in listed) == ["final", "provisional"]
    runs = json.loads(run_cli(config_path, "runs", "--json", check=True).stdout)
    assert [r["state"] for r in runs][:3] == ["done", "held", "done"]  # held: the repeat
    assert runs[2]["edition"] == "provisional" and runs[0]["edition"] == "final"


def test_an_unended_period_is_refused_by_send_and_marked_by_generate(
    tmp_path: Path, api_server: Server,
) -> None:
    api = api_server(MockKnobs(token=API_KEY, courses=6, users=80))
    config = write_config(tmp_path, api_url=api.url)
    today = date.today()
    ahead = (today + timedelta(days=9)).isoformat()
    refused = run_cli(config, "send", "--report", "acme-weekly", "--as-of", ahead)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "has not ended yet" in refused.stderr
    assert not (tmp_path / "outbox").exists() and not (tmp_path / "archive").exists()
    start, end = today - timedelta(days=3), today + timedelta(days=3)
    made = run_cli(config, "generate", "--report", "acme-weekly", "--start", start.isoformat(),
                   "--end", end.isoformat(), "--out", "preview.pdf", "--json", check=True)
    result = json.loads(made.stdout.strip().splitlines()[-1])
    assert result["gate"]["ok"] is False
    assert result["gate"]["failed"][0]["rule"] == "period_ended"
    assert "has not ended yet" in made.stderr and "marked provisional" in made.stderr
    assert "Provisional: the period has not ended yet" in page_one(tmp_path / "preview.pdf")


def test_a_real_drop_is_held_by_the_ratio_rule_alerted_once_and_released_by_config(
    tmp_path: Path, api_server: Server,
) -> None:
    api = api_server(MockKnobs(token=API_KEY, courses=20, users=600,
                               drop_from=date(2026, 11, 9), drop_factor=0.2))
    with smtp_server() as smtp:
        config = write_config(tmp_path, api_url=api.url, smtp_port=smtp.port)
        config.write_text(config.read_text().replace(
            "[[reports]]", f'[alerts]\nrecipients = ["{OPS}"]\n\n[[reports]]'))
        held = run_cli(config, "send", "--report", "acme-weekly", "--as-of", "2026-11-16")
        assert held.returncode == 3, held.stderr
        assert "active users (" in held.stderr and "are below 50% of the previous period" in (
            held.stderr)
        # The ops recipients hear of it (once per period: the first test sends a held period
        # again and checks that no second alert goes out).
        [alert] = smtp.handler.messages
        assert alert.rcpt_tos == (OPS,)
        assert alert.message["Subject"] == (
            "ibl-reports: acme-weekly held for 2026-11-09_2026-11-15")
        text = alert.message.get_content()
        assert "Reason: active users (" in text and "--provisional" in text
        assert "Failed rules: ratio" in text.splitlines()
        # The figures are real: the ratio rule is turned off for this report; it goes out final.
        config.write_text(config.read_text() + "\n[reports.freshness]\nratio = false\n")
        sent = run_cli(config, "send", "--report", "acme-weekly", "--as-of", "2026-11-16",
                       check=True)
        assert "sent to" in sent.stdout
        reports = [m.message for m in smtp.handler.messages[1:]]
        assert len(reports) == 2 and all(
            not m["Subject"].startswith("[Provisional]") for m in reports)


def test_a_period_held_by_a_manual_send_is_looked_after_by_the_scheduler(
    tmp_path: Path, api_server: Server,
) -> None:
    api = api_server(LATE)
    config_path = write_config(tmp_path, api_url=api.url, org="acme-university")
    start = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # Monday morning, Sunday not loaded yet
    with time_machine.travel(start, tick=False) as clock:
        held = run_cli(config_path, "send", "--report", "acme-weekly")  # by hand
        assert held.returncode == 3, held.stderr
        config = load_config(config_path)
        now = [start + timedelta(minutes=30)]
        daemon = Daemon(config, clock=lambda: now[0], runner=sends_in_this_process(config),
                        alerter=lambda subject, _text: None)
        assert daemon.recheck() == []  # the next look is hold_retry_every after the send
        [hold] = daemon.holds.holds()
        # hold_for (6 h) counts from the manual hold; looking again stops at the next fire.
        assert (hold.period, hold.since, hold.until) == (
            weekly(MONDAY), start, datetime(2026, 11, 23, 6, 0, tzinfo=UTC))  # 07:00 Berlin

        def tick(hours: float) -> list[OutcomeKind]:
            now[0] = start + timedelta(hours=hours)
            clock.move_to(now[0])
            return [o.kind for o in daemon.recheck()]

        assert tick(1) == [OutcomeKind.HELD]
        assert daemon.holds.holds()[0].rechecks == 1 and mails(tmp_path) == {}
        api.app.knobs = replace(LATE, late_days=0)
        assert tick(2) == [OutcomeKind.OK]  # the data arrived: sent on the next look, once
        assert daemon.holds.holds() == [] and len(mails(tmp_path)) == 2
        assert tick(4) == []


@pytest.mark.long
def test_a_send_killed_between_its_provisional_delivery_and_the_alert_alerts_next_time(
    tmp_path: Path, api_server: Server,
) -> None:
    api = api_server(LATE)
    handler = HoldingRecorder()
    handler.hold.add(OPS)  # the alert's RCPT TO hangs: the reports went out, the alert not yet
    controller = _FreePortController(handler, hostname=HOST, port=0)
    controller.start()
    try:
        config = write_config(tmp_path, api_url=api.url, smtp_port=controller.port, lease_s=1,
                              org="acme-university")
        config.write_text(config.read_text().replace(
            "[[reports]]", f'[alerts]\nrecipients = ["{OPS}"]\n\n[[reports]]'))
        send = ("send", "--report", "acme-weekly", "--as-of", "2026-11-16", "--provisional")
        proc = popen_cli(config, *send)
        deadline = time.monotonic() + 60
        while not handler.held:
            assert time.monotonic() < deadline and proc.poll() is None, "no alert was tried"
            time.sleep(0.05)
        sigkill_cli(proc)
        reports = [m for m in handler.messages if OPS not in m.rcpt_tos]
        assert len(reports) == 2 and len(handler.messages) == 2  # delivered, not alerted
        handler.hold.clear()
        again = run_cli(config, *send, check=True)  # nothing new to send; the alert goes now
        assert "nothing to send: every recipient has the provisional report" in again.stdout
        alerts = [m.message for m in handler.messages if OPS in m.rcpt_tos]
        assert [m["Subject"] for m in alerts] == [
            "ibl-reports: acme-weekly sent provisional for 2026-11-09_2026-11-15"]
        assert "was sent marked provisional to 2 recipients" in " ".join(
            alerts[0].get_content().split())
        run_cli(config, *send, check=True)  # told: exactly once
        assert len(handler.messages) == 3
    finally:
        controller.stop()
