"""The render worker: limits, error translation, batches, cache folders."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from reports.errors import RenderError, RenderMemoryError, RenderTimeoutError
from reports.execute.cachedirs import prepare_environment
from reports.execute.worker import render_many, run_limited
from tests._tasks import allocate_4gb, fail, sleep_forever


def add(a: int, b: int) -> int:
    return a + b


def render_fail() -> None:
    raise RenderError("the template 'weekly' is broken")


def die_by_signal() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def exit_quietly() -> None:
    os._exit(3)


def big_result() -> bytes:
    return b"%PDF" + b"x" * (8 * 1024 * 1024)


def render_small_pdf() -> tuple[bytes, int]:
    from datetime import UTC, datetime

    from reports.report.pdf import PdfMetadata, html_to_pdf

    meta = PdfMetadata(title="T", author="A", subject="S", created=datetime(2026, 1, 1, tzinfo=UTC))
    html = "<html lang=en><body><h2>Hello</h2><table><tr><td>1</td></tr></table></body></html>"
    result = html_to_pdf(html, base_dir=Path("."), allowed_roots=[], metadata=meta)
    return result.data[:5], result.pages


def square_or_fail(n: int) -> int:
    if n == 3:
        raise ValueError("three is not allowed")
    if n == 4:
        sleep_forever()
    return n * n


def test_normal_result_comes_back() -> None:
    assert run_limited(add, 2, 3, timeout_s=30, memory_mb=1500) == 5


def test_a_real_pdf_render_fits_the_default_limits() -> None:
    assert run_limited(render_small_pdf, timeout_s=60, memory_mb=1500) == (b"%PDF-", 1)


def test_large_result_comes_back_whole() -> None:
    data = run_limited(big_result, timeout_s=30, memory_mb=1500)
    assert len(data) == 8 * 1024 * 1024 + 4


def test_sleeping_forever_is_stopped_within_the_limit() -> None:
    started = time.monotonic()
    with pytest.raises(RenderTimeoutError, match=r"longer than 1 s"):
        run_limited(sleep_forever, timeout_s=1.0, memory_mb=1500)
    assert time.monotonic() - started < 4.0
    # The parent survives and the worker still works afterwards.
    assert run_limited(add, 1, 1, timeout_s=30, memory_mb=1500) == 2


def test_allocating_4gb_hits_the_memory_limit() -> None:
    with pytest.raises(RenderMemoryError, match=r"out of memory \(limit 800 MiB\)"):
        run_limited(allocate_4gb, timeout_s=30, memory_mb=800)
    assert run_limited(add, 2, 2, timeout_s=30, memory_mb=800) == 4


def test_child_exception_becomes_one_line_render_error() -> None:
    with pytest.raises(RenderError) as info:
        run_limited(fail, "bad value\nsecond line", timeout_s=30, memory_mb=1500)
    assert type(info.value) is RenderError
    assert str(info.value) == "the render failed: ValueError: bad value"


def test_render_error_in_child_keeps_its_message() -> None:
    with pytest.raises(RenderError, match=r"^the render failed: the template 'weekly' is broken$"):
        run_limited(render_fail, timeout_s=30, memory_mb=1500)


@pytest.mark.parametrize(
    ("func", "error", "pattern"),
    [
        pytest.param(die_by_signal, RenderMemoryError, "killed by SIGKILL", id="sigkill"),
        pytest.param(exit_quietly, RenderError, "exited with code 3", id="exit"),
    ],
)
def test_child_that_dies_without_answer(func: object, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        run_limited(func, timeout_s=30, memory_mb=1500)  # type: ignore[arg-type]


def test_render_many_keeps_going_after_failures() -> None:
    # The limit counts from the child's start: warm the start method first, or a loaded machine
    # spends the limit starting the fork server and items 1 and 2 time out too. Warm, a child
    # starts in milliseconds: 2 s is ample for the others and is what the hung item 4 costs.
    assert run_limited(add, 1, 1, timeout_s=60, memory_mb=1500) == 2
    started = time.monotonic()
    outcomes = render_many(square_or_fail, [1, 2, 3, 4, 5], workers=2, timeout_s=2, memory_mb=1500)
    assert [o.item for o in outcomes] == [1, 2, 3, 4, 5]
    assert [o.value for o in outcomes if o.ok] == [1, 4, 25]
    errors = {o.item: o.error for o in outcomes if not o.ok}
    assert isinstance(errors[3], RenderError)
    assert "three is not allowed" in str(errors[3])
    assert isinstance(errors[4], RenderTimeoutError)
    assert time.monotonic() - started < 20


def test_unwritable_home_gets_a_private_cache_once(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = {"HOME": str(blocker / "home")}  # cannot be created: its parent is a file
    changes = prepare_environment(env)
    assert set(changes) == {"XDG_CACHE_HOME", "MPLCONFIGDIR"}
    cache = Path(env["XDG_CACHE_HOME"])
    assert cache.is_dir()
    assert cache.stat().st_uid == os.getuid()
    assert (cache.stat().st_mode & 0o077) == 0
    assert env["MPLCONFIGDIR"].startswith(str(cache))
    assert prepare_environment(env) == {}  # second call: nothing to do


def test_writable_home_is_left_alone(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert prepare_environment(env) == {}
    assert env == {"HOME": str(tmp_path)}
    assert (tmp_path / ".cache").is_dir()
