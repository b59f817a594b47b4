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
