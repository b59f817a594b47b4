"""An operator's retry through the real server and a real ``ibl-reports send`` child: the failed
recipient gets the report, the one who had it does not get it twice."""

from __future__ import annotations

from pathlib import Path

import httpx

from reports.config import load_config
from reports.state.deliveries import DeliveryState
from reports.state.ledger import Ledger
from reports.web.app import create_app
from reports.web.runner import ChildSendRunner
from tests._web import ACME_PERIOD, PASSWORDS, csrf_of, seed, serving, write_web_config


def test_retry_sends_to_the_failed_recipient_only(tmp_path: Path) -> None:
    config = load_config(write_web_config(tmp_path))  # the embedded demo API, a file outbox
    seeded = seed(config)
    runner = ChildSendRunner(config.source)
    with Ledger(config.state.url) as ledger, serving(
        create_app(config, secret="k" * 40, ledger=ledger, runner=runner)
    ) as url, httpx.Client(base_url=url, follow_redirects=True) as client:
        token = csrf_of(client.get("/login").text)
        client.post("/login", data={"name": "op", "password": PASSWORDS["op"], "csrf": token})
        page = client.get(f"/runs/{seeded.acme_run}")
        answer = client.post(f"/runs/{seeded.acme_run}/retry",
                             data={"csrf": csrf_of(page.text), "confirm": "yes"})
        assert answer.status_code == 200 and "Sending again to programs@acme.example" in answer.text
        runner.join(timeout=300)
        retried = ledger.delivery("acme-weekly", ACME_PERIOD, "programs@acme.example")
        kept = ledger.delivery("acme-weekly", ACME_PERIOD, "dean@acme.example")
        assert retried is not None and retried.state is DeliveryState.SENT, retried
        assert retried.message_id == "<1.acme-weekly@example.org>"
        assert kept is not None and kept.attempts == 1
    sent = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    assert len(sent) == 1 and "programs@acme.example" in sent[0]
