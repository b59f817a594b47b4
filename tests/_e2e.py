"""Helpers for end-to-end tests: a config file pointing at real loopback servers, and the CLI.

``run_cli`` runs the CLI in this process through typer's runner: the same command line, a clean
environment (``cli_env``), the config's folder as the working directory, stdout and stderr apart
and the exit code; a renderer's fork server started once serves every later run (a subprocess
paid ~2-4 s of imports and fork-server start for each). ``run_cli_process`` and ``popen_cli``
start ``python -m reports.cli`` as a process: for what only a process shows (a SIGKILL, its
exit, structured logs set up once per process).
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

API_KEY = "ibl-test-key-4f1e9c2a7d"
SMTP_PASSWORD = "smtp-test-pass-8b3d0e6f"


def write_config(
    folder: Path, *, api_url: str, smtp_port: int | None = None, recipients: tuple[str, ...] = (
        "dean@acme.example", "programs@acme.example",
    ), extra: str = "", org: str = "acme-university", lease_s: float | None = None,
) -> Path:
    """A config.toml in ``folder`` using the demo API at ``api_url`` and, if given, SMTP.

    ``lease_s``: a short run lease, for a test that kills a send and sends again at once."""
    email = (
        f'[email]\nbackend = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\n'
        'security = "none"\nfrom = "ibl.ai reports <reports@example.org>"\ntimeout_s = 10\n'
        if smtp_port is not None
        else '[email]\nbackend = "file"\noutbox_dir = "outbox"\n'
        'from = "ibl.ai reports <reports@example.org>"\n'
    )
    rcpts = ", ".join(f'"{r}"' for r in recipients)
    text = f"""
[api]
base_url = "{api_url}"
api_key_env = "IBL_TEST_KEY"
max_concurrency = 8
max_retries = 2

{email}
[archive]
dir = "archive"

[state]
url = "sqlite:///state.db"
{f"lease_s = {lease_s}" if lease_s is not None else ""}

[render]
timeout_s = 120

[[reports]]
name = "acme-weekly"
org = "{org}"
display_name = "Acme University"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
recipients = [{rcpts}]
{extra}
"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: the test key set, nothing of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBL_")}
    env["IBL_TEST_KEY"] = API_KEY
    return env


def run_cli(
    config: Path, *args: str, timeout: float = 180, check: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``ibl-reports --config CONFIG ARGS...`` in this process (``env`` adds variables).

    As a subprocess would: the environment is ``cli_env()`` plus ``env`` (nothing else of this
    process's ``IBL_*``), the working directory the config's folder, stdin empty; an exception
    that escapes the CLI appears as a traceback on stderr with exit 1. A run past ``timeout``
    dumps every thread's stack and ends this test process (xdist reports it).
    """
    from typer.testing import CliRunner

    from reports.cli import app

    argv = ["--config", str(config), *args]
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("IBL_")}
    overrides.update({k: v for k, v in cli_env().items() if k.startswith("IBL_")})
    overrides.update(env or {})
    previous = os.getcwd()
    os.chdir(config.parent)
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        result = CliRunner().invoke(app, argv, env=overrides)
    finally:
        faulthandler.cancel_dump_traceback_later()
        os.chdir(previous)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    proc = subprocess.CompletedProcess(["ibl-reports", *argv], result.exit_code,
                                       result.stdout, stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def run_cli_process(
    config: Path, *args: str, timeout: float = 180, check: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``ibl-reports --config CONFIG ARGS...`` in a subprocess (``env`` adds variables)."""
    proc = subprocess.run(
        [sys.executable, "-m", "reports.cli", "--config", str(config), *args],
        capture_output=True, text=True, timeout=timeout, env={**cli_env(), **(env or {})},
        cwd=config.parent,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def sigkill_cli(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the CLI process alone and reap it.

    Its pipes are closed, not read to the end: a render worker it started may still hold them
    while it notices its parent is gone (the fork server finishes importing first, which takes
    seconds on a loaded machine)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def popen_cli(config: Path, *args: str) -> subprocess.Popen[str]:
    """The CLI started in the background (to be killed by a test)."""
    return subprocess.Popen(
        [sys.executable, "-m", "reports.cli", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        cwd=config.parent, stdin=subprocess.DEVNULL,
    )
