"""The scheduler: fire times across DST, catch-up, job store sync, time limits, signals, lock."""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from reports.config import Config, ReportConfig
from reports.errors import SchedulerLockError
from reports.report.periods import Period, PeriodKind, monthly, weekly
from reports.schedule.alerts import alert_message
from reports.schedule.catchup import plan_catch_up
from reports.schedule.firetimes import (
    RunRequest,
    fire_times,
    last_fire_time,
    next_fire_time,
    period_for_fire,
)
from reports.schedule.joblist import list_jobs
from reports.schedule.jobstore import JOBS_TABLE
from reports.schedule.runner import OutcomeKind, SubprocessRunner, send_command
from reports.schedule.scheduler import Daemon, run_scheduler
from tests._sched import REPO, ChildDaemon, RecordingRunner, write_config

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def report(**kw: Any) -> ReportConfig:
    base: dict[str, Any] = {
        "name": "acme-weekly", "org": "acme", "period": "weekly", "schedule": "0 7 * * 1",
        "timezone": "Europe/Berlin", "recipients": ["dean@acme.example"],
    }
    return ReportConfig(**{**base, **kw})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [
        dict(getattr(r, "fields", {})) for r in list(caplog.records)
        if getattr(r, "event", None) == name
    ]


def wait_for_event(
    caplog: pytest.LogCaptureFixture, name: str, count: int = 1, timeout: float = 15.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(caplog, name)
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} {name} events: {[r.message for r in caplog.records]}")


# ---------------------------------------------------------------------------------------------
# Fire times


@pytest.mark.parametrize(
    ("schedule", "zone", "now", "expected_utc", "expected_local"),
    [
        pytest.param("0 7 * * 1", "Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 30, 5),
                     "2026-03-30 07:00 CEST", id="berlin-monday-after-spring-forward"),
        pytest.param("0 7 * * 1", "Europe/Berlin", utc(2026, 3, 21, 12), utc(2026, 3, 23, 6),
                     "2026-03-23 07:00 CET", id="berlin-monday-before-spring-forward"),
        pytest.param("0 7 * * 1", "Europe/Berlin", utc(2026, 10, 24, 12), utc(2026, 10, 26, 6),
                     "2026-10-26 07:00 CET", id="berlin-monday-after-fall-back"),
        pytest.param("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1, 30),
                     "2026-03-29 03:30 CEST", id="berlin-0230-skipped-hour-runs-once-after"),
        pytest.param("0 7 * * 1", "America/New_York", utc(2026, 3, 7, 12), utc(2026, 3, 9, 11),
                     "2026-03-09 07:00 EDT", id="new-york-after-spring-forward"),
        pytest.param("0 7 * * 1", "America/New_York", utc(2026, 10, 31, 12), utc(2026, 11, 2, 12),
                     "2026-11-02 07:00 EST", id="new-york-after-fall-back"),
        pytest.param("0 7 1 * *", "America/New_York", utc(2026, 10, 15), utc(2026, 11, 1, 12),
                     "2026-11-01 07:00 EST", id="monthly-1st-on-fall-back-day"),
        pytest.param("0 7 1 * *", "America/New_York", utc(2026, 3, 15), utc(2026, 4, 1, 11),
                     "2026-04-01 07:00 EDT", id="monthly-1st-in-summer-time"),
    ],
)
def test_next_fire_time_is_the_local_wall_clock_time_across_dst(
    schedule: str, zone: str, now: datetime, expected_utc: datetime, expected_local: str
) -> None:
    r = report(schedule=schedule, timezone=zone)
    nxt = next_fire_time(r, now)
    assert nxt == expected_utc
    assert nxt is not None
    assert nxt.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") == expected_local


def test_a_repeated_dst_hour_fires_once() -> None:
    r = report(schedule="30 2 * * *")
    fires = list(fire_times(r, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)))
    # 25 Oct 2026: 02:30 happens twice in Berlin (CEST, then CET); the report goes out once.
    assert [t.astimezone(UTC) for t in fires] == [
        utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)
    ]


