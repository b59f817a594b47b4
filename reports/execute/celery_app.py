"""The Celery app of ``[executor] kind = "celery"``: one task, ``send_period``, on one queue.

Celery only carries the work; exactly-once lives in the ledger (a run's lease, fenced
deliveries), so a task delivered twice sends nothing twice. The settings that matter:

- ``task_acks_late`` + ``task_retry_on_worker_lost`` (Celery 5.7): a task whose pool child was
  killed is sent again at once (no countdown, so no ETA) instead of being lost, at most
  ``WORKER_LOST_RETRIES`` times: a report that keeps killing its child (a crash in a native
  library) then fails instead of looping. ``task_reject_on_worker_lost`` requeues it if that
  retry cannot be sent. A whole worker killed leaves its task unacked, and Redis hands it out
  again after ``visibility_timeout_s``.
- ``worker_prefetch_multiplier = 1`` and ``-O fair``: a worker holds no more tasks than it runs,
  so a long report does not keep others waiting behind it.
- time limits: soft ``[scheduler] run_timeout_s`` (the run is marked failed and cleaned up),
  hard ``TASK_KILL_GRACE_S`` later; both below ``visibility_timeout_s`` (checked at load).
- ``worker_max_tasks_per_child`` / ``worker_max_memory_per_child`` replace a pool child that
  has run many reports or grown; ``RLIMIT_AS`` (``[render] memory_mb``) is set in every child when
  it starts, the render runs in the child itself (``InProcessRenderer``).
- ``worker_cancel_long_running_tasks_on_connection_loss``: a task running while the broker
  connection was lost will be redelivered anyway; cancel it rather than run it twice.
- ``unacked_restore_interval`` (``restore_interval``): how often a worker looks for tasks past
  the visibility timeout. Kombu's default sweep runs every 10 s but scans only every 10th time,
  so a whole worker's task came back up to 100 s after ``visibility_timeout_s``; now within a
  tenth of it (1-60 s).

The broker URL comes from the variable ``[executor] broker_url_env`` names; it holds a password
and never appears in an error (``safe_broker_url``). No ETA or countdown tasks are ever sent:
the scheduler fires at the time and enqueues (an ETA past the visibility timeout duplicates).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reports.config import Config
from reports.config.executor import task_hard_limit
from reports.errors import ConfigError

TASK_NAME = "ibl_reports.send_period"
WORKER_LOST_RETRIES = 3
"""How often a task whose pool child died (SIGKILL, OOM killer, segfault) is sent again."""
MiB = 1024 * 1024


def broker_url(config: Config, env: Mapping[str, str]) -> str:
    """The broker URL from the environment, or a ConfigError naming the variable."""
    name = config.executor.broker_url_env
    url = env.get(name, "")
    if not url:
        raise ConfigError(f"the environment variable {name} is not set (it should hold the "
                          "broker URL, e.g. redis://host:6379/0)", file=str(config.source),
                          key="executor.broker_url_env")
    return url


def safe_broker_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages)."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url, mask="***"))


def restore_interval(visibility_timeout_s: float) -> float:
    """Seconds between a worker's sweeps for unacked tasks past the visibility timeout."""
    return min(60.0, max(1.0, visibility_timeout_s / 10))


def settings(config: Config, url: str) -> dict[str, Any]:
    """The Celery settings for this config (see the module docstring)."""
    executor = config.executor
    transport = {
        "visibility_timeout": executor.visibility_timeout_s,
        "unacked_restore_interval": restore_interval(executor.visibility_timeout_s),
        "unacked_restore_throttle": 1,  # scan on every sweep (kombu: every 10th)
    }
    backend = url if url.startswith(("redis://", "rediss://")) else "rpc://"
    return {
        "broker_url": url,
        "result_backend": backend,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": executor.queue,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 7 * 24 * 3600,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_retry_on_worker_lost": True,
        "task_track_started": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_soft_time_limit": config.scheduler.run_timeout_s,
        "task_time_limit": task_hard_limit(config.scheduler.run_timeout_s),
        "worker_max_tasks_per_child": executor.max_tasks_per_child or None,
        "worker_max_memory_per_child": executor.max_memory_per_child_mb * 1024 or None,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def make_app(
    config: Config, env: Mapping[str, str] | None = None,
    task: Callable[..., dict[str, Any]] | None = None,
) -> Any:
    """A Celery app for ``config``; a worker passes the ``send_period`` task body as ``task``.

    Producers (the scheduler, ``send --all``) send the task by name and need no body.
    """
    from celery import Celery

    url = broker_url(config, os.environ if env is None else env)
    app = Celery("ibl_reports", set_as_current=False)
    app.conf.update(settings(config, url))
    if task is not None:
        app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True,
                 retry_on_worker_lost=True, max_retries=WORKER_LOST_RETRIES,
                 default_retry_delay=0)(task)
    return app


