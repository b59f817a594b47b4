"""Where a run's wall time goes: consecutive laps that add up to the total, by construction.

``process_age_s()`` is how long this process has existed (Linux ``/proc/self/stat``; ``None``
elsewhere), so ``generate --json`` can count the interpreter's start and the imports before the
command ran as ``startup_s``.
"""

from __future__ import annotations

import os
import time


def process_age_s() -> float | None:
    """Seconds since this process started, to the kernel clock tick (10 ms), or None."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in ticks
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, now - started)


class Laps:
    """Named laps: ``lap(name)`` charges the time since the previous lap to ``name``."""

    def __init__(self) -> None:
        self.start = self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> float:
        """Charge the time since the last lap to ``name``; returns that time."""
        now = time.perf_counter()
        spent, self._last = now - self._last, now
        self.laps[name] = self.laps.get(name, 0.0) + spent
        return spent

    def total(self) -> float:
        """Seconds since the first lap began."""
        return time.perf_counter() - self.start

    def charge_render(self, render_s: float, stages: dict[str, float]) -> None:
        """Split the time since the fetch (lap ``ledger_s`` so far) between the ledger and a
        render of ``render_s`` that ran meanwhile, so that the laps still add up: the ledger's
        share is what it took beyond the render; of the render, its own ``stages`` are theirs
        (added by the caller), the rest (starts, hand-overs, exits) is ``worker_start_s``."""
        since_fetch = self.laps["ledger_s"] + self.lap("render")
        self.laps["ledger_s"] = max(0.0, since_fetch - render_s)
        self.laps["worker_start_s"] = self.laps.get("worker_start_s", 0.0) + (
            min(render_s, since_fetch) - sum(stages.values()))