@pytest.mark.parametrize(
    ("dow", "weekdays"),
    [
        pytest.param("1", {0}, id="1-is-monday"),
        pytest.param("0", {6}, id="0-is-sunday"),
        pytest.param("6", {5}, id="6-is-saturday"),
        pytest.param("1-5", {0, 1, 2, 3, 4}, id="weekdays"),
        pytest.param("sat,sun", {5, 6}, id="names"),
    ],
)
def test_weekday_field_uses_crontab_numbering(dow: str, weekdays: set[int]) -> None:
    r = report(schedule=f"0 7 * * {dow}")
    fires = list(fire_times(r, utc(2026, 6, 1), utc(2026, 6, 15)))
    assert fires
    assert {t.weekday() for t in fires} == weekdays


def test_day_of_month_and_weekday_both_restricted_fire_on_either_as_in_crontab() -> None:
    # "0 7 1 * 1": the 1st of the month OR every Monday (APScheduler alone: Mondays that are
    # the 1st, which in December 2026 is never).
    r = report(schedule="0 7 1 * 1")
    fires = list(fire_times(r, utc(2026, 11, 30), utc(2027, 1, 5)))
    assert [t.date() for t in fires] == [
        date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 7), date(2026, 12, 14),
        date(2026, 12, 21), date(2026, 12, 28), date(2027, 1, 1), date(2027, 1, 4),
    ]
    assert {t.strftime("%H:%M") for t in fires} == {"07:00"}


def test_a_monthly_report_on_the_1st_sends_the_previous_month() -> None:
    r = report(name="m", period="monthly", schedule="0 7 1 * *", timezone="America/New_York")
    fired = last_fire_time(r, utc(2026, 11, 1, 12, 0, 5))
    assert fired == utc(2026, 11, 1, 12)
    as_of, period = period_for_fire(r, fired)
    assert as_of == date(2026, 11, 1)
    assert period == Period(date(2026, 10, 1), date(2026, 10, 31), PeriodKind.MONTHLY)


def test_fire_date_is_taken_in_the_report_time_zone() -> None:
    # Monday 00:30 in Berlin is still Sunday in UTC: the period is the week before *Monday*.
    r = report(schedule="30 0 * * 1")
    fired = last_fire_time(r, utc(2026, 6, 7, 23, 0))
    assert fired is not None and fired.astimezone(UTC) == utc(2026, 6, 7, 22, 30)
    as_of, period = period_for_fire(r, fired)
    assert as_of == date(2026, 6, 8)
    assert period == weekly(date(2026, 6, 8)) == Period(
        date(2026, 6, 1), date(2026, 6, 7), PeriodKind.WEEKLY
    )


# ---------------------------------------------------------------------------------------------
# Catch-up, pure

# Delivered up to the week of 23-29 March 2026 (sent Monday 30 March), then down three weeks.
LAST_SENT = Period(date(2026, 3, 23), date(2026, 3, 29), PeriodKind.WEEKLY)
BACK_UP = utc(2026, 4, 22, 12)  # Wednesday: the Mondays 6, 13 and 20 April were missed
MISSED = [
    Period(date(2026, 3, 30), date(2026, 4, 5), PeriodKind.WEEKLY),
    Period(date(2026, 4, 6), date(2026, 4, 12), PeriodKind.WEEKLY),
    Period(date(2026, 4, 13), date(2026, 4, 19), PeriodKind.WEEKLY),
]


def _done_up_to_last_sent(period: Period) -> bool:
    return period <= LAST_SENT


@pytest.mark.parametrize(
    ("policy", "max_periods", "due", "skipped"),
    [
        pytest.param("latest", 4, MISSED[-1:], [], id="latest"),
        pytest.param("all", 4, MISSED, [], id="all-oldest-first"),
        pytest.param("all", 2, MISSED[-2:], [], id="all-bounded"),
        pytest.param("none", 4, [], MISSED, id="none"),
    ],
)
def test_catch_up_after_three_weeks_down(
    policy: str, max_periods: int, due: list[Period], skipped: list[Period]
) -> None:
    r = report(catch_up=policy, catch_up_max_periods=max_periods)
    plan = plan_catch_up(r, BACK_UP, _done_up_to_last_sent)
    assert [q.period for q in plan.due] == due
    assert [q.period for q in plan.skipped] == skipped
    for q in plan.due:
        # Each catch-up send is "as of" the Monday it should have gone out.
        assert q.as_of.weekday() == 0 and weekly(q.as_of) == q.period
        assert q.reason == "catch-up"


