"""What a new operator meets on the command line (issue 18): --config on either side of the
command, help that reads right, usage errors with exit 2, tables that say where they cut, a
prune that asks before deleting everything, schedules that fire as crontab says.

The CLI runs in-process through typer's runner (cheap); the state database and archive are real
(SQLite under tmp_path) and filled through the ledger and the archive as a run fills them.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from reports.cli import app
from reports.delivery.archive import Archive
from reports.report.periods import Period
from reports.state.ledger import Ledger
from reports.state.runs import RunState
from tests._e2e import cli_env

CONFIG = """
[api]
base_url = "embedded"

[archive]
dir = "archive"

[state]
url = "sqlite:///state.db"

[[reports]]
name = "acme-weekly"
org = "acme-university"
period = "weekly"
schedule = "{schedule}"
timezone = "Europe/Berlin"
recipients = ["dean@acme.example"]
"""

PDF = b"%PDF-1.7\n% test\n%%EOF\n"


def config_file(folder: Path, schedule: str = "0 7 * * 1", extra: str = "") -> Path:
    path = folder / "config.toml"
    path.write_text(CONFIG.format(schedule=schedule) + extra, encoding="utf-8")
    return path


def cli(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``ibl-reports ARGS``."""
    result = CliRunner().invoke(app, list(args), env={"IBL_REPORTS_LOG_FORMAT": None})
    return result.exit_code, result.stdout, result.stderr


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------- --config and help


def test_config_is_taken_before_and_after_the_command(tmp_path: Path) -> None:
    config = str(config_file(tmp_path))
    before = cli("--config", config, "jobs", "--json")
    after = cli("jobs", "--json", "--config", config)
    nested = cli("archive", "list", "--config", config, "--json")
    assert before[0] == after[0] == nested[0] == 0, (before, after, nested)
    assert json.loads(before[1])[0]["report"] == json.loads(after[1])[0]["report"] == (
        "acme-weekly"
    )
    assert json.loads(nested[1]) == []
    code, _, err = cli("--config", config, "jobs", "--config", str(tmp_path / "other.toml"))
    assert code == 2 and "--config" in err and "given twice" in err


@pytest.mark.parametrize(
    "command",
    [["generate"], ["send"], ["schedule"], ["jobs"], ["runs"], ["mock-api"], ["web"],
     ["worker"], ["queue", "status"], ["archive", "list"], ["archive", "verify"],
     ["archive", "prune"]],
    ids=lambda c: " ".join(c),
)
def test_help_shows_no_value_after_a_flag_and_every_option_is_explained(
    command: Sequence[str],
) -> None:
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert "<bool>" not in out
    assert "--config PATH" in out
    options = re.findall(r"^  (--\S+(?: \S+)?) {2,}(.*)$", out, flags=re.M)
    assert options, out
    for option, text in options:
        assert text.strip(), f"{' '.join(command)} {option} has no help text"
    if "--json" in out:
        assert re.search(r"^  --json +\S", out, flags=re.M), out


def test_mock_api_help_shows_the_size_defaults() -> None:
    out = cli("mock-api", "--help")[1]
    assert "courses per org (default: 20-60" in " ".join(out.split())
    assert "users per org (default: 500-3000" in " ".join(out.split())


# ---------------------------------------------------------------- usage errors


def test_a_bad_test_address_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    code, _, err = cli("--config", str(config_file(tmp_path)), "send", "--report",
                         "acme-weekly", "--to", "me at globex")
    assert code == 2
    assert error_lines(err) == [error_lines(err)[0]] and "me at globex" in err
    assert err.startswith("error: --to me at globex: ")
    assert not (tmp_path / "state.db").exists()  # refused before anything ran


def test_runs_for_an_unknown_report_names_it(tmp_path: Path) -> None:
    config = str(config_file(tmp_path))
    for command in (["runs"], ["archive", "list"]):
        code, _, err = cli("--config", config, *command, "--report", "nope")
        assert code == 2, command
        assert len(error_lines(err)) == 1
        assert "no report named 'nope'" in err and "acme-weekly" in err


# ---------------------------------------------------------------- tables


LONG_ERROR = (
    "courses (org 'acme-university'): the API could not be reached: connection refused by "
    "api.example.org port 443 after 3 attempts; check [api] base_url and the network"
)


def test_runs_and_jobs_cut_long_errors_at_a_word_with_an_ellipsis_and_show_the_zone(
    tmp_path: Path,
) -> None:
    config = str(config_file(tmp_path))
    with Ledger(f"sqlite:///{tmp_path / 'state.db'}") as ledger:
        run_id = ledger.start_run("acme-weekly", "acme-university",
                                  Period(date(2026, 11, 16), date(2026, 11, 22)))
        ledger.transition(run_id, RunState.FAILED, error=LONG_ERROR)
    code, out, _ = cli("--config", config, "runs")
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())
    assert "started (UTC)" in flat
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", flat)
    cut = flat[flat.index("courses (org") :]
    assert "\u2026" in cut
    words = LONG_ERROR.split()
    kept = cut[: cut.index("\u2026")].split()
    # every word shown is a whole word of the error, in order (rich may wrap it over lines)
    assert kept == words[: len(kept)], kept
    assert len(kept) < len(words)

    code, out, _ = cli("--config", config, "jobs")
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())
    cut = flat[flat.index("courses (org") :]
    kept = cut[: cut.index("\u2026")].split()
    assert kept == words[: len(kept)], kept


