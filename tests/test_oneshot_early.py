"""A one-shot's PDF child forked as ``generate`` starts (``cli.early``) and adopted later."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pypdf
import pytest

from reports.cli.early import one_report
from reports.config import ReportConfig
from reports.errors import RenderError, RenderMemoryError
from reports.execute.oneshot import OneShot, WarmWorker, start_pdf_child
from reports.report.build import RenderJob, render_report
from reports.report.privacy import PSEUDONYMOUS, Policy
from reports.report.warmup import warm_job
from tests._e2e import cli_env, run_cli, write_config
from tests._tasks import allocate_4gb


@pytest.mark.parametrize(("args", "expected"), [
    (["generate", "--report", "acme-weekly"], True),
    (["generate", "--report=acme-weekly", "--out", "r.pdf", "--json"], True),
    (["--config", "c.toml", "generate", "--org", "acme", "--period", "weekly"], True),
    (["generate", "--as-of", "2026-11-18", "--report", "x", "--config=c.toml"], True),
    (["--config", "generate", "jobs", "--report", "x"], False),  # a config file named so
    (["generate", "--all"], False),
    (["generate", "--report", "x", "--help"], False),
    (["generate"], False),
    (["send", "--report", "acme-weekly"], False),
    (["generate", "--out", "--report", "jobs"], False),  # --out's value, then no --report
    ([], False),
])
def test_the_command_line_for_one_report_is_told_apart(args: list[str], expected: bool) -> None:
    assert one_report(args) is expected


def add(a: int, b: int) -> int:
    return a + b


def no_warm_up() -> None:
    """Imports nothing: these tests check the hand-over, not WeasyPrint."""


def _marked(mark: Path) -> list[functools.partial[None]]:
    """The report's warm-up, as ``adopt`` sends it: one step that leaves a mark."""
    return [functools.partial(Path.touch, mark)]


def never_busy() -> bool:
    return False


def test_an_unadopted_child_takes_no_job() -> None:
    """Before ``adopt`` the child has no limits: the parent refuses to send it a job, and the
    child refuses one sent anyway (it ends without running it)."""
    worker = WarmWorker.unadopted(no_warm_up)
    with worker:
        with pytest.raises(RenderError, match="never given its limits"):
            worker.run(add, 2, 3)
        assert worker.conn.recv() == "ready"
        worker.conn.send((add, (2, 3)))
        with pytest.raises(EOFError):
            worker.conn.recv()
        worker.process.join(10)
        assert worker.process.exitcode == 0


def test_adopt_gives_the_child_its_limits_and_the_reports_warm_up(tmp_path: Path) -> None:
    mark = tmp_path / "warmed"
    worker = WarmWorker.unadopted(no_warm_up, busy=never_busy)
    with worker:
        assert worker.adopt(timeout_s=60, memory_mb=300,
                            warm=functools.partial(_marked, mark))
        deadline = time.monotonic() + 60  # the step waits WARM_UP_GRACE_S for a job first
        while not mark.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists()
        with pytest.raises(RenderMemoryError, match="300 MiB"):
            worker.run(allocate_4gb)


def _demo_job() -> RenderJob:
    report = ReportConfig(name="acme-weekly", org="acme-university", period="weekly",
                          schedule="0 6 * * 1", display_name="Acme University")
    return dataclasses.replace(
        warm_job(report, None, Policy(PSEUDONYMOUS, 10, True)), chart_dpi=50)


def test_a_one_shot_renders_in_the_pdf_child_it_adopts() -> None:
    job = _demo_job()
    early = start_pdf_child()
    with OneShot(timeout_s=120, memory_mb=1500, warm_job=job, pdf=early) as shot:
        assert shot.pdf is early
        rendered = shot.render(job)
    assert rendered.pdf == render_report(job).pdf
    assert not early.process.is_alive()


def test_a_pdf_child_gone_before_adoption_is_replaced() -> None:
    early = WarmWorker.unadopted(no_warm_up)
    early.kill()
    with OneShot(timeout_s=120, memory_mb=1500, warm_job=_demo_job(), pdf=early) as shot:
        assert shot.pdf is not early
        assert shot.pdf.run(add, 2, 3) == 5


def _session_processes(sid: int) -> list[int]:
    """The processes of session ``sid`` still running (not zombies)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6: session
            found.append(int(entry))
    return found


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script's path (``python -m reports.cli``) in a session of its own; fails
    if any process of that session outlives it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reports.cli", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        cwd=config.parent, stdin=subprocess.DEVNULL, start_new_session=True)
    out, err = proc.communicate(timeout=180)
    deadline = time.monotonic() + 10
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _session_processes(proc.pid) == []
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_generate_for_one_report_through_the_console_script(tmp_path: Path) -> None:
    config = write_config(tmp_path, api_url="embedded")
    done = _cli(config, "generate", "--report", "acme-weekly", "--as-of", "2026-11-18",
                "--out", str(tmp_path / "r.pdf"), "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    early = pypdf.PdfReader(tmp_path / "r.pdf")
    assert result["pages"] == len(early.pages) == 4
    # The same report from a PDF child forked the usual way (in this process: no early child;
    # same folder, so the same pseudonym key): the same text and images on every page.
    usual = run_cli(config, "generate", "--report", "acme-weekly", "--as-of", "2026-11-18",
                    "--out", str(tmp_path / "usual.pdf"))
    assert usual.returncode == 0, usual.stderr
    other = pypdf.PdfReader(tmp_path / "usual.pdf")
    assert [page.extract_text() for page in early.pages] == [
        page.extract_text() for page in other.pages]
    charts = [image.data for page in early.pages for image in page.images]
    assert len(charts) >= 3 and charts == [
        image.data for page in other.pages for image in page.images]


def test_a_pdf_child_never_adopted_ends_with_the_command(tmp_path: Path) -> None:
    """``--report`` names no report: exit 2 with one line, and the child forked at the start
    (never adopted) is gone too."""
    config = write_config(tmp_path, api_url="embedded")
    done = _cli(config, "generate", "--report", "no-such-report")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no-such-report" in done.stderr


def test_the_options_taken_for_values_are_the_commands_own() -> None:
    """``early`` skips the value of an option that takes one: the list must follow ``generate``
    (and the app's ``--config``), or a value could be read as the command or an option."""
    import typer.main

    from reports.cli import app
    from reports.cli.early import _VALUED

    group: Any = typer.main.get_command(app)  # typer's own copy of click's Group
    generate = group.commands["generate"]
    valued = {opt for params in (group.params, generate.params) for param in params
              if getattr(param, "is_flag", True) is False for opt in param.opts}
    assert "--report" in valued and "--json" not in valued
    assert valued == _VALUED


def test_the_console_script_forks_the_pdf_child_first() -> None:
    """In a fresh process (one thread) ``start`` forks the child that ``take`` hands over."""
    code = ("from reports.cli import early; early.start(['generate', '--report', 'x']); "
            "w = early.take(); print(w is not None and w.process.is_alive(), early.take()); "
            "w.close()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=cli_env())
    assert (done.returncode, done.stdout.split()) == (0, ["True", "None"]), done.stderr


def test_a_child_ignores_the_terminals_ctrl_c() -> None:
    """Ctrl-C reaches the whole process group; the parent ends its children itself."""
    import signal

    worker = WarmWorker.unadopted(no_warm_up)
    with worker:
        assert worker.conn.recv() == "ready"
        os.kill(worker.process.pid or 0, signal.SIGINT)
        time.sleep(0.2)
        assert worker.process.is_alive()
    assert worker.process.exitcode == 0
