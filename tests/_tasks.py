"""Module-level tasks for the render-worker tests (picklable: workers import them by name)."""

from __future__ import annotations

import time


def sleep_forever() -> None:
    """A render that hangs."""
    while True:
        time.sleep(1)


def allocate_4gb() -> int:
    """A render that eats memory."""
    block = bytearray(4 * 1024**3)
    return len(block)


def fail(message: str) -> None:
    """A render that raises."""
    raise ValueError(message)
