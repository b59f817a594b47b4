"""Fixtures of the hostile suite: the demo API over loopback HTTP (small, keyed)."""

from __future__ import annotations

from tests._apiserver import api_server  # noqa: F401  (fixture)