def test_catch_up_skips_periods_already_delivered() -> None:
    r = report(catch_up="all")
    delivered = {MISSED[1]}
    plan = plan_catch_up(r, BACK_UP, lambda p: p <= LAST_SENT or p in delivered)
    assert [q.period for q in plan.due] == [MISSED[0], MISSED[2]]


def test_brand_new_state_plans_the_last_complete_period() -> None:
    plan = plan_catch_up(report(), BACK_UP, lambda p: False)
    assert [q.period for q in plan.due] == [MISSED[-1]]
    # Monday 06:00, before this week's fire: the last *due* period is the week before last.
    early = datetime(2026, 4, 20, 6, 0, tzinfo=BERLIN)
    plan = plan_catch_up(report(), early, lambda p: False)
    assert [q.period for q in plan.due] == [MISSED[-2]]


def test_monthly_catch_up_all() -> None:
    r = report(name="m", period="monthly", schedule="0 7 1 * *", timezone="America/New_York",
               catch_up="all", catch_up_max_periods=2)
    plan = plan_catch_up(r, utc(2026, 4, 10), lambda p: False)
    assert [q.period for q in plan.due] == [monthly(date(2026, 3, 1)), monthly(date(2026, 4, 1))]


# ---------------------------------------------------------------------------------------------
# The daemon, in-process


def weekly_config(tmp_path: Path, **kw: Any) -> Config:
    entry = {"name": "acme-weekly", "period": "weekly", "schedule": "0 7 * * 1",
             "timezone": "Europe/Berlin", **kw}
    return write_config(tmp_path, [entry])


def test_brand_new_state_db_sends_the_last_complete_period(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reports")
    config = weekly_config(tmp_path)
    runner = RecordingRunner()
    # No is_done seam: the real ledger is asked, on a database that does not exist yet.
    daemon = Daemon(config, clock=lambda: BACK_UP, runner=runner, alerter=None)
    daemon.start()
    try:
        calls = runner.wait_for(1)
    finally:
        daemon.stop()
    assert [(c.report, c.period, c.as_of) for c in calls] == [
        ("acme-weekly", MISSED[-1], date(2026, 4, 20))
    ]
    assert events(caplog, "run.finished")[0]["period"] == MISSED[-1].key
    # When the job fires next is logged at start and again after the run, local and UTC.
    at_start, after_run = wait_for_event(caplog, "job.next", count=2)[:2]
    assert at_start == after_run == {
        "report": "acme-weekly", "next_local": "2026-04-27T07:00:00+02:00",
        "timezone": "Europe/Berlin", "zone": "CEST", "next_utc": "2026-04-27T05:00:00Z",
    }
    names = [getattr(r, "event", None) for r in caplog.records]
    assert names.index("job.next") < names.index("run.started")
    assert names.index("run.finished") < len(names) - 1 - names[::-1].index("job.next")
    engine = sa.create_engine(config.state.url)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(sa.text(f"SELECT id FROM {JOBS_TABLE}"))]
    engine.dispose()
    assert ids == ["acme-weekly"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("latest", MISSED[-1:], id="latest"),
        pytest.param("all", MISSED, id="all"),
        pytest.param("none", [], id="none"),
    ],
)
def test_daemon_catches_up_after_three_weeks_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: str, expected: list[Period]
) -> None:
    caplog.set_level(logging.INFO, logger="reports")
    config = weekly_config(tmp_path, catch_up=policy)
    # Up to Tuesday 31 March everything was delivered; then the daemon was down three weeks.
    runner = RecordingRunner()

    def is_done(r: ReportConfig, p: Period) -> bool:
        return p <= LAST_SENT or runner.is_done(r, p)

    daemon = Daemon(config, clock=lambda: utc(2026, 3, 31, 9), runner=runner,
                    is_done=is_done, alerter=None)
    daemon.start()
    daemon.stop()
    assert runner.requests == []

    daemon = Daemon(config, clock=lambda: BACK_UP, runner=runner, is_done=is_done,
                    alerter=None)
    daemon.start()
    try:
        if expected:
            runner.wait_for(len(expected))
        else:
            wait_for_event(caplog, "catchup.skipped")
    finally:
        daemon.stop()
    assert [c.period for c in runner.requests] == expected
    # Restarting again sends nothing more: the periods are delivered now.
    daemon = Daemon(config, clock=lambda: BACK_UP + timedelta(hours=1), runner=runner,
                    is_done=is_done, alerter=None)
    daemon.start()
    daemon.stop()
    assert [c.period for c in runner.requests] == expected
    if policy == "none":
        skipped = events(caplog, "catchup.skipped")[0]
        assert skipped["periods"] == ",".join(p.key for p in MISSED)


