"""The API key never leaks: not on stdout/stderr, not in the state database, the archive, the
outbox or any other file a run leaves behind, whether the run succeeds or fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reports.mock import Fault, MockKnobs
from tests._apiserver import RunningApi
from tests._e2e import API_KEY
from tests.hostile import cli, hostile_config, send

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
