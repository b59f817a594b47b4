"""Shared pytest setup: a clean environment for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Environment variables the code reads; a developer's shell must not leak into tests.
_READ_ENV = ("IBL_API_KEY", "IBL_REPORTS_CONFIG", "IBL_SMTP_PASSWORD",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
             "AWS_DEFAULT_REGION")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _READ_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
