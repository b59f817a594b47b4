"""Hostile inputs and faults: every failure is loud, named, and leaves nothing half-done.

Helpers shared by the hostile suite: a config with small retry/time limits, the CLI run in-process
or, with ``process=True``, as a subprocess (optionally with extra environment, e.g. the SMTP
password), and the checks that a failed run left no PDF, no temporary file and no mail behind.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests._e2e import run_cli, run_cli_process

AS_OF = "2026-11-26"
ORG = "acme-university"
ARCHIVED = Path("archive") / ORG / "acme-weekly" / "2026-11-16_2026-11-22.pdf"

API_DEFAULTS = {
    "max_concurrency": 4,
    "max_retries": 2,
    "timeout_s": 2,
    "deadline_s": 20,
    "retry_after_cap_s": 5,
    "page_size": 100,
}


def hostile_config(
    folder: Path,
    *,
    api_url: str,
    api: dict[str, object] | None = None,
    email: str | None = None,
    recipients: tuple[str, ...] = ("dean@acme.example", "programs@acme.example"),
    report_extra: str = "",
    top: str = "",
    org: str = ORG,
    name: str = "acme-weekly",
    display_name: str = "Acme University",
) -> Path:
    """A config.toml in ``folder``: small limits, file outbox unless ``email`` is given."""
    settings = {**API_DEFAULTS, **(api or {})}
    api_lines = "\n".join(f"{k} = {_toml(v)}" for k, v in settings.items())
    email = email or 'backend = "file"\noutbox_dir = "outbox"\n'
    if "from" not in email:
        email += 'from = "ibl.ai reports <reports@example.org>"\n'
    rcpts = ", ".join(_toml(r) for r in recipients)
    text = f"""{top}
[api]
base_url = "{api_url}"
api_key_env = "IBL_TEST_KEY"
{api_lines}

[email]
{email}
[archive]
dir = "archive"

[state]
url = "sqlite:///state.db"

[render]
timeout_s = 60
memory_mb = 1500

[[reports]]
name = {_toml(name)}
org = {_toml(org)}
display_name = {_toml(display_name)}
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
recipients = [{rcpts}]
{report_extra}
"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, str):
        escaped = (
            value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r")
            .replace("\n", "\\n").replace("\x00", "\\u0000")
        )
        return f'"{escaped}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cli(
    config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``ibl-reports --config CONFIG ARGS...`` in-process (a subprocess with ``process``)."""
    run = run_cli_process if process else run_cli
    return run(config, *args, env=env, timeout=timeout)


def generate(
    config: Path, *args: str, env: dict[str, str] | None = None, process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``generate --report acme-weekly --as-of AS_OF``."""
    return cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, *args, env=env,
               process=process)


def send(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``send --report acme-weekly --as-of AS_OF``."""
    return cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF, *args, env=env)


def archived_files(folder: Path) -> list[Path]:
    """Every file under the archive folder (PDFs and any leftover temporary file)."""
    root = folder / "archive"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def outbox_files(folder: Path) -> list[Path]:
    """Every file the file outbox holds."""
    root = folder / "outbox"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The process failed with exactly one line on stderr; returns it."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def assert_failed_cleanly(
    proc: subprocess.CompletedProcess[str], folder: Path, *needles: str, code: int = 1,
) -> str:
    """Exit ``code``, one stderr line containing every needle, nothing archived or mailed."""
    line = one_error_line(proc)
    assert proc.returncode == code, proc.stderr
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert archived_files(folder) == []
    assert outbox_files(folder) == []
    return line
