"""End to end: the real ``ibl-reports schedule`` daemon running the real ``send``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reports.config import Config
from reports.schedule.firetimes import last_fire_time, period_for_fire
from reports.source.mock import MockKnobs
from reports.state.ledger import Ledger
from tests._apiserver import RunningApi, api_server
from tests._e2e import API_KEY
from tests._sched import ChildDaemon, write_config
from tests._smtp import HOST, Recorder, _FreePortController

__all__ = ["api_server"]
RECIPIENTS = ["dean@acme.example", "programs@acme.example", "ops@acme.example"]


class SlowSecondRecipient(Recorder):
    """Holds the first RCPT after a message was accepted for 3 s: a window to crash in."""

    slowed = False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.messages and not self.slowed:
            self.slowed = True
            await asyncio.sleep(3)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def _config(tmp_path: Path, port: int, api: RunningApi) -> Config:
    email = (
        f"[api]\nbase_url = \"{api.url}\"\napi_key_env = \"IBL_TEST_KEY\"\n\n"
        "[email]\nbackend = \"smtp\"\n"
        f"smtp_host = \"{HOST}\"\nsmtp_port = {port}\nsecurity = \"none\"\ntimeout_s = 10\n"
        "from = \"ibl.ai reports <reports@example.org>\"\n\n"
        "[archive]\ndir = \"archive\"\n"
    )
    return write_config(
        tmp_path,
        [{"name": "acme-weekly", "org": "acme-university", "period": "weekly",
          "schedule": "0 7 * * 1", "timezone": "Europe/Berlin", "recipients": RECIPIENTS}],
        extra=email,
    )


def _schedule(config: Config) -> ChildDaemon:
    return ChildDaemon(config, argv=[
        sys.executable, "-m", "reports.cli", "--config", str(config.source), "schedule",
        "--log-format", "json",
    ])


@pytest.mark.long
def test_sigkill_mid_delivery_then_restart_delivers_each_recipient_once(
    tmp_path: Path, api_server: Callable[..., RunningApi], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A small org on a loopback demo API (the embedded one has 20-60 courses and 500-3000
    # users: each send child fetched it for seconds); the daemon and its sends inherit the key.
    api = api_server(MockKnobs(token=API_KEY, courses=6, users=80))
    monkeypatch.setenv("IBL_TEST_KEY", API_KEY)
    handler = SlowSecondRecipient()
    controller = _FreePortController(handler, hostname=HOST, port=0)
    controller.start()
    try:
        config = _config(tmp_path, controller.port, api)
        report = config.reports[0]
        fired = last_fire_time(report, datetime.now(UTC))
        assert fired is not None
        _, period = period_for_fire(report, fired)

        first = _schedule(config)
        try:
            process = first.wait_event("run.process", timeout=60)
            assert process["period"] == period.key
            deadline = time.monotonic() + 120
            # Wait until the second recipient's RCPT is being held: by then the first message
            # was accepted and its 250 reply read (the client moved on to the next recipient).
            while not handler.slowed and time.monotonic() < deadline:
                time.sleep(0.01)
            assert handler.slowed, "the delivery never reached the second recipient"
            # Crash: the daemon and its send process die at once, mid-delivery.
            os.kill(first.proc.pid, signal.SIGKILL)
            os.killpg(int(process["pid"]), signal.SIGKILL)
            first.proc.wait(timeout=10)
        finally:
            first.close()
        assert len(handler.messages) == 1
        time.sleep(0.6)  # its lease (stuck_after_s / 4 = 0.5 s) runs out: the run is recoverable

        second = _schedule(config)
        try:
            finished = second.wait_event("run.finished", timeout=120)
            second.proc.send_signal(signal.SIGTERM)
            assert second.proc.wait(timeout=30) == 0
        finally:
            second.close()
    finally:
        controller.stop()
    assert finished["period"] == period.key
    # The scheduler says when the job fires next, at start and after the run, local and UTC.
    names = [e.get("event") for e in second.events]
    nexts = [e for e in second.events if e.get("event") == "job.next"]
    assert len(nexts) == 2 and names.index("job.next") < names.index("run.started")
    assert names.index("run.finished") < len(names) - 1 - names[::-1].index("job.next")
    upcoming = datetime.fromisoformat(nexts[-1]["next_local"])
    assert upcoming == datetime.fromisoformat(nexts[-1]["next_utc"]) > datetime.now(UTC)
    assert nexts[-1]["timezone"] == "Europe/Berlin" and nexts[-1]["zone"] in ("CET", "CEST")
    assert (upcoming.weekday(), upcoming.strftime("%H:%M")) == (0, "07:00")
    # The send child's lines were relayed with their own times, not one time at its exit.
    relayed = [e for e in second.events if e.get("logger") == "reports.run"]
    assert len(relayed) >= 3 and len({e["ts"] for e in relayed}) > 1
    assert max(e["ts"] for e in relayed) <= finished["ts"]
    received = Counter(r for m in handler.messages for r in m.rcpt_tos)
    assert received == Counter(RECIPIENTS)  # everyone once, nobody twice
    with Ledger(config.state.url) as ledger:
        assert ledger.period_done(report.name, period, RECIPIENTS)
