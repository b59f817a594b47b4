"""Shared pytest setup: a clean environment for every test."""

from __future__ import annotations

import os
import sys
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

# Environment variables the code reads; a developer's shell must not leak into tests.
_READ_ENV = ("IBL_API_KEY", "IBL_REPORTS_CONFIG", "IBL_SMTP_PASSWORD",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
             "AWS_DEFAULT_REGION", "FORCE_COLOR", "TTY_COMPATIBLE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _READ_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
