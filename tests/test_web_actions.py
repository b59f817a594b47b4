"""An operator's retry through the real server and a real ``ibl-reports send`` child: the failed
recipient gets the report, the one who had it does not get it twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from reports.config import load_config
from reports.source.mock import MockKnobs
from reports.state.deliveries import DeliveryState
from reports.state.ledger import Ledger
from reports.web.app import create_app
from reports.web.runner import ChildSendRunner
from tests._apiserver import RunningApi, api_server
from tests._e2e import API_KEY
from tests._web import ACME_PERIOD, PASSWORDS, csrf_of, seed, serving, write_web_config

__all__ = ["api_server"]


@pytest.mark.long
def test_retry_sends_to_the_failed_recipient_only(
    tmp_path: Path, api_server: Callable[..., RunningApi], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A small org on a loopback demo API (the embedded one's 20-60 courses and 500-3000 users
    # took the send child seconds to fetch); the child inherits the key. A file outbox.
    api = api_server(MockKnobs(token=API_KEY, courses=6, users=80))
    monkeypatch.setenv("IBL_TEST_KEY", API_KEY)
    path = write_web_config(tmp_path)
    path.write_text(f'[api]\nbase_url = "{api.url}"\napi_key_env = "IBL_TEST_KEY"\n'
                    + path.read_text(encoding="utf-8"), encoding="utf-8")
    config = load_config(path)
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