def enqueue(
    app: Any, queue: str, report: str, as_of: str, force: bool, enqueued_at: float, *,
    provisional: bool = False,
) -> Any:
    """Send one ``send_period`` task now (never with an ETA); returns its AsyncResult.

    ``provisional``: send despite the freshness gate, marked provisional (the scheduler's
    ``on_stale = "provisional"``)."""
    kwargs: dict[str, Any] = {"report": report, "as_of": as_of, "force": force}
    if provisional:
        kwargs["provisional"] = True
    return app.send_task(TASK_NAME, kwargs=kwargs, queue=queue,
                         headers={"enqueued_at": enqueued_at})


@dataclass(frozen=True)
class QueueStatus:
    """``ibl-reports queue status``."""

    queue: str
    broker: str
    depth: int
    workers: list[str]
    running: int
    oldest_enqueued_at: float | None

    def as_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "broker": self.broker, "depth": self.depth,
                "workers": self.workers, "running": self.running,
                "oldest_enqueued_at": self.oldest_enqueued_at}


def queue_status(app: Any, queue: str, *, timeout_s: float = 1.0) -> QueueStatus:
    """Messages waiting, live workers (and how many tasks they run), the oldest's enqueue time.

    An unreachable broker raises kombu's ``OperationalError`` after one retry (~0.5 s)."""
    import json

    from kombu.exceptions import ChannelError

    depth, oldest = 0, None
    with app.connection_for_write() as conn:
        # One retry half a second later, not kombu's default retries (6 s to say "down").
        conn.ensure_connection(max_retries=1, interval_start=0.5, interval_step=0.5,
                               interval_max=0.5)
        channel = conn.default_channel
        try:
            depth = int(channel.queue_declare(queue=queue, passive=True).message_count)
        except ChannelError:
            depth = 0  # Redis: an empty queue has no key
        if depth and conn.transport.driver_type == "redis":
            raw = channel.client.lindex(queue, -1)  # kombu pushes left, pops right
            if raw:
                headers = json.loads(raw).get("headers") or {}
                stamp = headers.get("enqueued_at")
                oldest = float(stamp) if stamp is not None else None
    inspector = app.control.inspect(timeout=timeout_s)
    replies = inspector.ping() or {}
    active = inspector.active() or {} if replies else {}
    running = sum(len(tasks) for tasks in active.values())
    return QueueStatus(queue=queue, broker=safe_broker_url(app.conf.broker_url),
                       depth=depth, workers=sorted(replies), running=running,
                       oldest_enqueued_at=oldest)


def run_worker(
    app: Any, config: Config, *, concurrency: int, queues: str, loglevel: str = "INFO",
    on_child_start: Callable[[], None] | None = None,
) -> None:
    """``celery worker`` in this process: prefork, fair scheduling, one task per child at a time.

    Every pool child lowers its own ``RLIMIT_AS`` to ``[render] memory_mb`` when it starts, then
    calls ``on_child_start`` (e.g. to drop state inherited from the parent).
    """
    from celery.signals import worker_process_init

    memory = config.render.memory_mb * MiB

    def child_start(**_kwargs: Any) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if on_child_start is not None:
            on_child_start()

    worker_process_init.connect(child_start, weak=False)
    app.worker_main([
        "worker", "--pool=prefork", "-O", "fair", f"--concurrency={concurrency}",
        f"--queues={queues}", f"--loglevel={loglevel}", "--without-gossip", "--without-mingle",
        f"--hostname=ibl-reports.{os.getpid()}@%h",
    ])
