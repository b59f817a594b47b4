"""`send --all` on the local executor (no broker): a few orgs from an orgs.csv, the demo API over
HTTP, aiosmtpd and SQLite, in this process (warm render workers, a capped thread pool)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from reports.config import load_config
from reports.errors import UsageError
from reports.sendall import send_all
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY, cli_env
from tests._fleet import mails_per_recipient
from tests._smtp import smtp_server

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

[archive]
dir = "{folder}/archive"

[state]
url = "sqlite:///{folder}/state.db"

[executor]
kind = "local"
concurrency = 2

[[reports]]
name = "{{org}}-weekly"
orgs_file = "orgs.csv"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
"""


def test_local_send_all_sends_each_org_once_and_a_second_run_sends_nothing(
    tmp_path: Path, api_server: Callable[..., RunningApi]  # noqa: F811
) -> None:
    served = api_server(MockKnobs(token=API_KEY, courses=4, users=40))
    orgs = ["org-a", "org-b"]
    (tmp_path / "orgs.csv").write_text(
        "org,recipients\n" + "".join(f"{o},dean@{o}.example;ops@{o}.example\n" for o in orgs),
        encoding="utf-8")
    env = cli_env()
    with smtp_server() as server:
        (tmp_path / "config.toml").write_text(CONFIG.format(
            api_url=served.url, smtp_port=server.port, folder=tmp_path), encoding="utf-8")
        config = load_config(tmp_path / "config.toml", env=env)

        def send(**kw: bool) -> tuple[int, list[str], list[str]]:
            out: list[str] = []
            err: list[str] = []
            code = send_all(config, as_of=date(2026, 11, 18), force=False, clock=lambda:
                            datetime.now(UTC), env=env, echo=out.append, echo_err=err.append,
                            progress=False, wait=kw.get("wait", True))
            return code, out, err

        code, out, err = send()
        assert (code, err) == (0, [])
        assert sorted(line.split(" ", 1)[0] for line in out) == [f"{o}-weekly" for o in orgs]
        assert all(f"sent to dean@{o}.example, ops@{o}.example" in line
                   for o, line in zip(orgs, sorted(out), strict=True)), out
        expected = {f"{who}@{o}.example": 1 for o in orgs for who in ("dean", "ops")}
        assert mails_per_recipient(server.handler.messages) == expected

        code, out, err = send()
        assert (code, err) == (0, [])
        assert [line.split(": ", 1)[1] for line in out] == [
            "already delivered to every recipient"] * 2
        assert mails_per_recipient(server.handler.messages) == expected
        with pytest.raises(UsageError, match="--no-wait needs"):
            send(wait=False)
