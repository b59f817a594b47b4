"""Helpers for the scheduler tests: config files, a recording runner, a child daemon."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports.config import Config, load_config
from reports.report.periods import Period
from reports.schedule.firetimes import RunRequest
from reports.schedule.runner import OutcomeKind, RunOutcome

REPO = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "_sched_child.py"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(
    folder: Path, reports: list[Mapping[str, Any]], *, scheduler: Mapping[str, Any] | None = None,
    alerts: list[str] | None = None, state_url: str | None = None, extra: str = "",
) -> Config:
    """Write config.toml in ``folder`` (state.db and health file inside it) and load it."""
    lines = ["[state]", f"url = {_toml(state_url or 'sqlite:///state.db')}", "stuck_after_s = 2",
             "", "[scheduler]"]
    sched = {"health_file": "scheduler.health", **(scheduler or {})}
    lines += [f"{k} = {_toml(v)}" for k, v in sched.items()]
    lines += ["", "[alerts]", f"recipients = {_toml(alerts or [])}", "", extra, ""]
    for report in reports:
        lines.append("[[reports]]")
        entry = {"org": "acme", "recipients": ["dean@acme.example"], **report}
        lines += [f"{k} = {_toml(v)}" for k, v in entry.items()]
        lines.append("")
    path = folder / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return load_config(path)


class RecordingRunner:
    """A runner that records every request and marks its period delivered (like a send)."""

    def __init__(self, done: set[tuple[str, Period]] | None = None,
                 outcome: OutcomeKind = OutcomeKind.OK) -> None:
        self.requests: list[RunRequest] = []
        self.done = done if done is not None else set()
        self.outcome = outcome
        self._cond = threading.Condition()

    def __call__(self, request: RunRequest) -> RunOutcome:
        with self._cond:
            self.requests.append(request)
            if self.outcome is OutcomeKind.OK:
                self.done.add((request.report, request.period))
            self._cond.notify_all()
        return RunOutcome(self.outcome, 0 if self.outcome is OutcomeKind.OK else 1,
                          "" if self.outcome is OutcomeKind.OK else "boom")

    def is_done(self, report: Any, period: Period) -> bool:
        return (report.name, period) in self.done

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RunRequest]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count and time.monotonic() < deadline:
                self._cond.wait(timeout=0.05)
            return list(self.requests)


class ChildDaemon:
    """``tests/_sched_child.py`` in a subprocess, with its JSON log lines collected."""

    def __init__(self, config: Config, *, run_seconds: float = 0.0, grace_s: float = 30.0,
                 argv: list[str] | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            argv or [sys.executable, str(CHILD), str(config.source), str(run_seconds),
                     str(grace_s)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.raw.append(line)
                with contextlib.suppress(ValueError):  # a traceback line, not an event
                    self.events.append(json.loads(line))
                self._cond.notify_all()

    def wait_event(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while time.monotonic() < deadline:
                for event in self.events:
                    if event.get("event") == name:
                        return event
                self._cond.wait(timeout=0.05)
        raise AssertionError(f"no {name} event within {timeout} s; log: {''.join(self.raw)}")

    def names(self) -> list[str]:
        with self._cond:
            return [str(e.get("event")) for e in self.events]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
