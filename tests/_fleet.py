"""Real parts for the fleet tests: redis-server, a PostgreSQL schema, `ibl-reports worker`s.

- ``start_redis(folder)``: a redis-server on a free loopback port, nothing persisted
  (``--save '' --appendonly no``), in ``folder``; ``stop()`` kills it. Missing binary: skip,
  unless ``IBL_TEST_REQUIRE_SERVICES=1`` (CI), then fail.
- ``pg_schema_url()``: a fresh schema in the ``IBL_TEST_PG_URL`` database, named for this test
  (xdist-safe), as a URL whose ``search_path`` is that schema; dropped by ``drop_schema``.
- ``Fleet``: a config with N demo orgs in an orgs.csv, Celery on that Redis, state on that schema,
  and ``ibl-reports worker`` processes started and killed by the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from tests._e2e import cli_env, run_cli

REQUIRE_ENV = "IBL_TEST_REQUIRE_SERVICES"
PG_ENV = "IBL_TEST_PG_URL"
BROKER_ENV = "IBL_TEST_BROKER_URL"
STATE_ENV = "IBL_TEST_STATE_URL"


def need_binary(name: str) -> str:
    """The path of ``name``; skip (or fail under IBL_TEST_REQUIRE_SERVICES=1) without it."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install redis-server)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Redis:
    """A redis-server process on loopback."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        binary = need_binary("redis-server")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--databases", "256"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def start_redis(folder: Path) -> Redis:
    folder.mkdir(parents=True, exist_ok=True)
    return Redis(free_port(), folder).start()


def pg_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{PG_ENV} is not set (export {PG_ENV}=$(bash .ci/pg-up))")
        pytest.skip(f"set {PG_ENV} to run the fleet tests (.ci/run does)")
    return url


def pg_schema_url() -> tuple[str, str]:
    """(url with search_path = a new schema, schema name)."""
    base = pg_base_url()
    schema = f"fleet_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options={quote(f'-csearch_path={schema}')}", schema


def drop_schema(schema: str) -> None:
    engine = sa.create_engine(pg_base_url())
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


CONFIG = """
[api]
base_url = "{api_url}"
api_key_env = "IBL_TEST_KEY"
max_retries = 2

[email]
backend = "smtp"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
security = "none"
from = "ibl.ai reports <reports@example.org>"
timeout_s = 10
retry_backoff_s = 0.05

[archive]
dir = "archive"

[state]
url_env = "{state_env}"
stuck_after_s = 60
lease_s = {lease_s}

[render]
timeout_s = {render_timeout_s}

[scheduler]
run_timeout_s = {run_timeout_s}

[executor]
kind = "celery"
broker_url_env = "{broker_env}"
queue = "{queue}"
visibility_timeout_s = {visibility_s}
max_tasks_per_child = 50

[[reports]]
name = "{{org}}-weekly"
orgs_file = "orgs.csv"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
"""


@dataclass
class Fleet:
    """One test's fleet: config, env, and the worker processes it started."""

    folder: Path
    config: Path
    env: dict[str, str]
    orgs: list[str]
    workers: list[subprocess.Popen[str]] = field(default_factory=list)

    def recipients(self) -> dict[str, list[str]]:
        return {org: [f"dean@{org}.example", f"ops@{org}.example"] for org in self.orgs}

    def cli(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """``ibl-reports --config CONFIG ARGS...`` in this process (``run_cli``): a producer
        (``send --all``, ``db upgrade``) needs no process of its own; the workers are."""
        return run_cli(self.config, *args, timeout=timeout,
                       env={STATE_ENV: self.env[STATE_ENV], BROKER_ENV: self.env[BROKER_ENV]})

    def start_worker(self, concurrency: int = 1) -> subprocess.Popen[str]:
        with (self.folder / f"worker{len(self.workers)}.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "reports.cli", "--config", str(self.config), "worker",
                 "--concurrency", str(concurrency)],
                stdout=log, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=self.folder,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.workers.append(process)
        return process

    def wait_ready(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` workers answer a ping."""
        from reports.config import load_config
        from reports.execute.celery_app import make_app

        app = make_app(load_config(self.config, env=self.env), self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replies = app.control.inspect(timeout=0.5, limit=count).ping() or {}
            if len(replies) >= count:
                return
            for worker in self.workers:
                if worker.poll() is not None:
                    raise AssertionError(f"a worker exited: {self.logs()}")
        raise AssertionError(f"{count} workers did not come up: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.folder.glob("worker*.log")))

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)


@contextmanager
def fleet(
    folder: Path, *, redis: Redis, api_url: str, smtp_port: int, orgs: int,
    visibility_s: float = 25, lease_s: float = 2, render_timeout_s: float = 15,
    run_timeout_s: float = 20, upgrade: bool = True,
) -> Iterator[Fleet]:
    """A fleet config in ``folder``; every worker it started is killed at the end.

    ``upgrade``: the state schema is created as ``ibl-reports db upgrade`` does (in process);
    False leaves it empty (workers and producers refuse it until the upgrade)."""
    state_url, schema = pg_schema_url()
    if upgrade:
        from reports.state.ledger import Ledger

        Ledger(state_url, upgrade=True).close()
    names = [f"org-{i:02d}" for i in range(orgs)]
    rows = ["org,recipients"] + [f"{n},dean@{n}.example;ops@{n}.example" for n in names]
    (folder / "orgs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    db = 1 + uuid.uuid4().int % 255  # a Redis database of its own (xdist-safe)
    config = folder / "config.toml"
    config.write_text(CONFIG.format(
        api_url=api_url, smtp_port=smtp_port, state_env=STATE_ENV, broker_env=BROKER_ENV,
        queue=f"q-{uuid.uuid4().hex[:8]}", visibility_s=visibility_s, lease_s=lease_s,
        render_timeout_s=render_timeout_s, run_timeout_s=run_timeout_s,
    ), encoding="utf-8")
    env = {**cli_env(), STATE_ENV: state_url,
           BROKER_ENV: f"redis://127.0.0.1:{redis.port}/{db}"}
    running = Fleet(folder, config, env, names)
    try:
        yield running
    finally:
        running.stop_workers()
        drop_schema(schema)


def mails_per_recipient(received: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in received:
        for rcpt in message.rcpt_tos:
            counts[rcpt] = counts.get(rcpt, 0) + 1
    return counts


def run_states(fleet: Fleet, report: str) -> list[str]:
    """The states of ``report``'s runs, oldest first (read from the fleet's schema)."""
    engine = sa.create_engine(fleet.env[STATE_ENV])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT state FROM runs WHERE report = :r ORDER BY id"),
                                {"r": report}).all()
    except sa.exc.ProgrammingError:
        rows = []  # no table yet
    finally:
        engine.dispose()
    return [row[0] for row in rows]


def wait_for(what: str, check: Any, timeout: float = 120, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def pool_children(worker: subprocess.Popen[str]) -> list[int]:
    """The pids of a worker's prefork pool children."""
    path = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []
