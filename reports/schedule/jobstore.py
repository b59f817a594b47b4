"""Job sync: one APScheduler job per ``[[reports]]`` entry, stored in the state database.

The job store (table ``apscheduler_jobs``) is made to match config.toml on every start: jobs of
removed reports are dropped, every other job is replaced so its next fire time counts from now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from reports.config import Config, ReportConfig
from reports.logs import log_event
from reports.schedule.firetimes import next_fire_time, trigger_for

# The daemon's events keep one logger name, whichever module of the stage logs them.
log = logging.getLogger("reports.schedule.scheduler")

JOBS_TABLE = "apscheduler_jobs"


def fire_threads(config: Config, jobs: int) -> int:
    """Threads that run due reports at once: never one per report (10,000 due at 07:00).

    Local: ``[executor] concurrency`` (else the cores), each thread runs one ``send``. Celery: a
    thread enqueues one task and waits for its answer, so a few dozen keep the workers busy
    while the rest wait their turn in the scheduler, not as thousands of threads.
    """
    import os

    if config.executor.kind == "celery":
        return max(2, min(jobs, 64))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    return max(2, min(jobs, config.executor.concurrency or cores))


def build_scheduler(config: Config, jobs: int) -> Any:
    """An APScheduler background scheduler on the state database's job store, all in UTC."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=config.state.url, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=fire_threads(config, jobs))},
        job_defaults={
            "coalesce": True, "max_instances": 1,
            "misfire_grace_time": config.scheduler.misfire_grace_s,
        },
        timezone=UTC,
    )


def sync_jobs(
    sched: Any, reports: Mapping[str, ReportConfig], job_func: Callable[[str], None]
) -> dict[str, list[str]]:
    """Make the job store match ``reports``; returns the names added/changed/removed/unchanged.

    ``job_func`` is the function every job calls with its report's name (importable, so the job
    store can keep a reference to it).
    """
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [],
                                      "unchanged": []}
    stored = {job.id: job for job in sched.get_jobs()}
    for job_id in sorted(set(stored) - set(reports)):
        sched.remove_job(job_id)
        changes["removed"].append(job_id)
        log_event(log, "job.removed", report=job_id)
    for name, report in reports.items():
        trigger = trigger_for(report)
        old = stored.get(name)
        # Always replace: the next fire time is computed from now, missed fires are the
        # catch-up's business (not APScheduler's misfire handling).
        sched.add_job(job_func, trigger, args=[name], id=name, name=name, replace_existing=True)
        if old is None:
            kind = "added"
        elif _trigger_key(old.trigger) != _trigger_key(trigger) or old.args != (name,):
            kind = "changed"
        else:
            kind = "unchanged"
        changes[kind].append(name)
        log_event(log, f"job.{kind}", report=name, schedule=report.schedule,
                  timezone=report.timezone)
    return changes


def _trigger_key(trigger: Any) -> str:
    return f"{type(trigger).__name__}:{trigger}:{getattr(trigger, 'timezone', '')}"


def log_next_fire(report: ReportConfig, now: datetime) -> datetime | None:
    """Log when the report fires next (``job.next``), in its time zone and in UTC."""
    nxt = next_fire_time(report, now)
    local = nxt.astimezone(ZoneInfo(report.timezone)) if nxt else None
    log_event(log, "job.next", report=report.name,
              next_local=local.isoformat() if local else "never", timezone=report.timezone,
              zone=local.tzname() if local else None,
              next_utc=nxt.astimezone(UTC).isoformat().replace("+00:00", "Z") if nxt else None)
    return nxt
