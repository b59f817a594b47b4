"""Running one scheduled send: the ``send`` command in its own process group, with a time limit.

The child logs its run and delivery transitions as JSON lines; the runner relays each one as it
comes, with the child's own time, through the daemon's log handler, and keeps the tail of any
other output for the alert.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from reports.config import Config
from reports.logs import LOG_FORMAT_ENV, log_event, relay_event
from reports.schedule.firetimes import RunRequest

# The daemon's events keep one logger name, whichever module of the stage logs them.
log = logging.getLogger("reports.schedule.scheduler")
_child_log = logging.getLogger("reports.run")

KILL_GRACE_S = 5.0
HELD_EXIT_CODE = 3
OUTPUT_TAIL_CHARS = 2000


class OutcomeKind(enum.StrEnum):
    """How a run ended."""

    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    INTERRUPTED = "interrupted"  # stopped by a scheduler shutdown
    HELD = "held"  # exit 3: the freshness gate held the period; nothing was sent


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
MAX_LINE_BYTES = 1_000_000
"""A longer line without a newline is taken as it is (plain output, not an event)."""
DRAIN_S = 2.0
"""After the child exits, how long its output pipe may stay open (a grandchild holding it)."""


def _relay_line(line: str) -> bool:
    """Re-log one of the child's JSON log lines here, with its own time; False if not one."""
    record: Any = None
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
    if not (isinstance(record, dict) and isinstance(record.get("event"), str)):
        return False
    created = None
    with contextlib.suppress(TypeError, ValueError):
        created = datetime.fromisoformat(str(record.get("ts")))
    fields = {k: v for k, v in record.items() if k not in ("ts", "level", "logger", "event")}
    relay_event(_child_log, record["event"], fields,
                level=_LEVELS.get(str(record.get("level")), logging.INFO),
                created=created if created is not None and created.tzinfo else None)
    return True


class ChildOutput:
    """The child's output as it comes: log lines relayed at once, the rest kept as a tail."""

    def __init__(self) -> None:
        self._partial = b""
        self._plain: collections.deque[str] = collections.deque()
        self._plain_chars = 0

    def feed(self, data: bytes) -> None:
        """Take a chunk of output; every complete line is handled now."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > MAX_LINE_BYTES:
            lines.append(self._partial)
            self._partial = b""
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> str:
        """Handle a last line without a newline; return the tail of the non-log output."""
        if self._partial:
            self._line(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        return "\n".join(self._plain)[-OUTPUT_TAIL_CHARS:].strip()

    def _line(self, line: str) -> None:
        if _relay_line(line):
            return
        self._plain.append(line)
        self._plain_chars += len(line) + 1
        while self._plain_chars > 2 * OUTPUT_TAIL_CHARS and len(self._plain) > 1:
            self._plain_chars -= len(self._plain.popleft()) + 1


def _pump(selector: selectors.BaseSelector, fd: int, sink: ChildOutput, timeout: float) -> bool:
    """Wait up to ``timeout`` for output and feed all that is there; False at end of file."""
    if not selector.select(timeout):
        return True
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        sink.feed(data)


def send_command(config: Config) -> CommandBuilder:
    """The ``ibl-reports send`` command line for a request: the same path as a manual send."""
    source = str(config.source)

    def build(request: RunRequest) -> list[str]:
        return [
            sys.executable, "-m", "reports.cli", "--config", source, "send",
            "--report", request.report, "--as-of", request.as_of.isoformat(),
            *(["--provisional"] if request.provisional else []),
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
        try:
            # The child logs its run and delivery transitions as JSON lines, relayed as they
            # come through this daemon's own log handler and format.
            child_env = {**(self.env if self.env is not None else os.environ),
                         LOG_FORMAT_ENV: "json"}
            proc = subprocess.Popen(
                list(self.command(request)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True, env=child_env,
            )
        except OSError as exc:
            return RunOutcome(
                OutcomeKind.FAILED, error=f"could not start the run: {exc.strerror}"
            )
        log_event(log, "run.process", report=request.report, period=request.period.key,
                  pid=proc.pid)
        assert proc.stdout is not None
        sink = ChildOutput()
        kind: OutcomeKind | None = None
        with proc.stdout, selectors.DefaultSelector() as selector:
            fd = proc.stdout.fileno()
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
            is_open = True
            while (code := proc.poll()) is None:
                if is_open:
                    is_open = _pump(selector, fd, sink, self.poll_s)
                else:
                    time.sleep(self.poll_s)
                now = time.monotonic()
                if now >= deadline:
                    kind = OutcomeKind.TIMED_OUT
                elif self._stop_at is not None and now >= self._stop_at:
                    kind = OutcomeKind.INTERRUPTED
                if kind is not None:
                    code = self._terminate(proc)
                    break
            duration = time.monotonic() - started
            drain_until = time.monotonic() + DRAIN_S
            while is_open and time.monotonic() < drain_until:
                is_open = _pump(selector, fd, sink, min(self.poll_s, DRAIN_S))
        tail = sink.close()
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
        if code == HELD_EXIT_CODE:
            return RunOutcome(OutcomeKind.HELD, code, last or "held by the freshness gate", tail,
                              duration)
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
