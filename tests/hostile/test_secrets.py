"""The API key never leaks: not on stdout/stderr, not in the state database, the archive, the
outbox or any other file a run leaves behind, whether the run succeeds or fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reports.source.mock import Fault, MockKnobs
from tests._apiserver import RunningApi
from tests._e2e import API_KEY, SMTP_PASSWORD
from tests._smtp import make_tls, smtp_server
from tests.hostile import cli, hostile_config, one_error_line, send

Start = Callable[..., RunningApi]


def files_containing(folder: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param((), id="success"),
        pytest.param((Fault("status", endpoint="users", status=503,
                            headers=(("Retry-After", "0"),)),), id="503-retries"),
        pytest.param((Fault("html", endpoint="per-course"),), id="html-answer"),
        pytest.param((Fault("status", status=403),), id="403"),
    ],
)
def test_the_api_key_appears_nowhere(
    tmp_path: Path, api_server: Start, faults: tuple[Fault, ...]
) -> None:
    api = api_server(MockKnobs(courses=5, users=50, token=API_KEY, faults=faults))
    config = hostile_config(tmp_path, api_url=api.url)
    outputs = [send(config), cli(config, "runs", "--json"), cli(config, "archive", "list")]
    assert outputs[0].returncode == (0 if not faults else 1), outputs[0].stderr
    for proc in outputs:
        assert API_KEY not in proc.stdout + proc.stderr
    assert (tmp_path / "state.db").is_file()
    assert files_containing(tmp_path, API_KEY) == []


# -- the SMTP password ---------------------------------------------------------------------------


@pytest.mark.parametrize("server_password", [
    pytest.param(SMTP_PASSWORD, id="accepted"),
    pytest.param("another-password", id="wrong-535"),
])
def test_neither_the_smtp_password_nor_the_api_key_appears_anywhere(
    tmp_path: Path, api_server: Start, server_password: str
) -> None:
    api = api_server(MockKnobs(courses=5, users=40, token=API_KEY))
    tls = make_tls(tmp_path)
    with smtp_server(starttls=tls, require_starttls=True,
                     users={"reports-bot": server_password}) as server:
        email = (
            f'backend = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {server.port}\n'
            f'security = "starttls"\nusername = "reports-bot"\nca_file = "{tls.ca_file}"\n'
            'timeout_s = 5\nretry_backoff_s = 0.01\n'
        )
        config = hostile_config(tmp_path, api_url=api.url, email=email,
                                recipients=("dean@acme.example",))
        env = {"IBL_SMTP_PASSWORD": SMTP_PASSWORD}
        outputs = [send(config, env=env), cli(config, "runs", "--json", env=env)]
        received = [m.data for m in server.handler.messages]
    if server_password == SMTP_PASSWORD:
        assert outputs[0].returncode == 0, outputs[0].stderr
        assert len(received) == 1
    else:
        line = one_error_line(outputs[0])
        assert outputs[0].returncode == 1
        assert "dean@acme.example" in line and "535" in line and "reports-bot" in line, line
        assert received == []
    for proc in outputs:
        for secret in (SMTP_PASSWORD, API_KEY):
            assert secret not in proc.stdout + proc.stderr
    assert all(SMTP_PASSWORD.encode() not in data for data in received)
    assert (tmp_path / "state.db").is_file()
    for secret in (SMTP_PASSWORD, API_KEY):
        assert files_containing(tmp_path, secret) == []
