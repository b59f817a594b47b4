"""The built-in demo Data Manager API: a deterministic synthetic dataset behind the three endpoints.

``create_app(knobs)`` builds the ASGI app (on ``mock.asgi``, no web framework; used in-process
through ``httpx.ASGITransport`` for ``base_url = "embedded"``, and by the tests over real
HTTP); ``serve(host, port, knobs)`` runs it with uvicorn for ``ibl-reports mock-api``
(``reports.source.mock.serve``).
"""

from __future__ import annotations

from reports.source.mock.app import DemoApp, create_app
from reports.source.mock.knobs import Fault, MockKnobs, ServerStats
from reports.source.mock.serve import listening_socket, serve

__all__ = [
    "DemoApp", "Fault", "MockKnobs", "ServerStats", "create_app", "listening_socket", "serve",
]
