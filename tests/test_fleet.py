"""The fleet end to end: real redis-server, PostgreSQL, `ibl-reports worker` processes, the demo
API over HTTP and aiosmtpd. Every recipient gets exactly one message, whatever is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reports.source.mock import MockKnobs
from reports.state.schema import SCHEMA_VERSION
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY, run_cli
from tests._fleet import (
    STATE_ENV,
    Fleet,
    Redis,
    fleet,
    mails_per_recipient,
    pg_base_url,
    pool_children,
    run_states,
    start_redis,
    wait_for,
)
from tests._smtp import HOST, Recorder, _FreePortController, smtp_server

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
    """Small demo orgs (2 courses, 8 users): a report renders in about half the time of 4/40, and
    exactly-once does not depend on an org's size."""
    pg_base_url()  # skip early without PostgreSQL
    return api_server(MockKnobs(token=API_KEY, courses=2, users=8))


@pytest.fixture
def served_full(api_server: Callable[..., RunningApi]) -> RunningApi:  # noqa: F811
    """4 courses, 40 users: a render long enough to be caught and killed mid-way."""
    pg_base_url()
    return api_server(MockKnobs(token=API_KEY, courses=4, users=40))


@pytest.fixture(autouse=True)
def _broker_connections_closed() -> Iterator[None]:
    """Every broker connection this test process opened (a producer's app, `send --all` and
    `queue status` in-process) is closed when the test ends: kombu's pools close them again in
    every forked child, and a later test of this process that forks (the privacy key race)
    hung reading a socket left waiting on the broker."""
    yield
    from kombu import pools

    pools.reset()


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as server:
        yield server.handler, server.port


