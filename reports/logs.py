"""Structured logging: one line per event, as plain text or JSON, with secrets redacted.

An event is a short dotted name (``run.started``, ``run.failed``, ``delivery.sent``) plus fields::

    log_event(logger, "run.started", report="acme-weekly", period="2026-11-09_2026-11-15")

renders as ``2026-11-16T06:00:00Z INFO run.started report=acme-weekly period=...`` in text mode,
or as one JSON object per line with ``--log-format json``. ``configure_logging`` installs one
handler on the ``reports`` logger with a ``RedactFilter``: every configured secret (API key, SMTP
password, the password in a database URL) is replaced by ``***`` in the message, the fields and
any traceback before a formatter sees the record.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Literal
from urllib.parse import unquote, urlsplit

LogFormat = Literal["text", "json"]
REDACTED = "***"
ROOT_LOGGER = "reports"

# Attribute names under which log_event stores its data on a LogRecord.
_EVENT = "event"
_FIELDS = "fields"


LOG_FORMAT_ENV = "IBL_REPORTS_LOG_FORMAT"
"""When set (text or json), every command logs its run and delivery transitions to stderr."""

# A library-style default: without a configured handler nothing is printed (not even warnings
# through logging.lastResort), so a command's stderr stays one line per failure.
logging.getLogger(ROOT_LOGGER).addHandler(logging.NullHandler())

def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one structured event (a dotted name plus key=value fields)."""
    logger.log(level, event, extra={_EVENT: event, _FIELDS: fields})


def relay_event(
    logger: logging.Logger, event: str, fields: Mapping[str, Any], *, level: int = logging.INFO,
    created: datetime | None = None,
) -> None:
    """Log an event another process logged, keeping its own time (``created``) when known."""
    if not logger.isEnabledFor(level):
        return
    record = logger.makeRecord(logger.name, level, "(relayed)", 0, event, (), None,
                               extra={_EVENT: event, _FIELDS: dict(fields)})
    if created is not None:
        record.created = created.timestamp()
        record.msecs = (record.created - int(record.created)) * 1000
    logger.handle(record)


class RedactFilter(logging.Filter):
    """Replaces every configured secret in a record's message, fields and traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.redact(str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, Mapping):
            setattr(record, _FIELDS, {k: self._value(v) for k, v in fields.items()})
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _text_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``TIME LEVEL event key=value ...`` on one line (tracebacks indented below)."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, _EVENT, None)
        fields: Mapping[str, Any] = getattr(record, _FIELDS, None) or {}
        head = f"{_timestamp(record)} {record.levelname} "
        if event:
            line = head + str(event) + "".join(
                f" {k}={_text_value(v)}" for k, v in fields.items() if v is not None
            )
        else:
            line = head + f"{record.name}: {record.getMessage()}"
        line = line.replace("\n", "\\n")
        if record.exc_text:
            line += "\n" + "\n".join("    " + ln for ln in record.exc_text.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, _EVENT, None)
        fields: Mapping[str, Any] = getattr(record, _FIELDS, None) or {}
        data: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event or "log",
        }
        if not event:
            data["message"] = record.getMessage()
        for key, value in fields.items():
            if key not in data:
                data[key] = value
        if record.exc_text:
            data["traceback"] = record.exc_text
        return json.dumps(data, ensure_ascii=False, default=str, sort_keys=False)


def configure_logging(
    log_format: LogFormat = "text",
    *,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
    level: int = logging.INFO,
) -> logging.Handler:
    """Install one redacting handler on the ``reports`` logger; returns it (to remove later)."""
    if log_format not in ("text", "json"):
        raise ValueError(f"unknown log format {log_format!r} (text or json)")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactFilter(secrets))
    logger = logging.getLogger(ROOT_LOGGER)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler


def remove_handler(handler: logging.Handler) -> None:
    """Undo ``configure_logging``."""
    logging.getLogger(ROOT_LOGGER).removeHandler(handler)
    handler.close()


def secrets_from_env(
    env: Mapping[str, str], env_names: Iterable[str], urls: Iterable[str] = ()
) -> list[str]:
    """The secret values to redact: the named env vars' values and passwords inside URLs."""
    found = [env[name] for name in env_names if env.get(name)]
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:  # an unparsable URL has no password we can find
            continue
        if password:
            # A URL may carry it percent-encoded; the decoded form is what a library prints.
            found.extend({password, unquote(password)})
    return found
