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


def charts_that_fail(job: object) -> None:
    """A charts child whose drawing raises."""
    raise ValueError("the chart font is broken")


def charts_that_eat_memory(job: object) -> int:
    """A charts child that runs out of memory."""
    return allocate_4gb()


def slow_charts(seconds: float, job: object) -> object:
    """The job's charts, drawn after ``seconds`` more."""
    from reports.report.build import render_charts

    time.sleep(seconds)
    return render_charts(job)  # type: ignore[arg-type]


def inherited() -> dict[str, int | bool]:
    """What a render worker got from the process it was forked from, before its first job: how
    many objects are frozen (out of every collection's way), and whether WeasyPrint's C types,
    the shared font configuration and English's language were looked up already."""
    import gc

    from reports.execute.preload import C_TYPES
    from reports.lang import resolve
    from reports.report.pdf import font_config
    from reports.report.weasy import weasyprint

    parsed = weasyprint.text.ffi.ffi._parsed_types
    return {"frozen": gc.get_freeze_count(),
            "c_types": all(cdecl in parsed for cdecl in C_TYPES),
            "font_config": font_config.cache_info().currsize == 1,
            "english": resolve.cache_info().currsize >= 1}


def loaded(names: tuple[str, ...]) -> dict[str, bool]:
    """Which of the modules ``names`` a (render) process has imported so far."""
    import sys

    return {name: name in sys.modules for name in names}
