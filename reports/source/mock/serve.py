"""Serving the demo API over HTTP: ``ibl-reports mock-api``, the benches and the tests' servers.

uvicorn with httptools (its C HTTP parser; h11 costs the server about twice the CPU per request),
no lifespan, websockets or access log, on a socket bound with ``proto = IPPROTO_TCP``: asyncio
sets TCP_NODELAY only on connections accepted from such a socket, and without it Nagle's
algorithm and the client's delayed ACK add 40 ms to answers on a kept-alive connection.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from reports.errors import UsageError
from reports.source.mock.knobs import MockKnobs

if TYPE_CHECKING:
    import uvicorn

    from reports.source.mock.app import DemoApp


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0 = a free port), or a UsageError saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
    except socket.gaierror as exc:
        raise UsageError(f"mock-api: cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"mock-api: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return sock


def server(app: DemoApp, *, graceful_shutdown_s: int | None = None) -> uvicorn.Server:
    """A uvicorn server of ``app`` (not started: ``.run(sockets=[...])``)."""
    import uvicorn

    config = uvicorn.Config(
        app, http="httptools", ws="none", lifespan="off", log_level="warning",
        access_log=False, backlog=2048, timeout_graceful_shutdown=graceful_shutdown_s,
    )
    return uvicorn.Server(config)


def serve(host: str, port: int, knobs: MockKnobs | None = None, *,
          sock: socket.socket | None = None) -> None:
    """Run the demo API until interrupted, on ``sock`` or a new socket bound to host:port."""
    from reports.source.mock.app import create_app

    listening = sock if sock is not None else listening_socket(host, port)
    server(create_app(knobs)).run(sockets=[listening])
