"""The fleet end to end: real redis-server, PostgreSQL, `ibl-reports worker` processes, the demo
API over HTTP and aiosmtpd. Every recipient gets exactly one message, whatever is killed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY
from tests._fleet import Redis, fleet, mails_per_recipient, pg_base_url, start_redis
from tests._smtp import Recorder, smtp_server

AS_OF = "2026-11-18"


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def served(api_server: Callable[..., RunningApi]) -> RunningApi:  # noqa: F811
    pg_base_url()  # skip early without PostgreSQL
    return api_server(MockKnobs(token=API_KEY, courses=4, users=40))


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as server:
        yield server.handler, server.port


def test_send_all_on_two_workers_sends_every_recipient_exactly_once(
    tmp_path: Path, redis: Redis, served: RunningApi, smtp: tuple[Recorder, int]
) -> None:
    handler, port = smtp
    with fleet(tmp_path, redis=redis, api_url=served.url, smtp_port=port, orgs=4) as running:
        running.start_worker()
        running.start_worker()
        running.wait_ready(2)
        result = running.cli("send", "--all", "--as-of", AS_OF)
        assert result.returncode == 0, result.stderr + running.logs()
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 4
        assert all(": sent to dean@org-" in line for line in lines), lines
        expected = {r: 1 for rs in running.recipients().values() for r in rs}
        assert mails_per_recipient(handler.messages) == expected
        again = running.cli("send", "--all", "--as-of", AS_OF)
        assert again.returncode == 0, again.stderr
        assert all("already delivered to every recipient" in line
                   for line in again.stdout.strip().splitlines())
        assert mails_per_recipient(handler.messages) == expected
