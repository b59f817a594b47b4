"""Running one scheduled send: the ``send`` command in its own process group, with a time limit.

The child logs its run and delivery transitions as JSON lines; the runner relays them through the
daemon's own log handler and keeps the tail of any other output for the alert.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from reports.config import Config
from reports.logs import LOG_FORMAT_ENV, log_event
from reports.schedule.firetimes import RunRequest

# The daemon's events keep one logger name, whichever module of the stage logs them.
log = logging.getLogger("reports.schedule.scheduler")
_child_log = logging.getLogger("reports.run")

KILL_GRACE_S = 5.0
OUTPUT_TAIL_CHARS = 2000


class OutcomeKind(enum.StrEnum):
    """How a run ended."""

    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    INTERRUPTED = "interrupted"  # stopped by a scheduler shutdown


@dataclass(frozen=True)
class RunOutcome:
    """The result of one run, as the daemon logs and alerts it."""

    kind: OutcomeKind
    exit_code: int | None = None
    error: str = ""
    output_tail: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK


class Runner(Protocol):
    """Runs one scheduled send to completion and reports how it ended."""

    def __call__(self, request: RunRequest) -> RunOutcome: ...


@runtime_checkable
class StoppableRunner(Protocol):
    """A runner that can be told the daemon is shutting down."""

    def __call__(self, request: RunRequest) -> RunOutcome: ...

    def stop(self, grace_s: float) -> None:
        """Let current runs finish for ``grace_s`` seconds, then terminate them."""


CommandBuilder = Callable[[RunRequest], Sequence[str]]


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}


def _relay_child_logs(output: str) -> str:
    """Re-log the child's JSON log lines here; return the tail of its other output."""
    plain: list[str] = []
    for line in output.splitlines():
        record: Any = None
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            fields = {k: v for k, v in record.items()
                      if k not in ("ts", "level", "logger", "event")}
            level = _LEVELS.get(str(record.get("level")), logging.INFO)
            log_event(_child_log, record["event"], level=level, **fields)
        else:
            plain.append(line)
    return "\n".join(plain)[-OUTPUT_TAIL_CHARS:].strip()


def send_command(config: Config) -> CommandBuilder:
    """The ``ibl-reports send`` command line for a request: the same path as a manual send."""
    source = str(config.source)

    def build(request: RunRequest) -> list[str]:
        return [
            sys.executable, "-m", "reports.cli", "--config", source, "send",
            "--report", request.report, "--as-of", request.as_of.isoformat(),
        ]

    return build


class SubprocessRunner:
    """Runs a command per request in its own process group, with a time limit.

    A run past ``timeout_s`` has its whole process group terminated (SIGTERM, then SIGKILL after
    a few seconds) and ends TIMED_OUT; it never blocks later runs.
    """

    def __init__(
        self, command: CommandBuilder, *, timeout_s: float, kill_grace_s: float = KILL_GRACE_S,
        env: Mapping[str, str] | None = None, poll_s: float = 0.05,
    ) -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.env = dict(env) if env is not None else None
        self.poll_s = poll_s
        self._stop_at: float | None = None

    def stop(self, grace_s: float) -> None:
        """Current runs may continue ``grace_s`` more seconds; then they are terminated."""
        self._stop_at = time.monotonic() + grace_s

    def __call__(self, request: RunRequest) -> RunOutcome:
        started = time.monotonic()
        deadline = started + self.timeout_s
        with tempfile.TemporaryFile() as output:
            try:
                # The child logs its run and delivery transitions as JSON lines, which are
                # relayed below through this daemon's own log handler and format.
                child_env = {**(self.env if self.env is not None else os.environ),
                             LOG_FORMAT_ENV: "json"}
                proc = subprocess.Popen(
                    list(self.command(request)), stdin=subprocess.DEVNULL, stdout=output,
                    stderr=subprocess.STDOUT, start_new_session=True, env=child_env,
                )
            except OSError as exc:
                return RunOutcome(
                    OutcomeKind.FAILED, error=f"could not start the run: {exc.strerror}"
                )
            log_event(log, "run.process", report=request.report, period=request.period.key,
                      pid=proc.pid)
            kind: OutcomeKind | None = None
            while True:
                try:
                    code = proc.wait(timeout=self.poll_s)
                    break
                except subprocess.TimeoutExpired:
                    now = time.monotonic()
                    if now >= deadline:
                        kind = OutcomeKind.TIMED_OUT
                    elif self._stop_at is not None and now >= self._stop_at:
                        kind = OutcomeKind.INTERRUPTED
                    if kind is not None:
                        code = self._terminate(proc)
                        break
            duration = time.monotonic() - started
            output.seek(0)
            tail = _relay_child_logs(output.read().decode("utf-8", "replace"))
        if kind is OutcomeKind.TIMED_OUT:
            return RunOutcome(
                kind, code, f"the run took longer than run_timeout_s = {self.timeout_s:g} s and "
                "was stopped", tail, duration,
            )
        if kind is OutcomeKind.INTERRUPTED:
            return RunOutcome(kind, code, "the scheduler shut down during the run", tail, duration)
        if code == 0:
            return RunOutcome(OutcomeKind.OK, 0, "", tail, duration)
        last = tail.splitlines()[-1] if tail else ""
        return RunOutcome(
            OutcomeKind.FAILED, code, f"the send command exited with status {code}"
            + (f": {last}" if last else ""), tail, duration,
        )

    def _terminate(self, proc: subprocess.Popen[bytes]) -> int:
        for sig, wait_s in ((signal.SIGTERM, self.kill_grace_s), (signal.SIGKILL, 30.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                return proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        return proc.wait()
