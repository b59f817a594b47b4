"""How the web UI starts a send: ``ibl-reports send ...`` in a child process, like the scheduler.

The page answers at once; the child records its run in the ledger (where the run pages show
it) and its exit is logged (``web.action.exit``) with its last line of stderr, which by the
CLI's rules names what went wrong and holds no secret. A thread per child reaps it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from reports.logs import log_event

_log = logging.getLogger("reports.web.runner")


class SendRunner(Protocol):
    """Starts ``ibl-reports send ARGS`` in the background (the seam tests can replace)."""

    def start(self, args: Sequence[str], *, what: str) -> None: ...


class ChildSendRunner:
    """``python -m reports.cli --config CONFIG send ARGS`` as a detached child."""

    def __init__(self, config_file: Path) -> None:
        self._config = config_file.resolve()
        self._threads: list[threading.Thread] = []

    def start(self, args: Sequence[str], *, what: str) -> None:
        """Start the child and a thread that logs how it ended."""
        argv = [sys.executable, "-m", "reports.cli", "--config", str(self._config), "send", *args]
        # A file, not a pipe: the send's render workers may outlive it holding a pipe open.
        errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed by the reaper thread)
        try:
            child = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                start_new_session=True, cwd=self._config.parent, env=dict(os.environ),
            )
        except OSError:
            errors.close()
            raise
        log_event(_log, "web.action.start", action=what, pid=child.pid)
        thread = threading.Thread(target=self._reap, args=(child, errors, what), daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    @staticmethod
    def _reap(child: subprocess.Popen[bytes], errors: IO[bytes], what: str) -> None:
        child.wait()
        with errors:
            errors.seek(0)
            text = errors.read().decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.strip()]
        log_event(
            _log, "web.action.exit", level=logging.WARNING if child.returncode else logging.INFO,
            action=what, pid=child.pid, code=child.returncode,
            error=lines[-1][:300] if child.returncode and lines else None,
        )

    def join(self, timeout: float = 60.0) -> None:
        """Wait for the children started so far (tests, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)