def _stored_jobs(config: Config) -> dict[str, str]:
    engine = sa.create_engine(config.state.url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT id, job_state FROM {JOBS_TABLE}")).all()
    engine.dispose()
    return {row[0]: str(pickle.loads(row[1])["trigger"]) for row in rows}


def test_config_changes_are_synced_to_the_job_store_on_restart(tmp_path: Path) -> None:
    def start_with(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
        config = write_config(tmp_path, entries)
        daemon = Daemon(config, clock=lambda: BACK_UP, runner=RecordingRunner(),
                        is_done=lambda r, p: True, alerter=None)
        daemon.start()
        daemon.stop()
        return daemon.last_sync

    a = {"name": "a", "period": "weekly", "schedule": "0 7 * * 1"}
    b = {"name": "b", "period": "monthly", "schedule": "0 7 1 * *"}
    first = start_with([a, b])
    assert first["added"] == ["a", "b"]
    config = write_config(tmp_path, [a, b])
    assert set(_stored_jobs(config)) == {"a", "b"}

    b_changed = {**b, "schedule": "0 9 2 * *"}
    c = {"name": "c", "period": "weekly", "schedule": "0 6 * * 2"}
    second = start_with([b_changed, c])
    assert second == {"added": ["c"], "changed": ["b"], "removed": ["a"], "unchanged": []}
    stored = _stored_jobs(write_config(tmp_path, [b_changed, c]))
    assert set(stored) == {"b", "c"}
    assert "hour='9'" in stored["b"] and "day='2'" in stored["b"]

    third = start_with([b_changed, c])
    assert third["unchanged"] == ["b", "c"] and not third["changed"]


def test_a_failed_run_sends_one_alert_with_the_error_and_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reports")
    config = weekly_config(tmp_path, catch_up="all", catch_up_max_periods=2)
    runner = RecordingRunner(outcome=OutcomeKind.FAILED)
    alerts: list[tuple[str, str]] = []
    daemon = Daemon(config, clock=lambda: BACK_UP, runner=runner, is_done=runner.is_done,
                    alerter=lambda s, t: alerts.append((s, t)))
    daemon.start()
    try:
        runner.wait_for(2)
        wait_for_event(caplog, "alert.sent", count=2)
    finally:
        daemon.stop()
    # Two failed runs (two periods), one alert each.
    assert [s for s, _ in alerts] == [
        f"ibl-reports: acme-weekly failed for {MISSED[1].key}",
        f"ibl-reports: acme-weekly failed for {MISSED[2].key}",
    ]
    text = alerts[0][1]
    assert "Error: boom" in text
    assert f"send --report acme-weekly --as-of {date(2026, 4, 13).isoformat()}" in text
    assert [e["outcome"] for e in events(caplog, "run.failed")] == ["failed", "failed"]


def test_an_alert_that_cannot_be_sent_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reports")
    config = weekly_config(tmp_path)
    runner = RecordingRunner(outcome=OutcomeKind.FAILED)

    def broken(subject: str, text: str) -> None:
        raise OSError("smtp down")

    daemon = Daemon(config, clock=lambda: BACK_UP, runner=runner, is_done=runner.is_done,
                    alerter=broken)
    daemon.start()
    try:
        failed = wait_for_event(caplog, "alert.failed")
    finally:
        daemon.stop()
    assert "smtp down" in failed[0]["error"]


def test_hung_run_is_stopped_by_the_time_limit_and_the_next_fire_still_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reports")
    config = write_config(
        tmp_path,
        [{"name": "minutely", "period": "weekly", "schedule": "* * * * *",
          "timezone": "Europe/Berlin"}],
        scheduler={"run_timeout_s": 1},
    )
    commands: list[RunRequest] = []

    def command(request: RunRequest) -> list[str]:
        commands.append(request)
        if len(commands) == 1:
            return [sys.executable, "-c", "import time; time.sleep(120)"]
        return [sys.executable, "-c", "pass"]

    runner = SubprocessRunner(command, timeout_s=config.scheduler.run_timeout_s, kill_grace_s=1)
    alerts: list[str] = []
    start = datetime(2026, 5, 4, 6, 59, 58, tzinfo=BERLIN)
    with time_machine.travel(start, tick=True) as traveller:
        daemon = Daemon(config, runner=runner, is_done=lambda r, p: True,
                        alerter=lambda s, t: alerts.append(s))
        daemon.start()
        try:
            failed = wait_for_event(caplog, "run.failed", timeout=15)
            traveller.move_to(datetime(2026, 5, 4, 7, 0, 59, 500000, tzinfo=BERLIN))
            daemon.wakeup()
            finished = wait_for_event(caplog, "run.finished", timeout=15)
        finally:
            daemon.stop()
    assert failed[0]["outcome"] == "timed-out"
    assert failed[0]["fire_time"] == "2026-05-04T05:00:00+00:00"
    assert finished[0]["fire_time"] == "2026-05-04T05:01:00+00:00"
    assert len(alerts) == 1
    assert [c.period for c in commands] == [weekly(date(2026, 5, 4))] * 2


def test_run_scheduler_writes_the_health_file_and_stops_on_request(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, [{"name": "w", "period": "weekly", "schedule": "0 7 * * 1"}],
        scheduler={"tick_s": 0.05},
    )
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_scheduler(
        config, clock=lambda: BACK_UP, runner=RecordingRunner(), is_done=lambda r, p: True,
        alerter=lambda s, t: None, env={}, stop=stop,
    )))
    thread.start()
    health = config.scheduler.health_file
    try:
        deadline = time.monotonic() + 10
        ticks: set[str] = set()
        while len(ticks) < 2 and time.monotonic() < deadline:
            if health.exists():
                ticks.add(json.loads(health.read_text())["last_tick"])
            time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert result == [0]
    assert len(ticks) >= 2
    data = json.loads(health.read_text())
    assert data["pid"] == os.getpid() and data["state"] == "stopped"
    assert datetime.fromisoformat(data["last_tick"]).tzinfo is not None


