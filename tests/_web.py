"""Fixture: the web UI served by uvicorn on a loopback port, over a state database with history.

``web_site`` (session scope) writes a config with three users (an operator, a viewer of
``acme-university`` only, a viewer of ``beta-college`` only), archives two PDFs, records runs
(one with a failed delivery) and serves the real app in a background thread. Sends started by
actions go to a recording runner (the seam ``create_app`` takes), so no mail leaves the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher

from reports.config import Config, load_config
from reports.delivery.archive import Archive
from reports.report.periods import Period, PeriodKind
from reports.state.ledger import Ledger
from reports.state.runs import RunState
from reports.web.app import create_app

PASSWORDS = {"op": "op-pass-5a1c", "acme-viewer": "acme-pass-77d0", "beta-viewer": "beta-pass-9e2f"}
SECRET = "s" * 48
ACME_PERIOD = Period(date(2026, 11, 16), date(2026, 11, 22), PeriodKind.WEEKLY)
BETA_PERIOD = Period(date(2026, 11, 9), date(2026, 11, 15), PeriodKind.WEEKLY)
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

# A one-page PDF, small enough to write here; the archive does not care what it holds.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type /Pages /Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

# A 1x1 PNG, as a chart is inlined in a report's HTML.
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
       "rkJggg==")

_HASHES: dict[str, str] = {}


def _hash(password: str) -> str:
    """A cheap argon2 hash (verifying uses the cost written in the hash; tests need no more)."""
    if password not in _HASHES:
        _HASHES[password] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(
            password
        )
    return _HASHES[password]


def write_web_config(folder: Path, *, users: bool = True) -> Path:
    """A config with two reports (two orgs) and, if ``users``, the three test users."""
    users_toml = "" if not users else f"""
[web]
login_max_failures = 3
login_lockout_s = 600

[[web.users]]
name = "op"
password_hash = "{_hash(PASSWORDS['op'])}"
role = "operator"

[[web.users]]
name = "acme-viewer"
password_hash = "{_hash(PASSWORDS['acme-viewer'])}"
orgs = ["acme-university"]

[[web.users]]
name = "beta-viewer"
password_hash = "{_hash(PASSWORDS['beta-viewer'])}"
role = "viewer"
orgs = ["beta-college"]
"""
    text = f"""
[email]
backend = "file"
outbox_dir = "outbox"

[archive]
dir = "archive"

[state]
url = "sqlite:///state.db"
{users_toml}
[[reports]]
name = "acme-weekly"
org = "acme-university"
display_name = "Acme University"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
recipients = ["dean@acme.example", "programs@acme.example"]

[[reports]]
name = "beta-weekly"
org = "beta-college"
period = "weekly"
schedule = "30 6 * * 1"
timezone = "America/New_York"
recipients = ["head@beta.example"]
"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class RecordingRunner:
    """Remembers the ``send`` arguments an action would have run."""

    started: list[tuple[str, ...]] = field(default_factory=list)

    def start(self, args: Sequence[str], *, what: str) -> None:
        self.started.append(tuple(args))


@dataclass(frozen=True)
class Seeded:
    """What the fixture put in the state database."""

    acme_run: int
    beta_run: int
    acme_pdf: Path
    beta_pdf: Path
    provisional_pdf: Path


def preview_html(name: str) -> bytes:
    """A report's HTML as the archive keeps it: inline style, a ``data:`` image, and a script
    and an outside image that the preview's CSP must block."""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Preview of "
        f"{name}</title><style>h1 {{ color: rgb(0, 114, 178); }}</style></head><body>"
        f"<h1>{name}</h1><img id=\"chart\" alt=\"chart\" src=\"data:image/png;base64,{PNG}\">"
        "<img id=\"outside\" alt=\"outside\" src=\"http://127.0.0.1:9/x.png\">"
        "<script>document.title = 'script ran'</script></body></html>"
    ).encode()