# ---------------------------------------------------------------- archive prune


def archived(tmp_path: Path, *periods: Period) -> list[Path]:
    archive = Archive(tmp_path / "archive")
    paths = []
    with Ledger(f"sqlite:///{tmp_path / 'state.db'}") as ledger:
        for period in periods:
            written = archive.write("acme-university", "acme-weekly", period, PDF)
            ledger.record_archive("acme-weekly", "acme-university", period,
                                  path=str(written.path), sha256=written.sha256,
                                  size=written.size)
            paths.append(written.path)
    return paths


def test_prune_dry_run_lists_and_keeps_and_deleting_everything_needs_yes(
    tmp_path: Path,
) -> None:
    config = str(config_file(tmp_path))
    old = Period(date(2024, 1, 1), date(2024, 1, 7))
    recent = Period(date(2026, 11, 16), date(2026, 11, 22))
    old_pdf, recent_pdf = archived(tmp_path, old, recent)

    code, out, _ = cli("--config", config, "archive", "prune", "--older-than", "365d",
                       "--dry-run")
    assert code == 0
    assert f"would remove {old_pdf}" in out and str(recent_pdf) not in out
    assert "1 archived PDF would be removed\n" in out
    assert old_pdf.exists()

    for age in ("0d", "0w"):
        code, _, err = cli("--config", config, "archive", "prune", "--older-than", age)
        assert code == 2 and len(error_lines(err)) == 1
        assert "every archived file (2)" in err and "--yes" in err and "--dry-run" in err
    assert old_pdf.exists() and recent_pdf.exists()

    code, out, _ = cli("--config", config, "archive", "prune", "--older-than", "365d")
    assert code == 0 and "1 archived PDF removed\n" in out
    assert not old_pdf.exists() and recent_pdf.exists()

    # the last file left: pruning it would empty the archive, so it needs --yes too
    code, _, err = cli("--config", config, "archive", "prune", "--older-than", "1d")
    assert code == 2 and "--yes" in err and recent_pdf.exists()
    code, out, _ = cli("--config", config, "archive", "prune", "--older-than", "0d", "--yes")
    assert code == 0 and "1 archived PDF removed\n" in out and not recent_pdf.exists()


# ---------------------------------------------------------------- schedules


def test_day_of_month_and_weekday_fire_on_either_as_in_crontab(tmp_path: Path) -> None:
    config = str(config_file(tmp_path, schedule="0 7 1 * 1"))
    code, out, err = cli("--config", config, "jobs", "--json")
    assert code == 0, err
    got = datetime.fromisoformat(json.loads(out)[0]["next_local"])
    zone = ZoneInfo("Europe/Berlin")
    now = datetime.now(UTC).astimezone(zone)
    day = now.date()
    while True:  # the first 07:00 after now on a 1st or a Monday
        fire = datetime(day.year, day.month, day.day, 7, tzinfo=zone)
        if fire > now and (day.day == 1 or day.weekday() == 0):
            break
        day += timedelta(days=1)
    assert got == fire


def test_a_schedule_that_never_fires_is_refused_at_load(tmp_path: Path) -> None:
    config = str(config_file(tmp_path, schedule="0 8 31 2 *"))
    code, _, err = cli("--config", config, "jobs")
    assert code == 2 and len(error_lines(err)) == 1
    assert err.endswith(": reports[1].schedule: '0 8 31 2 *' never fires: no month has that "
                        "day (day 31, month 2)\n"), err


# ---------------------------------------------------------------- mock-api


def test_mock_api_prints_the_base_url_and_the_key_to_export(tmp_path: Path) -> None:
    config = config_file(tmp_path).read_text(encoding="utf-8").replace(
        '[api]\nbase_url = "embedded"', '[api]\nbase_url = "embedded"\napi_key_env = "ACME_KEY"')
    (tmp_path / "config.toml").write_text(config, encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "reports.cli", "mock-api", "--config", str(tmp_path / "config.toml"),
         "--port", str(port), "--courses", "2", "--users", "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env(),
        cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline().rstrip("\n") for _ in range(3)]
        url = f"http://127.0.0.1:{port}"
        assert lines[1] == (f'to use it, set [api] base_url = "{url}" in config.toml and export '
                            "any key:"), lines
        assert lines[2] == "export ACME_KEY=demo", lines
        # the line works: the server answers a request made with that key
        for _ in range(100):
            try:
                answer = httpx.get(
                    f"{url}/api/ai-analytics/audience/orgs/acme/active-users/per-course",
                    headers={"Authorization": "Api-Token demo"}, timeout=5,
                )
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert answer.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
