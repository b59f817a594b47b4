"""Structured logs: one line per event, text or JSON, secrets never printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from reports.logs import configure_logging, log_event, remove_handler, secrets_from_env

SECRET = "sk-live-7f3a9c0e21"
PASSWORD = "hunter2-smtp-pw"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    yield io.StringIO()


def _logger() -> logging.Logger:
    return logging.getLogger("reports.test_logs")


def test_text_lines_carry_the_event_and_its_fields(stream: io.StringIO) -> None:
    handler = configure_logging("text", stream=stream)
    try:
        log_event(_logger(), "run.started", report="acme-weekly", period="2026-04-13_2026-04-19",
                  reason="catch-up", exit_code=None)
        log_event(_logger(), "run.failed", level=logging.ERROR, error="API down: 503 twice")
    finally:
        remove_handler(handler)
    first, second = stream.getvalue().splitlines()
    assert first.endswith(
        " INFO run.started report=acme-weekly period=2026-04-13_2026-04-19 reason=catch-up"
    )
    assert second.endswith(' ERROR run.failed error="API down: 503 twice"')


def test_json_lines_are_one_object_each(stream: io.StringIO) -> None:
    handler = configure_logging("json", stream=stream)
    try:
        log_event(_logger(), "delivery.sent", report="r", recipient="dean@acme.example",
                  attempts=1)
        _logger().warning("plain message with\na newline")
    finally:
        remove_handler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    event, plain = (json.loads(line) for line in lines)
    assert event["event"] == "delivery.sent" and event["level"] == "info"
    assert event["recipient"] == "dean@acme.example" and event["attempts"] == 1
    assert event["ts"].endswith("Z")
    assert plain["event"] == "log" and plain["message"] == "plain message with\na newline"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_redacted_everywhere(stream: io.StringIO, fmt: str) -> None:
    handler = configure_logging(fmt, stream=stream, secrets=[SECRET, PASSWORD, ""])
    try:
        log_event(_logger(), "run.failed", error=f"401 for key {SECRET}", url=f"x?k={SECRET}")
        _logger().info("login with %s failed", PASSWORD)
        try:
            raise RuntimeError(f"auth failed for {PASSWORD}")
        except RuntimeError:
            _logger().exception("crash")
    finally:
        remove_handler(handler)
    out = stream.getvalue()
    assert SECRET not in out and PASSWORD not in out
    assert out.count("***") >= 4
    assert "auth failed for ***" in out  # the traceback is kept, minus the secret


def test_secrets_from_env_and_database_url() -> None:
    env = {"IBL_API_KEY": SECRET, "IBL_SMTP_PASSWORD": "", "OTHER": "x"}
    found = secrets_from_env(
        env, ["IBL_API_KEY", "IBL_SMTP_PASSWORD", "MISSING"],
        ["postgresql://reports:db-pass-42@db/reports", "sqlite:///state.db"],
    )
    assert found == [SECRET, "db-pass-42"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format"):
        configure_logging("yaml")  # type: ignore[arg-type]
