"""``[executor]`` and the checks of the fleet settings that span tables.

``[executor] kind = "local"`` runs report runs on this machine in a capped pool; ``"celery"``
sends them as tasks to ``ibl-reports worker`` processes (reports.execute.celery_app). The
timeouts must nest, or a broker redelivers a task that is still running: the render's limit <
the task's time limit (``[scheduler] run_timeout_s``, its soft limit; the hard limit is
``TASK_KILL_GRACE_S`` later) < the broker's ``visibility_timeout_s``; and a run's lease <
``[state] stuck_after_s``. Celery workers share their state, so they refuse SQLite; the state
URL (it holds a password) may come from the variable ``[state] url_env`` names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reports.errors import ConfigError

if TYPE_CHECKING:
    from reports.config import StateConfig

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

DEFAULT_LEASE_S = 10.0
"""A run's lease when ``[state] lease_s`` is not set (at most a quarter of ``stuck_after_s``):
renewed every third of it, so a killed run is taken over within 10 s, whatever reaps its
process, while a busy worker has three chances to renew before it loses its run."""


def default_lease(stuck_after_s: float) -> float:
    """The lease (s) when none is configured: ``DEFAULT_LEASE_S``, at most stuck_after_s / 4."""
    return min(DEFAULT_LEASE_S, stuck_after_s / 4)


TASK_KILL_GRACE_S = 15.0
"""A Celery task gets SoftTimeLimitExceeded at run_timeout_s and is killed up to this much later
(a tenth of run_timeout_s, at least 1 s)."""


def task_hard_limit(run_timeout_s: float) -> float:
    """The task's hard time limit: its soft limit (``run_timeout_s``) plus a grace to clean up."""
    return run_timeout_s + min(TASK_KILL_GRACE_S, max(1.0, run_timeout_s / 10))


class ExecutorConfig(BaseModel):
    """[executor]: where report runs execute: this machine, or Celery workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local", "celery"] = Field(
        "local", description='"local" (a capped pool on this machine) or "celery" (workers).'
    )
    concurrency: int = Field(
        0, ge=0, le=256,
        description="Runs at once: the local pool's size, and a worker's default (0 = cores).",
    )
    broker_url_env: str = Field(
        "IBL_BROKER_URL", description="Env var that holds the broker URL (redis://, amqp://)."
    )
    queue: str = Field("ibl-reports", description="The Celery queue report runs go to.")
    visibility_timeout_s: float = Field(
        3600.0, gt=0,
        description="Redis: an unacknowledged task is redelivered after this (s); must exceed "
        "the task's hard time limit.",
    )
    max_tasks_per_child: int = Field(
        100, ge=0, description="A worker's pool child is replaced after this many runs (0: never)."
    )
    max_memory_per_child_mb: int = Field(
        1000, ge=0,
        description="A pool child whose resident memory passes this after a run is replaced "
        "(MiB; 0: never).",
    )

    @field_validator("broker_url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (write the name, "
                             "not the URL)")
        return value

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"{value!r} must be 1-100 letters, digits, '.', '_' or '-'")
        return value


def check_timeouts(
    state: StateConfig, render_timeout_s: float, run_timeout_s: float, executor: ExecutorConfig
) -> None:
    """ValueError (naming the key) unless the timeouts nest (see the module docstring)."""
    lease, stuck = state.lease, state.stuck_after_s
    if lease >= stuck:
        raise ValueError(f"state.lease_s: {lease:g} s must be shorter than "
                         f"state.stuck_after_s ({stuck:g} s)")
    if executor.kind != "celery":
        return
    hard, visibility = task_hard_limit(run_timeout_s), executor.visibility_timeout_s
    if render_timeout_s >= run_timeout_s:
        raise ValueError(f"render.timeout_s: {render_timeout_s:g} s must be shorter than "
                         f"scheduler.run_timeout_s ({run_timeout_s:g} s), the task's time limit")
    if hard >= visibility:
        raise ValueError(
            f"executor.visibility_timeout_s: {visibility:g} s must be longer than the task's "
            f"hard time limit ({hard:g} s: scheduler.run_timeout_s and a grace to clean up), "
            "or a running task is delivered twice"
        )


class _HasState(Protocol):
    @property
    def state(self) -> StateConfig: ...
    @property
    def executor(self) -> ExecutorConfig: ...
    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any: ...


C = TypeVar("C", bound=_HasState)


def with_state_url(config: C, raw: dict[str, Any], env: Mapping[str, str], label: str) -> C:
    """[state] url from the variable url_env names; the celery executor refuses SQLite."""
    state = config.state
    if state.url_env is not None:
        if "url" in (raw.get("state") or {}):
            raise ConfigError("write either url or url_env, not both", file=label,
                              key="state.url_env")
        url = env.get(state.url_env, "")
        if not url:
            raise ConfigError(f"the environment variable {state.url_env} is not set (it should "
                              "hold the state database URL)", file=label, key="state.url_env")
        state = state.model_copy(update={"url": url})
        config = config.model_copy(update={"state": state})
    if config.executor.kind == "celery" and state.url.startswith("sqlite"):
        raise ConfigError("the celery executor needs a shared PostgreSQL state database, not "
                          "SQLite (set [state] url_env)", file=label, key="executor.kind")
    return config
