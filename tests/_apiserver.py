"""Fixture: the demo API served by uvicorn over loopback in a background thread.

``api_server(knobs)`` starts a server on a free port and returns a ``RunningApi`` with its base
URL and the app (whose ``stats`` count requests and concurrency); every server started by a
test is stopped when the test ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from reports.source.mock import DemoApp, MockKnobs, create_app, listening_socket
from reports.source.mock.serve import server as uvicorn_server


@dataclass(frozen=True)
class RunningApi:
    """A demo API listening on loopback."""

    url: str
    app: DemoApp


class _Server:
    def __init__(self, knobs: MockKnobs) -> None:
        self.app = create_app(knobs)
        # The socket and server mock-api uses (TCP_NODELAY on accepted connections, httptools).
        self.sock = listening_socket("127.0.0.1", 0)
        self.server = uvicorn_server(self.app, graceful_shutdown_s=1)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> RunningApi:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo API did not start")
            time.sleep(0.01)
        port = self.sock.getsockname()[1]
        return RunningApi(f"http://127.0.0.1:{port}", self.app)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def api_server() -> Iterator[Callable[..., RunningApi]]:
    """A factory: ``api_server(knobs=None)`` starts a demo API and returns where it listens."""
    servers: list[_Server] = []

    def start(knobs: MockKnobs | None = None) -> RunningApi:
        server = _Server(knobs or MockKnobs())
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