@pytest.mark.long
def test_send_all_of_30_orgs_on_two_workers_sends_every_recipient_exactly_once(
    tmp_path: Path, redis: Redis, served: RunningApi, smtp: tuple[Recorder, int]
) -> None:
    """The done-when case: 30 demo orgs, 2 workers, `send --all`, the SMTP server's mailbox read.
    Before `db upgrade` a worker and `send --all` refuse the new database with one line."""
    handler, port = smtp
    with fleet(tmp_path, redis=redis, api_url=served.url, smtp_port=port, orgs=30,
               upgrade=False) as running:
        early = running.start_worker()
        refused = running.cli("send", "--all", "--as-of", AS_OF)
        needs = (f"error: state database is at schema 0, this version needs {SCHEMA_VERSION}: run "
                 "`ibl-reports db upgrade`")
        assert (refused.returncode, refused.stderr.strip()) == (2, needs)
        assert early.wait(60) == 2 and needs in running.logs()
        running.workers.remove(early)
        upgraded = running.cli("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert f"schema version {SCHEMA_VERSION}" in upgraded.stdout
        running.start_worker()
        running.start_worker()
        running.wait_ready(2)
        result = running.cli("send", "--all", "--as-of", AS_OF)
        assert result.returncode == 0, result.stderr + running.logs()
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 30
        assert all(": sent to dean@org-" in line for line in lines), lines
        expected = {r: 1 for rs in running.recipients().values() for r in rs}
        assert len(expected) == 60
        assert mails_per_recipient(handler.messages) == expected
        again = running.cli("send", "--all", "--as-of", AS_OF)
        assert again.returncode == 0, again.stderr
        assert [line.split(": ", 1)[1] for line in again.stdout.strip().splitlines()] == [
            "already delivered to every recipient"] * 30
        assert mails_per_recipient(handler.messages) == expected


class HoldingSmtp(Recorder):
    """Holds the RCPT of ``hold`` (so a test can kill the sender mid-SMTP), once."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: set[str] = set()
        self.held: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.hold:
            self.hold.discard(address)
            self.held.append(address)
            await asyncio.sleep(30)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def holding_smtp() -> Iterator[tuple[HoldingSmtp, int]]:
    handler = HoldingSmtp()
    controller = _FreePortController(handler, hostname=HOST, port=0)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest.mark.long
def test_sigkill_of_a_pool_child_and_of_a_whole_worker_sends_nobody_a_second_message(
    tmp_path: Path, redis: Redis, served_full: RunningApi,
    holding_smtp: tuple[HoldingSmtp, int],
) -> None:
    """org-00: its pool child killed mid-render; org-01: mid-SMTP (RCPT held); org-02: its whole
    worker killed mid-render (the task comes back after the visibility timeout)."""
    handler, port = holding_smtp
    handler.hold.add("dean@org-01.example")
    with fleet(tmp_path, redis=redis, api_url=served_full.url, smtp_port=port, orgs=3,
               visibility_s=9.5, lease_s=1, render_timeout_s=7, run_timeout_s=8) as running:
        first = running.start_worker()
        second = running.start_worker()
        running.wait_ready(2)
        from reports.config import load_config
        from reports.execute.celery_app import enqueue, make_app

        config = load_config(running.config, env=running.env)
        app = make_app(config, running.env)
        results = {org: enqueue(app, config.executor.queue, f"{org}-weekly", AS_OF, False,
                                time.time()) for org in ("org-00", "org-01")}

        # 1. org-00 mid-render: SIGKILL the pool child that runs it.
        wait_for("org-00 rendering", lambda: "rendering" in run_states(running, "org-00-weekly"))
        owner = _owner_of(running, "org-00-weekly")
        os.kill(owner, signal.SIGKILL)
        # 2. org-01 mid-SMTP: its first recipient's RCPT is held; SIGKILL that child.
        wait_for("org-01 held mid-SMTP", lambda: handler.held)
        os.kill(_owner_of(running, "org-01-weekly"), signal.SIGKILL)
        for org, result in results.items():
            value = result.get(timeout=120)
            assert value["ok"], (org, value, running.logs())

        # 3. org-02 mid-render: SIGKILL the whole worker (main process and its pool).
        result = enqueue(app, config.executor.queue, "org-02-weekly", AS_OF, False, time.time())
        wait_for("org-02 rendering", lambda: "rendering" in run_states(running, "org-02-weekly"))
        victim = first if _owner_of(running, "org-02-weekly") in pool_children(first) else second
        os.killpg(victim.pid, signal.SIGKILL)
        # Redelivered to the survivor after visibility_s (9.5: the least above the task's hard
        # limit, 8 s + 1 s grace; a render here takes 1-2 s) and one sweep (1 s); kombu's
        # default sweep (every 10th of 10 s ticks) took up to 100 s more.
        value = result.get(timeout=60)
        assert value["ok"], (value, running.logs())

        expected = {r: 1 for rs in running.recipients().values() for r in rs}
        assert mails_per_recipient(handler.messages) == expected
        for org in ("org-00", "org-01", "org-02"):
            states = run_states(running, f"{org}-weekly")
            assert states[-1] == "done" and states[:-1] == ["failed"] * (len(states) - 1), states


def _owner_of(running: Fleet, report: str) -> int:
    """The pid that runs ``report``'s working run (its owner column is host:pid)."""
    engine = sa.create_engine(running.env[STATE_ENV])
    try:
        with engine.connect() as conn:
            owner = conn.execute(sa.text(
                "SELECT owner FROM runs WHERE report = :r AND state NOT IN ('done', 'failed') "
                "ORDER BY id DESC"), {"r": report}).scalar_one()
    finally:
        engine.dispose()
    return int(owner.rpartition(":")[2])


@pytest.mark.long
def test_the_same_period_enqueued_twice_and_a_copy_redelivered_while_running_send_once(
    tmp_path: Path, redis: Redis, served: RunningApi, smtp: tuple[Recorder, int]
) -> None:
    handler, port = smtp
    with fleet(tmp_path, redis=redis, api_url=served.url, smtp_port=port, orgs=3) as running:
        running.start_worker(concurrency=2)  # two pool children: two processes at once
        running.wait_ready(1)
        from reports.config import load_config
        from reports.execute.celery_app import enqueue, make_app

        config = load_config(running.config, env=running.env)
        app = make_app(config, running.env)
        queue = config.executor.queue
        # Twice at once: both pool children get a copy of org-00's period.
        twins = [enqueue(app, queue, "org-00-weekly", AS_OF, False, time.time())
                 for _ in range(2)]
        # org-01: a second copy arrives while the first runs (what a redelivery looks like).
        first = enqueue(app, queue, "org-01-weekly", AS_OF, False, time.time())
        wait_for("org-01 running", lambda: run_states(running, "org-01-weekly"))
        copy = enqueue(app, queue, "org-01-weekly", AS_OF, False, time.time())
        # org-02 as the scheduler fires it: one task, its answer the run's outcome.
        from reports.fleet import CeleryRunner
        from reports.report.periods import for_kind
        from reports.schedule.firetimes import RunRequest
        from reports.schedule.runner import OutcomeKind

        day = date.fromisoformat(AS_OF)
        outcome = CeleryRunner(config, running.env)(RunRequest(
            "org-02-weekly", datetime.now(UTC), day, for_kind("weekly", day)))
        assert outcome.kind is OutcomeKind.OK, outcome
        assert "sent to dean@org-02.example, ops@org-02.example" in outcome.output_tail
        values = [r.get(timeout=180) for r in (*twins, first, copy)]
        assert all(v["ok"] for v in values), (values, running.logs())
        expected = {r: 1 for rs in running.recipients().values() for r in rs}
        assert mails_per_recipient(handler.messages) == expected
        assert run_states(running, "org-00-weekly").count("done") == 1
        assert run_states(running, "org-01-weekly").count("done") == 1


@pytest.mark.long
def test_a_redis_restart_mid_batch_then_send_all_again_completes_it(
    tmp_path: Path, served: RunningApi, smtp: tuple[Recorder, int]
) -> None:
    handler, port = smtp
    own = start_redis(tmp_path / "redis")  # this test restarts it
    try:
        with fleet(tmp_path, redis=own, api_url=served.url, smtp_port=port,
                   orgs=4) as running:
            running.start_worker()
            running.wait_ready(1)
            queued = running.cli("send", "--all", "--as-of", AS_OF, "--no-wait")
            assert queued.returncode == 0, queued.stderr
            wait_for("one report done", lambda: any(
                "done" in run_states(running, f"{org}-weekly") for org in running.orgs))
            own.stop()  # everything queued is lost: nothing was persisted
            own.start()
            again = running.cli("send", "--all", "--as-of", AS_OF)
            assert again.returncode == 0, again.stderr + running.logs()
            expected = {r: 1 for rs in running.recipients().values() for r in rs}
            assert mails_per_recipient(handler.messages) == expected
    finally:
        own.stop()


def test_queue_status_shows_depth_oldest_task_and_workers(tmp_path: Path, redis: Redis) -> None:
    from reports.config import load_config
    from reports.execute.celery_app import enqueue, make_app

    db = 1 + int.from_bytes(os.urandom(2), "big") % 255
    (tmp_path / "config.toml").write_text(
        '[state]\nurl_env = "PG"\n[executor]\nkind = "celery"\nbroker_url_env = "BROKER"\n'
        f'queue = "status-{db}"\n', encoding="utf-8")
    env = {"PG": "postgresql+psycopg://u:db-secret@127.0.0.1:1/x",
           "BROKER": f"redis://:broker-secret@127.0.0.1:{redis.port}/{db}"}
    config = load_config(tmp_path / "config.toml", env=env)
    app = make_app(config, {"BROKER": f"redis://127.0.0.1:{redis.port}/{db}"})
    for name in ("a-weekly", "b-weekly"):
        enqueue(app, config.executor.queue, name, AS_OF, False, time.time() - 90)
    env["BROKER"] = f"redis://127.0.0.1:{redis.port}/{db}"
    run = run_cli(tmp_path / "config.toml", "queue", "status", "--json", env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    status = json.loads(run.stdout)
    assert (status["depth"], status["workers"], status["running"]) == (2, [], 0)
    assert time.time() - status["oldest_enqueued_at"] >= 90
    # An unreachable broker is one line naming it, without its password.
    env["BROKER"] = "redis://:broker-secret@127.0.0.1:1/0"
    run = run_cli(tmp_path / "config.toml", "queue", "status", env=env, timeout=120)
    assert run.returncode == 1
    assert run.stderr.startswith("error: cannot reach the broker redis://:***@127.0.0.1:1/0")
    assert "broker-secret" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_the_task_retries_a_lost_worker_at_once_and_a_provisional_request_goes_as_such(
    tmp_path: Path, redis: Redis
) -> None:
    """The Celery side without a worker: the task's worker-lost settings as Celery reads them,
    and the scheduler's runner sending a provisional request (the task answered by hand)."""
    import base64
    import threading
    import warnings

    from reports.config import load_config
    from reports.execute.celery_app import TASK_NAME, WORKER_LOST_RETRIES, make_app
    from reports.fleet import CeleryRunner, send_period
    from reports.report.periods import for_kind
    from reports.schedule.firetimes import RunRequest
    from reports.schedule.runner import OutcomeKind

    db = 1 + int.from_bytes(os.urandom(2), "big") % 255
    (tmp_path / "config.toml").write_text(
        '[state]\nurl_env = "PG"\n[executor]\nkind = "celery"\nbroker_url_env = "BROKER"\n'
        f'queue = "prov-{db}"\n[[reports]]\nname = "acme-weekly"\norg = "acme"\n'
        'period = "weekly"\nschedule = "0 7 * * 1"\nrecipients = ["dean@acme.example"]\n',
        encoding="utf-8")
    env = {"PG": "postgresql+psycopg://u:p@127.0.0.1:1/x",
           "BROKER": f"redis://127.0.0.1:{redis.port}/{db}"}
    config = load_config(tmp_path / "config.toml", env=env)
    task = make_app(config, env, task=send_period).tasks[TASK_NAME]
    assert (task.acks_late, task.reject_on_worker_lost, task.retry_on_worker_lost,
            task.max_retries, task.default_retry_delay) == (True, True, True,
                                                              WORKER_LOST_RETRIES, 0)

    runner = CeleryRunner(config, env)
    day = date.fromisoformat(AS_OF)
    outcomes: list[Any] = []
    thread = threading.Thread(target=lambda: outcomes.append(runner(RunRequest(
        "acme-weekly", datetime.now(UTC), day, for_kind("weekly", day), reason="stale",
        provisional=True))))
    thread.start()
    client = runner.app.connection_for_write().default_channel.client
    raw = wait_for("the task on the queue", lambda: client.lindex(config.executor.queue, -1))
    message = json.loads(raw)
    task_id = message["headers"]["id"]
    body = json.loads(base64.b64decode(message["body"]))
    assert body[1] == {"report": "acme-weekly", "as_of": AS_OF, "force": False,
                       "provisional": True}
    with warnings.catch_warnings():  # the Redis backend's setex: a worker's own deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        runner.app.backend.store_result(task_id, {"ok": True, "lines": [
            "acme-weekly: sent to dean@acme.example (provisional)"]}, "SUCCESS")
    thread.join(30)
    [outcome] = outcomes
    assert outcome.kind is OutcomeKind.OK and "provisional" in outcome.output_tail