# ---------------------------------------------------------------------------------------------
# list_jobs


def test_list_jobs_without_a_state_db(tmp_path: Path) -> None:
    config = write_config(tmp_path, [
        {"name": "w", "period": "weekly", "schedule": "0 7 * * 1", "timezone": "Europe/Berlin"},
        {"name": "m", "period": "monthly", "schedule": "0 7 1 * *",
         "timezone": "America/New_York"},
    ])
    rows = list_jobs(config, clock=lambda: utc(2026, 10, 24, 12))
    assert not (tmp_path / "state.db").exists()  # looking does not create it
    w, m = rows
    assert w.next_utc == utc(2026, 10, 26, 6) and w.next_local is not None
    assert w.next_local.strftime("%H:%M %Z") == "07:00 CET"
    assert m.next_utc == utc(2026, 11, 1, 12)
    assert w.cells() == ["w", "0 7 * * 1 (Europe/Berlin)", "2026-10-26 07:00 CET",
                         "2026-10-26 06:00 UTC", "-", "never"]
    assert json.loads(json.dumps(m.as_json()))["next_local"] == "2026-11-01T07:00:00-05:00"


def test_list_jobs_with_an_unreadable_state_db(tmp_path: Path) -> None:
    config = weekly_config(tmp_path)
    (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
    rows = list_jobs(config, clock=lambda: BACK_UP)
    assert rows[0].last_state == "unknown"
    assert rows[0].next_utc == utc(2026, 4, 27, 5)


def test_list_jobs_shows_the_last_run_and_the_pause_from_the_ledger(tmp_path: Path) -> None:
    from reports.state.ledger import Ledger

    config = weekly_config(tmp_path)
    with Ledger(config.state.url) as ledger:
        ledger.start_run("acme-weekly", "acme", MISSED[-1])
    (row,) = list_jobs(config, clock=lambda: BACK_UP)
    assert row.last_period == MISSED[-1].key
    assert row.last_state is not None and row.last_state != "unknown"
    assert not row.paused and row.cells()[4] == "-"
    with Ledger(config.state.url) as ledger:  # the web UI's pause
        ledger.set_paused("acme-weekly", True, by="op")
    (row,) = list_jobs(config, clock=lambda: BACK_UP)
    assert row.paused and row.cells()[4] == "paused" and row.as_json()["paused"] is True


# ---------------------------------------------------------------------------------------------
# Runner and command


def test_a_provisional_request_adds_the_flag(tmp_path: Path) -> None:
    config = weekly_config(tmp_path)
    request = RunRequest("acme-weekly", BACK_UP, date(2026, 4, 20), MISSED[-1], provisional=True)
    assert send_command(config)(request)[-3:] == ["--as-of", "2026-04-20", "--provisional"]


def test_the_default_runner_runs_the_send_command(tmp_path: Path) -> None:
    config = weekly_config(tmp_path)
    request = RunRequest("acme-weekly", utc(2026, 4, 20, 5), date(2026, 4, 20), MISSED[-1])
    assert send_command(config)(request) == [
        sys.executable, "-m", "reports.cli", "--config", str(config.source), "send",
        "--report", "acme-weekly", "--as-of", "2026-04-20",
    ]


def test_a_failing_command_reports_its_status_and_last_output() -> None:
    runner = SubprocessRunner(
        lambda r: [sys.executable, "-c", "import sys; print('error: API down'); sys.exit(1)"],
        timeout_s=30,
    )
    outcome = runner(RunRequest("r", utc(2026, 4, 20), date(2026, 4, 20), MISSED[-1]))
    assert outcome.kind is OutcomeKind.FAILED and outcome.exit_code == 1
    assert outcome.error == "the send command exited with status 1: error: API down"
    # Exit 3 is the freshness gate's hold, not a failure; its last line is the reason.
    held = SubprocessRunner(
        lambda r: [sys.executable, "-c", "import sys; print('r: held: no data'); sys.exit(3)"],
        timeout_s=30,
    )(RunRequest("r", utc(2026, 4, 20), date(2026, 4, 20), MISSED[-1], provisional=True))
    assert held.kind is OutcomeKind.HELD and held.error == "r: held: no data"


def test_child_log_lines_are_relayed_as_they_come_with_their_own_times(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reports")
    seen = tmp_path / "seen"

    class MarkSeen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "event", None) == "run.transition":
                seen.touch()

    # The child logs one line, then waits (up to 20 s) until the daemon has relayed it.
    script = (
        "import json, os, sys, time\n"
        "print(json.dumps({'ts': '2026-01-02T03:04:05.678Z', 'level': 'info', 'logger': 'x',"
        " 'event': 'run.transition', 'state': 'collecting'}), flush=True)\n"
        "print('plain output', flush=True)\n"
        "deadline = time.monotonic() + 20\n"
        f"while not os.path.exists({str(seen)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "print(json.dumps({'ts': '2026-01-02T03:04:09.000Z', 'level': 'warning',"
        " 'event': 'delivery.transition', 'recipient': 'a@b.example'}))\n"
        f"sys.exit(0 if os.path.exists({str(seen)!r}) else 1)\n"
    )
    marker = MarkSeen()
    logging.getLogger("reports.run").addHandler(marker)
    try:
        started = time.monotonic()
        outcome = SubprocessRunner(lambda r: [sys.executable, "-c", script], timeout_s=60)(
            RunRequest("r", utc(2026, 4, 20), date(2026, 4, 20), MISSED[-1]))
    finally:
        logging.getLogger("reports.run").removeHandler(marker)
    assert outcome.kind is OutcomeKind.OK, outcome
    assert time.monotonic() - started < 15
    assert outcome.output_tail == "plain output"
    relayed = [r for r in caplog.records if r.name == "reports.run"]
    assert [(r.event, r.levelname) for r in relayed] == [  # type: ignore[attr-defined]
        ("run.transition", "INFO"), ("delivery.transition", "WARNING")]
    assert relayed[0].fields == {"state": "collecting"}  # type: ignore[attr-defined]
    from reports.logs import TextFormatter

    assert [TextFormatter().format(r).split(" ")[0] for r in relayed] == [
        "2026-01-02T03:04:05.678Z", "2026-01-02T03:04:09.000Z"]


def test_the_time_limit_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    runner = SubprocessRunner(lambda r: [sys.executable, "-c", script], timeout_s=1.5,
                              kill_grace_s=1)
    started = time.monotonic()
    outcome = runner(RunRequest("r", utc(2026, 4, 20), date(2026, 4, 20), MISSED[-1]))
    assert time.monotonic() - started < 10
    assert outcome.kind is OutcomeKind.TIMED_OUT
    assert "run_timeout_s = 1.5 s" in outcome.error
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for init to reap it counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_alert_message_names_the_period_and_the_command(tmp_path: Path) -> None:
    from reports.schedule.runner import RunOutcome

    config = weekly_config(tmp_path)
    request = RunRequest("acme-weekly", utc(2026, 4, 20, 5), date(2026, 4, 20), MISSED[-1])
    subject, text = alert_message(
        config, request, RunOutcome(OutcomeKind.TIMED_OUT, error="took too long")
    )
    assert subject == "ibl-reports: acme-weekly failed for 2026-04-13_2026-04-19"
    assert "2026-04-13 to 2026-04-19 failed" in text and "Error: took too long" in text


# ---------------------------------------------------------------------------------------------
# One scheduler only; signals (child processes)


def test_a_second_scheduler_is_refused_until_the_first_dies(tmp_path: Path) -> None:
    config = weekly_config(tmp_path)
    first = ChildDaemon(config)
    try:
        first.wait_event("scheduler.started")
        with pytest.raises(SchedulerLockError) as info:
            run_scheduler(config, clock=lambda: BACK_UP, runner=RecordingRunner(),
                          is_done=lambda r, p: True, alerter=lambda s, t: None, env={})
        assert info.value.pid == first.proc.pid
        assert str(info.value) == f"another scheduler is already running (pid {first.proc.pid})"

        cli = subprocess.run(
            [sys.executable, "-m", "reports.cli", "--config", str(config.source), "schedule"],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )
        assert cli.returncode != 0
        assert f"another scheduler is already running (pid {first.proc.pid})" in cli.stderr

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    finally:
        first.close()
    # The kernel released the lock with its holder: a new scheduler starts.
    daemon = Daemon(config, clock=lambda: BACK_UP, runner=RecordingRunner(),
                    is_done=lambda r, p: True, alerter=None)
    daemon.start()
    daemon.stop()


def test_sigterm_when_idle_exits_0_quickly(tmp_path: Path) -> None:
    # The child counts nothing as done; catch_up = none keeps it idle.
    config = write_config(
        tmp_path, [{"name": "w", "period": "weekly", "schedule": "0 7 * * 1",
                    "catch_up": "none"}],
        scheduler={"tick_s": 0.1},
    )
    child = ChildDaemon(config)
    try:
        started = child.wait_event("scheduler.started")
        assert started["pid"] == child.proc.pid
        t0 = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        code = child.proc.wait(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        child.close()
    assert code == 0
    assert elapsed < 3
    assert child.names()[-2:] == ["scheduler.stopping", "scheduler.stopped"], child.raw
    health = json.loads(config.scheduler.health_file.read_text())
    assert health["pid"] == child.proc.pid and health["state"] == "stopped"


def test_sigterm_lets_the_current_run_finish(tmp_path: Path) -> None:
    config = weekly_config(tmp_path)
    child = ChildDaemon(config, run_seconds=1.5)
    try:
        child.wait_event("run.started")
        child.proc.send_signal(signal.SIGTERM)
        code = child.proc.wait(timeout=20)
    finally:
        child.close()
    assert code == 0
    names = child.names()
    assert names.index("run.finished") < names.index("scheduler.stopped")
    assert "run.interrupted" not in names


def test_sigterm_terminates_a_run_that_outlives_the_grace_period(tmp_path: Path) -> None:
    config = weekly_config(tmp_path)
    child = ChildDaemon(config, run_seconds=120, grace_s=0.5)
    try:
        child.wait_event("run.started")
        t0 = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        code = child.proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        child.close()
    assert code == 0
    assert elapsed < 10
    names = child.names()
    assert "run.interrupted" in names and "run.failed" not in names
    assert names[-1] == "scheduler.stopped"


def test_catch_up_fire_times_are_in_the_past() -> None:
    plan = plan_catch_up(report(catch_up="all"), BACK_UP, lambda p: False)
    assert all(q.fire_time <= BACK_UP for q in plan.due)
    assert all(BACK_UP - q.fire_time < timedelta(weeks=5) for q in plan.due)


def test_the_default_alerter_mails_the_alert_recipients(tmp_path: Path) -> None:
    from reports.schedule.alerts import mail_alerter
    from reports.schedule.runner import RunOutcome

    config = write_config(
        tmp_path, [{"name": "w", "period": "weekly", "schedule": "0 7 * * 1"}],
        alerts=["oncall@acme.example"],
        extra='[email]\nbackend = "file"\noutbox_dir = "outbox"\n',
    )
    alerter = mail_alerter(config, {})
    assert alerter is not None
    request = RunRequest("w", utc(2026, 4, 20, 5), date(2026, 4, 20), MISSED[-1])
    alerter(*alert_message(config, request, RunOutcome(OutcomeKind.FAILED, 1, "API down")))
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    text = eml.read_text()
    assert "oncall@acme.example" in text
    assert "ibl-reports: w failed for 2026-04-13_2026-04-19" in text
    no_alerts = tmp_path / "no-alerts"
    no_alerts.mkdir()
    assert mail_alerter(weekly_config(no_alerts), {}) is None


def test_a_report_paused_in_the_state_database_is_skipped_until_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from reports.schedule.firetimes import RunRequest
    from reports.state.ledger import Ledger

    caplog.set_level(logging.INFO, logger="reports")
    config = weekly_config(tmp_path)
    runner = RecordingRunner()
    daemon = Daemon(config, clock=lambda: BACK_UP, runner=runner, is_done=runner.is_done,
                    alerter=None)
    period = weekly(date(2026, 4, 27))
    fired = datetime(2026, 4, 27, 5, 0, tzinfo=UTC)
    request = RunRequest("acme-weekly", fired, date(2026, 4, 27), period)
    with Ledger(config.state.url) as ledger:
        ledger.set_paused("acme-weekly", True, by="op")
        try:
            assert daemon.execute(request) is None
            assert runner.requests == []
            skipped = events(caplog, "run.skipped")
            assert skipped[-1]["reason"] == "paused in the web UI"
            ledger.set_paused("acme-weekly", False, by="op")
            outcome = daemon.execute(request)
            assert outcome is not None and outcome.ok
            assert [r.period for r in runner.requests] == [period]
        finally:
            daemon.stop()