def seed(config: Config) -> Seeded:
    """Archive PDFs (with their HTML) and record a run of each report (acme's with a failed
    delivery); an earlier provisional acme PDF has no HTML (archived before previews)."""
    ticks = iter(T0 + timedelta(seconds=i) for i in range(1000))
    archive = Archive(config.archive.dir)
    with Ledger(config.state.url, clock=lambda: next(ticks)) as ledger:
        paths = {}
        # An earlier provisional copy of acme's period, kept beside the final one.
        early = archive.write("acme-university", "acme-weekly", ACME_PERIOD, PDF + b"early",
                              "provisional")
        ledger.record_archive("acme-weekly", "acme-university", ACME_PERIOD,
                              path=str(early.path), sha256=early.sha256, size=early.size,
                              edition="provisional")
        paths["provisional"] = early.path
        runs = {}
        for name, org, period, recipients in (
            ("acme-weekly", "acme-university", ACME_PERIOD,
             ["dean@acme.example", "programs@acme.example"]),
            ("beta-weekly", "beta-college", BETA_PERIOD, ["head@beta.example"]),
        ):
            run_id = ledger.start_run(name, org, period)
            ledger.transition(run_id, RunState.RENDERING, data_hash="d" * 64)
            written = archive.write(org, name, period, PDF + name.encode(),
                                    html=preview_html(name))
            ledger.record_archive(name, org, period, path=str(written.path),
                                  sha256=written.sha256, size=written.size, data_hash="d" * 64,
                                  html=written.html, run_id=run_id)
            paths[name] = written.path
            ledger.transition(run_id, RunState.ARCHIVED, detail=str(paths[name]))
            ledger.transition(run_id, RunState.DELIVERING)
            ids = {r: f"<{i}.{name}@example.org>" for i, r in enumerate(recipients)}
            ledger.plan_deliveries(name, period, recipients, ids, force=False, run_id=run_id)
            for recipient in recipients:
                ledger.mark_sending(name, period, recipient)
                if recipient == "programs@acme.example":
                    ledger.mark_failed(name, period, recipient, transient=False,
                                       reply="550 5.1.1 mailbox unavailable")
                else:
                    ledger.mark_sent(name, period, recipient, "250 2.0.0 queued as X1")
            failed = name == "acme-weekly"
            ledger.transition(run_id, RunState.FAILED if failed else RunState.DONE,
                              error="programs@acme.example: 550" if failed else None)
            runs[name] = run_id
    return Seeded(runs["acme-weekly"], runs["beta-weekly"], paths["acme-weekly"],
                  paths["beta-weekly"], paths["provisional"])


@dataclass
class WebSite:
    """The running UI and what it serves."""

    url: str
    config: Config
    ledger: Ledger
    runner: RecordingRunner
    seeded: Seeded
    clients: list[httpx.Client] = field(default_factory=list)
    signed_in: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        """A fresh client (no cookies) that does not follow redirects (closed at the end)."""
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        self.clients.append(client)
        return client

    def close(self) -> None:
        """Close every client handed out."""
        for client in self.clients:
            client.close()

    def login(self, name: str) -> httpx.Client:
        """A client signed in as ``name`` (one per user for the session)."""
        if name not in self.signed_in:
            self.signed_in[name] = self._sign_in(name)
        return self.signed_in[name]

    def _sign_in(self, name: str, password: str | None = None) -> httpx.Client:
        client = self.client()
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"name": name, "csrf": token,
                                             "password": password or PASSWORDS[name]})
        assert answer.status_code == 303, answer.text
        return client

    def digest(self, path: Path) -> str:
        """The SHA-256 of an archived file."""
        return hashlib.sha256(path.read_bytes()).hexdigest()


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class _Server:
    def __init__(self, app: object) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,  # type: ignore[arg-type]
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web UI did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Serve ``app`` on a loopback port for the duration of the block; yields its URL."""
    server = _Server(app)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    """The UI over a seeded state database, on a loopback port the OS chose."""
    folder = tmp_path_factory.mktemp("web")
    config = load_config(write_web_config(folder))
    seeded = seed(config)
    ledger = Ledger(config.state.url)
    runner = RecordingRunner()
    app = create_app(config, secret=SECRET, ledger=ledger, runner=runner,
                     clock=lambda: T0)
    server = _Server(app)
    url = server.start()
    site = WebSite(url, config, ledger, runner, seeded)
    try:
        yield site
    finally:
        site.close()
        server.stop()
        ledger.close()


def require_chromium() -> str:
    """Debian's Chromium, or a skip (a failure when IBL_TEST_REQUIRE_SERVICES=1)."""
    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("IBL_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{path} is missing and IBL_TEST_REQUIRE_SERVICES=1 (apt-get install "
                        "chromium)")
        pytest.skip(f"{path} is missing (apt-get install chromium)")
    return path
