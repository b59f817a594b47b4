"""What every ``ibl-reports`` command shares: ``--config`` before or after the command, the
config loaded once, errors turned into one line and an exit code, tables, and the start run
with the cyclic garbage collector off.

``--config PATH`` is an option of the root group (``ibl-reports --config c.toml generate``) and,
added here to every subcommand and subgroup, also of each command
(``ibl-reports generate --config c.toml``); giving two different paths is a usage error.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup

from reports.errors import ReportsError, UsageError

T = TypeVar("T")

CONFIG_HELP = "config file (default: $IBL_REPORTS_CONFIG, else ./config.toml)"
JSON_HELP = "print JSON (one array on stdout) instead of a table"


class _State:
    config_path: str | None = None
    logging: logging.Handler | None = None  # the command's structured-log handler
    noticed = False
    gc_paused = False  # the start turned the collector off; the command's body turns it on


state = _State()


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Run the app with the cyclic garbage collector off until a command's body begins
    (``guard``), then freeze what the start built (``reports.report.gcpause.lifelong``):
    parsing builds typer's commands and pydantic's adapters, live objects only, and collections
    meanwhile find nothing (~10-15 ms of every start; ``--help`` and ``jobs`` < 0.5 s). The
    body runs with the collector on; a long-running one (the scheduler, a worker) needs it."""
    state.gc_paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        _resume_gc()


def _resume_gc() -> None:
    if state.gc_paused:
        state.gc_paused = False
        gc.freeze()
        gc.enable()


def now() -> datetime:
    return datetime.now(UTC)


def set_config_path(value: str | None) -> None:
    """Record ``--config``; the same option given twice with two paths is refused."""
    if value is None:
        return
    if state.config_path is not None and state.config_path != value:
        raise typer.BadParameter(
            f"given twice ({state.config_path} and {value}); give it once",
            param_hint="'--config'",
        )
    state.config_path = value


def _config_callback(_ctx: Any, _param: Any, value: str | None) -> None:
    set_config_path(value)


def _add_config_option(command: Any, option: Any) -> None:
    if not any(p.name == "config" for p in command.params):
        command.params.append(option)
    for sub in getattr(command, "commands", {}).values():
        _add_config_option(sub, option)


class ConfigAnywhere(TyperGroup):
    """The root group: every subcommand (and subgroup) also takes ``--config PATH``.

    The root's own ``--config`` option is copied onto each of them, passing its value to
    ``set_config_path`` instead of to the command's function.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        root = next(p for p in self.params if p.name == "config")
        option = copy.copy(root)
        option.expose_value = False
        option.callback = _config_callback
        for command in self.commands.values():
            _add_config_option(command, option)


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def guard(fn: Callable[[], T]) -> T:
    """Run a command body (the collector on again: ``starting``), turning our errors into one
    line on stderr and an exit code."""
    _resume_gc()
    try:
        return fn()
    except ReportsError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def load(*, logs: bool = True) -> Any:
    """The config; with $IBL_REPORTS_LOG_FORMAT set, also structured logs on stderr."""
    from reports.config import load_config
    from reports.logs import LOG_FORMAT_ENV

    config = load_config(state.config_path)
    if not state.noticed:  # e.g. a language without a catalog: one line, once per command
        for line in config.notices():
            typer.echo(f"warning: {line}", err=True)
        state.noticed = True
    fmt = os.environ.get(LOG_FORMAT_ENV)
    if logs and fmt and state.logging is None:
        from reports.logs import configure_logging, secrets_from_env

        if fmt not in ("text", "json"):
            raise UsageError(f"{LOG_FORMAT_ENV}={fmt!r}: use text or json")
        handler = configure_logging("json" if fmt == "json" else "text", secrets=secrets_from_env(
            os.environ,
            [config.api.api_key_env, config.email.password_env, config.executor.broker_url_env,
             config.privacy.pseudonym_key_env],
            [config.state.url, os.environ.get(config.executor.broker_url_env, "")],
        ))
        state.logging = handler
    return config


def end_command() -> None:
    """Undo what the command set up in this process (its log handler): the app may run again."""
    if state.logging is not None:
        from reports.logs import remove_handler

        remove_handler(state.logging)
        state.logging = None


def utc_minutes(iso: str) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM UTC`` (a naive one is taken as UTC)."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_day(value: str | None, what: str) -> date | None:
    if value is None:
        return None
    from reports.report.periods import parse_date

    return parse_date(value, what=what)


def table(headers: list[str], rows: list[list[str]]) -> None:
    """A table on stdout, as wide as the terminal, at least 120 columns (rich's; drawn without
    importing rich when the output is plain text: ``reports.cli.tables``)."""
    from reports.cli.tables import write_table

    write_table(headers, rows)
