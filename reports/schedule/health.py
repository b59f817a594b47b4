"""The health file: the daemon rewrites it every tick so a supervisor can tell it is alive."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from reports.logs import log_event

# The daemon's events keep one logger name, whichever module of the stage logs them.
log = logging.getLogger("reports.schedule.scheduler")


class HealthFile:
    """The file at ``path``: last tick (UTC ISO), pid, state; an unwritable one warns once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._warned = False

    def write(self, state: str = "running") -> None:
        """Atomically rewrite the health file: last tick (UTC ISO), pid, state."""
        path = self.path
        data = {"last_tick": datetime.now(UTC).isoformat(timespec="seconds"),
                "pid": os.getpid(), "state": state}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log_event(log, "health.unwritable", level=logging.WARNING, path=str(path),
                          error=exc.strerror)
