"""Shared pytest setup: a clean environment for every test."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Let the suite's processes keep Python's bytecode cache, as Python does by default.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (containers often set it) and the virtualenv was made
    by a plain ``uv sync``, nothing ever writes a ``.pyc``, and each of the suite's processes (the
    xdist workers, the CLI and worker subprocesses, the render children's parents) would compile
    WeasyPrint, matplotlib and NumPy from source again, ~2.7 s of CPU each. Removed here, before
    xdist starts its workers, so that they and every process they start inherit the default.
    """
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False
    _temporary_files_in_memory(config)
    config.addinivalue_line(
        "markers", "long: a test of many seconds (processes, kills, timeouts); the xdist "
        "workers run these first")


RAM_DISK = "/dev/shm"
RAM_DISK_FREE_BYTES = 1 << 30


def _temporary_files_in_memory(config: pytest.Config) -> None:
    """Put the suite's temporary files (``tmp_path``: SQLite state, archives, outboxes, and the
    ``TMPDIR`` of every process the suite starts) on the RAM file system, if there is one with
    1 GiB free and neither ``TMPDIR`` nor ``--basetemp`` says otherwise.

    A SQLite ledger commits each step with an fsync: on the shared development machine's disk a
    new ledger took 0.5-1.5 s to create (0.07 s in RAM), and ``tests/hostile/test_mail_hostile.py``
    with the SQLite half of ``tests/test_ledger.py`` took 61 and 51 s instead of 49 and 40 s
    (alternated, load 7-10, the disk busy with other jobs; at load 2-4 on a quiet disk six
    end-to-end files took the same time either way). Nothing here tests durability across a
    power cut; a SIGKILLed process leaves the same files behind on either file system. Set in
    the controller before xdist starts its workers: they inherit ``TMPDIR`` and get their
    ``--basetemp`` under it.
    """
    if config.option.basetemp or os.environ.get("TMPDIR") or not os.path.isdir(RAM_DISK):
        return
    try:
        stats = os.statvfs(RAM_DISK)
    except OSError:
        return
    if stats.f_bavail * stats.f_frsize < RAM_DISK_FREE_BYTES or not os.access(RAM_DISK, os.W_OK):
        return
    os.environ["TMPDIR"] = RAM_DISK
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, the tests marked ``long`` go first, in file order, the others after them.

    ``--dist worksteal`` gives each worker a contiguous part of this list and lets a worker that
    ran out take the end of another's; a long test collected late could start last and run alone
    while the other core idles (the fleet's SIGKILL case takes ~24 s). First, the long tests all
    fall in the first worker's part and run one after the other (the fleet's worker processes
    never compete with each other's), while the other worker runs the short ones; the ends of
    both parts are short tests, shared out by stealing. Every worker sorts alike (a stable sort
    of the same collection), as xdist requires. Without xdist the order is the files'.
    """
    if "PYTEST_XDIST_WORKER" in os.environ:
        items.sort(key=lambda item: item.get_closest_marker("long") is None)


# Environment variables the code reads; a developer's shell must not leak into tests.
_READ_ENV = ("IBL_API_KEY", "IBL_REPORTS_CONFIG", "IBL_SMTP_PASSWORD",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
             "AWS_DEFAULT_REGION", "FORCE_COLOR", "TTY_COMPATIBLE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _READ_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
