"""The state ledger: run transitions, stale runs, delivery planning, schema migrations."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reports.errors import RunBusyError, SchemaOutdatedError, StateError
from reports.report.periods import Period, PeriodKind
from reports.state.deliveries import DeliveryState
from reports.state.engine import create_state_engine
from reports.state.holds import HoldRecord
from reports.state.ledger import Ledger
from reports.state.migrations import migrate
from reports.state.runs import RunState
from reports.state.schema import SCHEMA_VERSION
from tests._pg import pg_url

WEEK = Period(date(2026, 11, 9), date(2026, 11, 15), PeriodKind.WEEKLY)
NEXT_WEEK = Period(date(2026, 11, 16), date(2026, 11, 22), PeriodKind.WEEKLY)
IDS = {"a@example.org": "<a@example.org>", "b@example.org": "<b@example.org>"}


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


_OPENED: list[Ledger] = []


def opened(ledger: Ledger) -> Ledger:
    """Remember a ledger so that it is closed after the test (PostgreSQL connections)."""
    _OPENED.append(ledger)
    return ledger


@pytest.fixture(autouse=True)
def _close_ledgers() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """Every ledger test runs on SQLite and on PostgreSQL (same code, URL switch)."""
    return sqlite_url if request.param == "sqlite" else pg_url()


@pytest.fixture
def ledger(url: str, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger(url, upgrade=True, clock=clock, stuck_after_s=600) as opened:
        yield opened


def test_a_run_goes_through_every_state_and_each_step_is_logged(
    ledger: Ledger, clock: FakeClock
) -> None:
    run_id = ledger.start_run("acme-weekly", "acme", WEEK)
    for state in (RunState.RENDERING, RunState.ARCHIVED, RunState.DELIVERING, RunState.DONE):
        clock.advance(5)
        ledger.transition(run_id, state, detail=f"to {state}")
    run = ledger.last_run("acme-weekly")
    assert run is not None
    assert (run.id, run.state, run.period) == (run_id, RunState.DONE, WEEK)
    assert run.finished_at == clock.now
    assert run.started_at == clock.now - timedelta(seconds=20)
    events = ledger.events(run_id)
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, RunState.COLLECTING),
        (RunState.COLLECTING, RunState.RENDERING),
        (RunState.RENDERING, RunState.ARCHIVED),
        (RunState.ARCHIVED, RunState.DELIVERING),
        (RunState.DELIVERING, RunState.DONE),
    ]


@pytest.mark.parametrize(
    ("path", "target"),
    [
        pytest.param([], RunState.ARCHIVED, id="collecting-to-archived"),
        pytest.param([], RunState.DONE, id="collecting-to-done"),
        pytest.param([RunState.RENDERING], RunState.DELIVERING, id="rendering-to-delivering"),
        pytest.param([RunState.FAILED], RunState.RENDERING, id="failed-is-final"),
        pytest.param([RunState.RENDERING, RunState.ARCHIVED, RunState.DONE], RunState.FAILED,
                     id="done-is-final"),
        pytest.param([], RunState.COLLECTING, id="same-state"),
    ],
)
def test_an_illegal_transition_raises_and_changes_nothing(
    ledger: Ledger, path: list[RunState], target: RunState
) -> None:
    run_id = ledger.start_run("acme-weekly", "acme", WEEK)
    for state in path:
        ledger.transition(run_id, state)
    before = ledger.run(run_id)
    with pytest.raises(StateError, match=f"cannot go from .* to {target.value}"):
        ledger.transition(run_id, target)
    assert ledger.run(run_id) == before
    assert len(ledger.events(run_id)) == len(path) + 1


def test_failed_run_keeps_its_error(ledger: Ledger) -> None:
    run_id = ledger.start_run("acme-weekly", "acme", WEEK)
    ledger.transition(run_id, RunState.FAILED, error="api: 503 after 5 retries")
    run = ledger.run(run_id)
    assert run is not None and run.error == "api: 503 after 5 retries"
    assert ledger.events(run_id)[-1].detail == "api: 503 after 5 retries"


def test_a_working_run_blocks_a_second_run_of_the_same_period(ledger: Ledger) -> None:
    ledger.start_run("acme-weekly", "acme", WEEK)
    with pytest.raises(StateError, match="already has a run in progress"):
        ledger.start_run("acme-weekly", "acme", WEEK)
    # Another period or another report is independent.
    ledger.start_run("acme-weekly", "acme", NEXT_WEEK)
    ledger.start_run("acme-monthly", "acme", WEEK)


def test_a_stale_run_is_failed_and_a_new_run_starts(ledger: Ledger, clock: FakeClock) -> None:
    stuck = ledger.start_run("acme-weekly", "acme", WEEK)
    ledger.transition(stuck, RunState.RENDERING)
    clock.advance(601)
    fresh = ledger.start_run("acme-weekly", "acme", WEEK)
    old = ledger.run(stuck)
    assert old is not None and old.state is RunState.FAILED
    assert old.error is not None and old.error.startswith("stale: ")
    assert "rendering" in old.error
    # The process that owned the stale run wakes up: it cannot continue it.
    with pytest.raises(StateError):
        ledger.transition(stuck, RunState.ARCHIVED)
    assert [r.id for r in ledger.runs("acme-weekly")] == [fresh, stuck]


def test_recover_stale_marks_only_old_working_runs(ledger: Ledger, clock: FakeClock) -> None:
    old = ledger.start_run("acme-weekly", "acme", WEEK)
    clock.advance(700)
    young = ledger.start_run("acme-weekly", "acme", NEXT_WEEK)
    assert ledger.recover_stale() == [old]
    young_run = ledger.run(young)
    assert young_run is not None and young_run.state is RunState.COLLECTING


def test_a_delivery_is_planned_once_and_skipped_after_it_was_sent(ledger: Ledger) -> None:
    due = ledger.plan_deliveries("acme-weekly", WEEK, list(IDS), IDS, force=False)
    assert due == list(IDS)
    for recipient in due:
        ledger.mark_sending("acme-weekly", WEEK, recipient)
        ledger.mark_sent("acme-weekly", WEEK, recipient, "250 queued")
    assert ledger.plan_deliveries("acme-weekly", WEEK, list(IDS), IDS, force=False) == []
    assert ledger.period_done("acme-weekly", WEEK, IDS)
    sent = ledger.deliveries("acme-weekly", period=WEEK)
    assert [(d.recipient, d.state, d.attempts, d.smtp_reply) for d in sent] == [
        ("a@example.org", DeliveryState.SENT, 1, "250 queued"),
        ("b@example.org", DeliveryState.SENT, 1, "250 queued"),
    ]


def test_periods_done_answers_period_done_for_many_reports_at_once(ledger: Ledger) -> None:
    ids = {**IDS, "c@example.org": "<c@example.org>"}
    # acme: WEEK sent to a and b (c failed permanently); beta: WEEK sent to a only, NEXT_WEEK
    # to a and b; gamma: WEEK sent as a provisional copy only.
    for report, period, sent, failed in (
        ("acme-weekly", WEEK, ["a@example.org", "b@example.org"], ["c@example.org"]),
        ("beta-weekly", WEEK, ["a@example.org"], []),
        ("beta-weekly", NEXT_WEEK, ["a@example.org", "b@example.org"], []),
    ):
        ledger.plan_deliveries(report, period, [*sent, *failed], ids, force=False)
        for recipient in sent:
            ledger.mark_sending(report, period, recipient)
            ledger.mark_sent(report, period, recipient, "250 ok")
        for recipient in failed:
            ledger.mark_sending(report, period, recipient)
            ledger.mark_failed(report, period, recipient, transient=False, reply="550 no")
    ledger.plan_deliveries("gamma-weekly", WEEK, ["a@example.org"], ids, force=False,
                           edition="provisional")
    ledger.mark_sending("gamma-weekly", WEEK, "a@example.org")
    ledger.mark_sent("gamma-weekly", WEEK, "a@example.org", "250 ok")
    for rcpts in (["a@example.org"], ["a@example.org", "b@example.org"], list(ids)):
        wanted = [(report, period, rcpts)
                  for report in ("acme-weekly", "beta-weekly", "gamma-weekly", "delta-weekly")
                  for period in (WEEK, NEXT_WEEK)]
        assert ledger.periods_done(wanted) == {
            (r, p) for r, p, _ in wanted if ledger.period_done(r, p, rcpts)}
        if len(rcpts) == 2:
            assert ledger.periods_done(wanted) == {("acme-weekly", WEEK),
                                                   ("beta-weekly", NEXT_WEEK)}
    assert ledger.periods_done([("gamma-weekly", WEEK, ["a@example.org"])],
                               edition="provisional") == {("gamma-weekly", WEEK)}
    assert ledger.periods_done([]) == set()


def test_force_makes_sent_deliveries_due_again(ledger: Ledger) -> None:
    ledger.plan_deliveries("acme-weekly", WEEK, ["a@example.org"], IDS, force=False)
    ledger.mark_sending("acme-weekly", WEEK, "a@example.org")
    ledger.mark_sent("acme-weekly", WEEK, "a@example.org", "250 ok")
    assert ledger.plan_deliveries("acme-weekly", WEEK, ["a@example.org"], IDS, force=True) == [
        "a@example.org"
    ]
    record = ledger.delivery("acme-weekly", WEEK, "a@example.org")
    assert record is not None and record.state is DeliveryState.PENDING
    assert not ledger.period_done("acme-weekly", WEEK, ["a@example.org"])


def test_transient_failures_are_due_again_permanent_ones_are_not(ledger: Ledger) -> None:
    ledger.plan_deliveries("acme-weekly", WEEK, list(IDS), IDS, force=False)
    ledger.mark_sending("acme-weekly", WEEK, "a@example.org")
    ledger.mark_failed("acme-weekly", WEEK, "a@example.org", transient=True, reply="451 later")
    ledger.mark_sending("acme-weekly", WEEK, "b@example.org")
    ledger.mark_failed("acme-weekly", WEEK, "b@example.org", transient=False, reply="550 nope")
    assert ledger.plan_deliveries("acme-weekly", WEEK, list(IDS), IDS, force=False) == [
        "a@example.org"
    ]
    assert not ledger.period_done("acme-weekly", WEEK, IDS)
    ledger.mark_sending("acme-weekly", WEEK, "a@example.org")
    ledger.mark_sent("acme-weekly", WEEK, "a@example.org", "250 ok")
    assert ledger.period_done("acme-weekly", WEEK, IDS)  # sent or failed-permanent
    record = ledger.delivery("acme-weekly", WEEK, "a@example.org")
    assert record is not None and record.attempts == 2


def test_a_crash_while_sending_resends_with_the_same_message_id(url: str, clock: FakeClock) -> None:
    first = opened(Ledger(url, upgrade=True, clock=clock))
    first.plan_deliveries("acme-weekly", WEEK, ["a@example.org"], IDS, force=False)
    first.mark_sending("acme-weekly", WEEK, "a@example.org")
    first.close()  # the process dies here, before mark_sent

    after = opened(Ledger(url, clock=clock))
    due = after.plan_deliveries(
        "acme-weekly", WEEK, ["a@example.org"], {"a@example.org": "<other@example.org>"},
        force=False,
    )
    assert due == ["a@example.org"]
    record = after.delivery("acme-weekly", WEEK, "a@example.org")
    assert record is not None
    assert (record.state, record.message_id) == (DeliveryState.SENDING, "<a@example.org>")
    after.mark_sending("acme-weekly", WEEK, "a@example.org")
    sent = after.mark_sent("acme-weekly", WEEK, "a@example.org", "250 ok")
    assert sent.attempts == 2 and sent.message_id == "<a@example.org>"


@pytest.mark.parametrize(
    "move",
    [
        pytest.param("sent", id="pending-to-sent"),
        pytest.param("failed", id="pending-to-failed"),
    ],
)
def test_illegal_delivery_moves_raise(ledger: Ledger, move: str) -> None:
    ledger.plan_deliveries("acme-weekly", WEEK, ["a@example.org"], IDS, force=False)
    with pytest.raises(StateError, match="cannot go from pending"):
        if move == "sent":
            ledger.mark_sent("acme-weekly", WEEK, "a@example.org", "250")
        else:
            ledger.mark_failed("acme-weekly", WEEK, "a@example.org", transient=True, reply="x")


def test_marking_an_unplanned_delivery_raises(ledger: Ledger) -> None:
    with pytest.raises(StateError, match="never planned"):
        ledger.mark_sending("acme-weekly", WEEK, "nobody@example.org")


def test_archive_entries_are_recorded_replaced_and_removed(ledger: Ledger) -> None:
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.pdf", sha256="0" * 64, size=10)
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.pdf", sha256="1" * 64, size=11,
                          data_hash="d" * 64)
    ledger.record_archive("acme-weekly", "acme", NEXT_WEEK, path="/a/2.pdf", sha256="2" * 64,
                          size=12)
    entry = ledger.archive_entry("acme-weekly", WEEK)
    assert entry is not None and (entry.sha256, entry.size, entry.data_hash) == (
        "1" * 64, 11, "d" * 64)
    assert [e.path for e in ledger.archive_entries("acme-weekly")] == ["/a/1.pdf", "/a/2.pdf"]
    assert ledger.remove_archive_entry("acme-weekly", WEEK)
    assert not ledger.remove_archive_entry("acme-weekly", WEEK)
    assert ledger.archive_entry("acme-weekly", WEEK) is None


def test_a_re_rendered_period_keeps_the_earlier_pdf_as_history(ledger: Ledger) -> None:
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/w.pdf", sha256="1" * 64, size=1,
                          render_key="a" * 64)
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/w.bbb.pdf", sha256="2" * 64,
                          size=2, render_key="b" * 64)
    files = ledger.archive_files("acme-weekly", WEEK)
    assert [(f.path, f.current, f.render_key) for f in files] == [
        ("/a/w.bbb.pdf", True, "b" * 64), ("/a/w.pdf", False, "a" * 64)]
    assert [e.path for e in ledger.archive_entries()] == ["/a/w.bbb.pdf", "/a/w.pdf"]
    # Back to the first key: its file is current again, the second one becomes history.
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/w.pdf", sha256="1" * 64, size=1,
                          render_key="a" * 64)
    assert [(f.path, f.current) for f in ledger.archive_files("acme-weekly", WEEK)] == [
        ("/a/w.pdf", True), ("/a/w.bbb.pdf", False)]
    assert ledger.remove_archive_entry("acme-weekly", WEEK, path="/a/w.bbb.pdf")
    assert [f.path for f in ledger.archive_files("acme-weekly", WEEK)] == ["/a/w.pdf"]


def test_a_provisional_pdf_is_kept_beside_the_final_one(ledger: Ledger) -> None:
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.provisional.pdf",
                          sha256="0" * 64, size=10, edition="provisional")
    assert ledger.archive_entry("acme-weekly", WEEK) is None  # no final PDF yet
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.pdf", sha256="1" * 64, size=11)
    assert [(e.path, e.edition) for e in ledger.archive_entries("acme-weekly")] == [
        ("/a/1.pdf", "final"), ("/a/1.provisional.pdf", "provisional")]
    assert ledger.remove_archive_entry("acme-weekly", WEEK, "provisional")
    assert [e.edition for e in ledger.archive_entries()] == ["final"]


def test_a_held_run_is_finished_and_keeps_the_gate_verdict(ledger: Ledger) -> None:
    run_id = ledger.start_run("acme-weekly", "acme", WEEK)
    gate = '{"ok": false, "failed": [{"rule": "day_coverage"}]}'
    held = ledger.transition(run_id, RunState.HELD, error="data for Nov 15 has not arrived",
                             gate=gate)
    assert (held.state, held.gate, held.edition) == (RunState.HELD, gate, None)
    assert held.finished_at is not None and held.error == "data for Nov 15 has not arrived"
    with pytest.raises(StateError, match="cannot go from held to rendering"):
        ledger.transition(run_id, RunState.RENDERING)
    # A held run blocks nothing: the next run of the period starts at once.
    again = ledger.start_run("acme-weekly", "acme", WEEK)
    ledger.transition(again, RunState.RENDERING, gate=gate, edition="provisional")
    assert ledger.run(again).edition == "provisional"  # type: ignore[union-attr]


def test_a_gate_alert_is_recorded_once_per_period_and_stage(ledger: Ledger) -> None:
    assert ledger.alerted_at("acme-weekly", WEEK, "held") is None
    ledger.record_alerted("acme-weekly", WEEK, "held")
    first = ledger.alerted_at("acme-weekly", WEEK, "held")
    assert first is not None
    ledger.record_alerted("acme-weekly", WEEK, "held")  # another run of the period: kept
    assert ledger.alerted_at("acme-weekly", WEEK, "held") == first
    assert ledger.alerted_at("acme-weekly", WEEK, "provisional") is None
    assert ledger.alerted_at("acme-weekly", NEXT_WEEK, "held") is None


def test_a_send_notes_its_hold_and_never_changes_the_schedulers(ledger: Ledger) -> None:
    since = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
    mine = HoldRecord("acme-weekly", WEEK, date(2026, 11, 16), since, since, None, 0, "held",
                      "data for Nov 15 has not arrived")
    ledger.note_hold(mine)
    assert ledger.hold_records() == [mine]
    later = replace(mine, since=since + timedelta(hours=1), last_try=since + timedelta(hours=1))
    ledger.note_hold(later)  # held again by hand: the first hold stays
    assert ledger.hold_records() == [mine]
    ledger.note_hold(replace(later, state="provisional"))  # sent provisional: it moves on
    assert [(h.since, h.state) for h in ledger.hold_records()] == [(since, "provisional")]
    given_up = replace(mine, state="given-up", rechecks=3)
    ledger.save_hold(given_up)  # the scheduler's own word is not changed by a send
    ledger.note_hold(replace(later, state="provisional"))
    assert ledger.hold_records() == [given_up]


def test_the_final_report_replaces_a_provisional_copy_once(
    ledger: Ledger, clock: FakeClock
) -> None:
    provisional = {r: f"<p.{r}>" for r in IDS}
    recipients = ["a@example.org", "b@example.org"]
    assert ledger.plan_deliveries("acme-weekly", WEEK, recipients, provisional, force=False,
                                  edition="provisional") == recipients
    for recipient in recipients:
        ledger.mark_sending("acme-weekly", WEEK, recipient)
        ledger.mark_sent("acme-weekly", WEEK, recipient, "250 ok")
    assert ledger.plan_deliveries("acme-weekly", WEEK, recipients, provisional, force=False,
                                  edition="provisional") == []
    assert not ledger.period_done("acme-weekly", WEEK, recipients)
    assert ledger.period_done("acme-weekly", WEEK, recipients, edition="provisional")
    assert set(ledger.provisional_recipients("acme-weekly", WEEK)) == set(recipients)
    clock.advance(3600)
    # The final: due for both, with the final Message-ID; sent once.
    assert ledger.plan_deliveries("acme-weekly", WEEK, recipients, IDS, force=False) == recipients
    record = ledger.delivery("acme-weekly", WEEK, "a@example.org")
    assert record is not None and (record.edition, record.message_id, record.state) == (
        None, "<a@example.org>", DeliveryState.PENDING)
    for recipient in recipients:
        ledger.mark_sending("acme-weekly", WEEK, recipient)
        ledger.mark_sent("acme-weekly", WEEK, recipient, "250 ok")
    assert ledger.period_done("acme-weekly", WEEK, recipients)
    assert ledger.plan_deliveries("acme-weekly", WEEK, recipients, IDS, force=False) == []
    # No provisional copy after the final; the provisional send is remembered.
    assert ledger.plan_deliveries("acme-weekly", WEEK, recipients, provisional, force=False,
                                  edition="provisional") == []
    sent = ledger.provisional_recipients("acme-weekly", WEEK)
    assert sent["a@example.org"] == clock.now - timedelta(seconds=3600)


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    Ledger(sqlite_url).close()
    engine = create_state_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_an_old_database_is_migrated_without_losing_history(url: str, clock: FakeClock) -> None:
    engine = create_state_engine(url)
    assert migrate(engine, target=1) == 1
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO deliveries (report, period_start, period_end, recipient, state, "
            "attempts, message_id, created_at, updated_at, sent_at) VALUES ('acme-weekly', "
            "'2026-11-09', '2026-11-15', 'a@example.org', 'sent', 1, '<a@example.org>', "
            "'2026-11-16 07:00:00', '2026-11-16 07:00:00', '2026-11-16 07:00:00')"
        ))
        conn.execute(sa.text(
            "INSERT INTO archive_entries (report, org, period_start, period_end, path, sha256, "
            "size, created_at) VALUES ('acme-weekly', 'acme', '2026-11-09', '2026-11-15', "
            "'/a/1.pdf', '" + "0" * 64 + "', 10, '2026-11-16 07:00:00')"
        ))
    engine.dispose()

    ledger = opened(Ledger(url, upgrade=True, clock=clock))
    assert ledger.schema_version == SCHEMA_VERSION == 10
    # Version 5 rebuilt the archive index with the edition in its key; the entry is final.
    [kept] = ledger.archive_entries()
    assert (kept.path, kept.edition) == ("/a/1.pdf", "final")
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.provisional.pdf",
                          sha256="1" * 64, size=11, edition="provisional")
    assert len(ledger.archive_entries()) == 2
    # Version 7: the old entry has no render key; a re-render keeps it as history.
    assert kept.render_key is None and kept.current
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.k.pdf", sha256="2" * 64,
                          size=12, render_key="k" * 64)
    assert [(e.path, e.current) for e in ledger.archive_files("acme-weekly", WEEK)] == [
        ("/a/1.k.pdf", True), ("/a/1.pdf", False)]
    # Version 8: the old entry has no HTML (no preview) and no run; new ones keep both, and a
    # re-render moves them to history with the PDF.
    assert (kept.html_path, kept.run_id) == (None, None)
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.h.pdf", sha256="3" * 64,
                          size=13, render_key="h" * 64, html=("/a/1.h.html", "4" * 64, 14),
                          run_id=7)
    ledger.record_archive("acme-weekly", "acme", WEEK, path="/a/1.i.pdf", sha256="5" * 64,
                          size=15, render_key="i" * 64)
    kept_h = next(e for e in ledger.archive_entries() if e.path == "/a/1.h.pdf")
    assert (kept_h.current, kept_h.html_path, kept_h.html_sha256, kept_h.html_size,
            kept_h.run_id) == (False, "/a/1.h.html", "4" * 64, 14, 7)
    [old] = ledger.deliveries("acme-weekly")
    assert (old.state, old.message_id, old.pdf_sha256, old.run_id) == (
        DeliveryState.SENT, "<a@example.org>", None, None)
    assert ledger.plan_deliveries("acme-weekly", WEEK, ["a@example.org"], IDS, force=False) == []
    # The new columns work on the migrated database.
    run_id = ledger.start_run("acme-weekly", "acme", NEXT_WEEK)
    ledger.plan_deliveries("acme-weekly", NEXT_WEEK, ["a@example.org"], IDS, force=False,
                           run_id=run_id)
    ledger.mark_sending("acme-weekly", NEXT_WEEK, "a@example.org", pdf_sha256="f" * 64)
    [new] = ledger.deliveries(run_id=run_id)
    assert new.pdf_sha256 == "f" * 64
    # Version 4's tables (the web UI's audit trail and pauses) exist on the migrated database.
    ledger.audit("op", "pause", report="acme-weekly")
    assert ledger.set_paused("acme-weekly", True, by="op")
    assert ledger.paused_reports() == {"acme-weekly"}
    # Version 6's run lease exists too.
    assert ledger.renew_lease(run_id) is True
    # Version 8: the scheduler's held periods, kept across restarts (replaced, then dropped).
    since = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
    hold = HoldRecord("acme-weekly", WEEK, date(2026, 11, 16), since, since, None, 0, "held",
                      "data for Nov 15 has not arrived")
    ledger.save_hold(hold)
    later = replace(hold, last_try=since + timedelta(hours=1), rechecks=1, state="provisional")
    ledger.save_hold(later)
    assert ledger.hold_records() == [later]
    ledger.drop_hold("acme-weekly", WEEK)
    assert ledger.hold_records() == []


def test_version_10_counts_the_alerts_of_version_9_as_sent(url: str) -> None:
    # Version 9 inferred "already told" from a held run and from provisional deliveries; the
    # upgrade records those periods as alerted, so it sends no old alert again.
    engine = create_state_engine(url)
    assert migrate(engine, target=9) == 9
    with engine.begin() as conn:
        for state in ("held", "held", "done"):
            conn.execute(sa.text(
                "INSERT INTO runs (report, org, period_start, period_end, period_kind, state, "
                "started_at, updated_at) VALUES ('acme-weekly', 'acme', '2026-11-09', "
                f"'2026-11-15', 'weekly', '{state}', '2026-11-16 07:00:00', "
                "'2026-11-16 07:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO deliveries (report, period_start, period_end, recipient, state, "
            "attempts, message_id, created_at, updated_at, sent_at, edition, "
            "provisional_sent_at) VALUES ('acme-weekly', '2026-11-16', '2026-11-22', "
            "'a@example.org', 'sent', 1, '<a@example.org>', '2026-11-23 13:00:00', "
            "'2026-11-23 13:00:00', '2026-11-23 13:00:00', 'provisional', "
            "'2026-11-23 13:00:00')"))
    engine.dispose()
    ledger = opened(Ledger(url, upgrade=True))
    assert ledger.schema_version == 10
    assert ledger.alerted_at("acme-weekly", WEEK, "held") == datetime(
        2026, 11, 16, 7, 0, tzinfo=UTC)
    assert ledger.alerted_at("acme-weekly", WEEK, "provisional") is None
    assert ledger.alerted_at("acme-weekly", NEXT_WEEK, "provisional") == datetime(
        2026, 11, 23, 13, 0, tzinfo=UTC)
    assert ledger.alerted_at("acme-weekly", NEXT_WEEK, "held") is None


def _schema_of(url: str) -> dict[str, Any]:
    """Every table's columns (in order), keys, indexes and constraints, as the database says."""
    engine = create_state_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {table: {
            # A PostgreSQL id's sequence is named after the table that made it: version 5's
            # rebuild of the archive index left ``archive_entries_v5_id_seq``. Nothing names it.
            "columns": [(c["name"], str(c["type"]), c["nullable"],
                         re.sub(r"nextval\('\w+'", "nextval('(sequence)'", c.get("default") or ""))
                        for c in inspector.get_columns(table)],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]),
                               str({k: str(v) for k, v in
                                    i.get("dialect_options", {}).items()}))
                              for i in inspector.get_indexes(table)),
            "unique": sorted((u["name"], tuple(u["column_names"]))
                             for u in inspector.get_unique_constraints(table)),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"],
                           tuple(f["referred_columns"]), str(f["options"]))
                          for f in inspector.get_foreign_keys(table)),
        } for table in sorted(inspector.get_table_names())}
    finally:
        engine.dispose()


def test_a_new_database_gets_the_migrated_schema_in_one_transaction(
    url: str, tmp_path: Path
) -> None:
    # A new database skips the ten migrations (ten commits, each a disk flush on SQLite) and
    # is made at once: the very tables, columns, keys and indexes the migrations leave.
    stepwise = f"sqlite:///{tmp_path / 'stepwise.db'}" if url.startswith("sqlite") else url
    engine = create_state_engine(stepwise)
    assert migrate(engine, target=1) == 1
    steps: list[str] = []
    if stepwise.startswith("sqlite"):  # each step is one transaction: its DDL commits once
        sa.event.listen(engine, "connect",
                        lambda dbapi, _record: dbapi.set_trace_callback(steps.append))
        engine.dispose()
    assert migrate(engine) == SCHEMA_VERSION
    engine.dispose()
    if steps:
        kept = [s.split()[0].upper() for s in steps if not s.startswith(("PRAGMA", "SELECT"))]
        assert kept.count("COMMIT") == SCHEMA_VERSION - 1, kept
        assert kept[0] == "BEGIN" and kept[-1] == "COMMIT"
        assert all(after == "BEGIN" for before, after in itertools.pairwise(kept)
                   if before == "COMMIT"), kept
    migrated = _schema_of(stepwise)
    fresh = url if url.startswith("sqlite") else pg_url()  # PostgreSQL: emptied again
    engine = create_state_engine(fresh)
    commits: list[int] = []
    sa.event.listen(engine, "commit", lambda _conn: commits.append(1))
    statements: list[str] = []  # what SQLite itself ran (its driver's own BEGIN/COMMIT too)
    if fresh.startswith("sqlite"):
        sa.event.listen(engine, "connect",
                        lambda dbapi, _record: dbapi.set_trace_callback(statements.append))
    assert migrate(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM schema_version")).all() == [
            (SCHEMA_VERSION,)]
    engine.dispose()
    assert len(commits) == 1
    if statements:  # every CREATE inside one transaction, not each committed on its own
        made = [s.split("(")[0].split()[0] for s in statements
                if not s.startswith(("PRAGMA", "SELECT"))]
        assert made[0] == "BEGIN" and made[-1] == "COMMIT" and made.count("COMMIT") == 1
        assert made.count("CREATE") == 15, made
    assert _schema_of(fresh) == migrated
    assert "ux_runs_working" in str(migrated["runs"]["indexes"])


def test_a_database_from_a_newer_version_is_refused(url: str) -> None:
    Ledger(url, upgrade=True).close()
    engine = create_state_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(StateError, match="schema version 99, newer"):
        Ledger(url)


def test_postgresql_at_an_older_schema_is_refused_until_db_upgrade_and_sqlite_migrates(
    url: str,
) -> None:
    engine = create_state_engine(url)
    migrate(engine, target=5)
    engine.dispose()
    if url.startswith("sqlite"):  # one machine: migrated on first use
        assert opened(Ledger(url)).schema_version == SCHEMA_VERSION
        return
    with pytest.raises(SchemaOutdatedError) as info:
        Ledger(url)
    assert str(info.value) == (f"state database is at schema 5, this version needs "
                               f"{SCHEMA_VERSION}: run `ibl-reports db upgrade`")
    assert info.value.exit_code == 2
    assert opened(Ledger(url, upgrade=True)).schema_version == SCHEMA_VERSION
    assert opened(Ledger(url)).schema_version == SCHEMA_VERSION


def test_one_engine_per_process_and_a_new_one_after_fork(url: str) -> None:
    import os

    from reports.state.engine import process_engine

    engine = process_engine(url)
    assert process_engine(url) is engine
    first = opened(Ledger(url, upgrade=True, engine=engine))
    first.close()  # a shared engine outlives the store
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the inherited engine is not reused
        try:
            child = process_engine(url)
            ok = child is not engine and opened(Ledger(url, engine=child)).runs() == []
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    assert process_engine(url) is engine
    engine.dispose()


def test_postgresql_checks_its_schema_once_per_engine_and_refuses_an_older_one_each_time(
) -> None:
    """One engine per process and URL (``process_engine``): after the first open finds the
    schema current, later opens send no statement; an older schema is refused on every open
    (exit 2) until ``db upgrade``, and only then remembered."""
    url = pg_url()
    engine = create_state_engine(url)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_a: statements.append(statement))
    try:
        migrate(engine, target=5)
        for _ in range(2):
            with pytest.raises(SchemaOutdatedError) as info:
                Ledger(url, engine=engine)
            assert info.value.exit_code == 2
            assert str(info.value) == (f"state database is at schema 5, this version needs "
                                       f"{SCHEMA_VERSION}: run `ibl-reports db upgrade`")
        Ledger(url, engine=engine, upgrade=True).close()
        statements.clear()
        assert opened(Ledger(url, engine=engine)).schema_version == SCHEMA_VERSION
        assert any("schema_version" in s for s in statements), statements
        statements.clear()
        for _ in range(3):
            assert opened(Ledger(url, engine=engine)).schema_version == SCHEMA_VERSION
        assert statements == []
        other = create_state_engine(url)  # another process's engine: checks for itself
        try:
            with other.begin() as conn:
                conn.execute(sa.text("UPDATE schema_version SET version = 99"))
            with pytest.raises(StateError, match="schema version 99, newer"):
                Ledger(url, engine=other)
        finally:
            other.dispose()
    finally:
        engine.dispose()


def test_opening_the_same_database_twice_does_not_migrate_twice(url: str) -> None:
    Ledger(url, upgrade=True).close()
    ledger = opened(Ledger(url))
    assert ledger.schema_version == SCHEMA_VERSION


def test_a_bad_url_is_a_state_error_without_the_password() -> None:
    with pytest.raises(StateError) as info:
        Ledger("postgresql+nosuchdriver://user:hunter2@127.0.0.1:1/reports")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_the_database_itself_refuses_two_working_runs_of_one_period(
    ledger: Ledger, url: str
) -> None:
    # What protects two processes that both passed the check in start_run at the same moment.
    ledger.start_run("acme-weekly", "acme", WEEK)
    engine = create_state_engine(url)
    insert = sa.text(
        "INSERT INTO runs (report, org, period_start, period_end, period_kind, state, "
        "started_at, updated_at) VALUES ('acme-weekly', 'acme', '2026-11-09', '2026-11-15', "
        "'weekly', :state, '2026-11-16 07:00:00', '2026-11-16 07:00:00')"
    )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"state": "rendering"})
    with engine.begin() as conn:  # finished runs of the same period are fine
        conn.execute(insert, {"state": "failed"})
        conn.execute(insert, {"state": "done"})
    engine.dispose()


def test_a_run_whose_lease_ran_out_is_recovered_at_once(url: str, clock: FakeClock) -> None:
    # Its process died (killed, a zombie nobody reaps, another machine gone): the heartbeat
    # stopped, the lease ran out. No stuck_after wait, no process id consulted.
    ledger = opened(Ledger(url, upgrade=True, clock=clock))
    first = ledger.start_run("acme-weekly", "acme", WEEK)
    engine = create_state_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET lease_until = :past WHERE id = :id"),
                     {"past": datetime(2000, 1, 1), "id": first})
    engine.dispose()
    other = opened(Ledger(url, clock=clock))  # another process
    second = other.start_run("acme-weekly", "acme", WEEK)
    assert second != first
    old = ledger.run(first)
    assert old is not None and old.state == RunState.FAILED
    assert "its lease ran out at 2000-01-01T00:00:00" in (old.error or "")
    # The first attempt lost its run: its writes are fenced off.
    assert ledger.renew_lease(first) is False
    with pytest.raises(StateError, match="cannot go from failed to rendering"):
        ledger.transition(first, RunState.RENDERING)


def test_a_live_lease_is_renewed_and_a_waiting_attempt_takes_over_once_it_stops(
    url: str,
) -> None:
    ledger = opened(Ledger(url, upgrade=True, stuck_after_s=60, lease_s=0.3))
    first = ledger.start_run("acme-weekly", "acme", WEEK)
    with ledger.leased(first) as beat:
        time.sleep(0.5)  # longer than the lease: only the heartbeat keeps it
        with pytest.raises(RunBusyError, match="already has a run in progress"):
            opened(Ledger(url, stuck_after_s=60, lease_s=0.3)).start_run(
                "acme-weekly", "acme", WEEK)
        assert not beat.lost.is_set()
    # The heartbeat stopped (the process "died"): a waiting attempt gets the run within a lease.
    started = time.monotonic()
    second = opened(Ledger(url, stuck_after_s=60, lease_s=0.3)).start_run(
        "acme-weekly", "acme", WEEK, wait_s=5)
    assert second != first and time.monotonic() - started < 2


def test_sending_is_fenced_by_the_run_attempt(url: str, clock: FakeClock) -> None:
    ledger = opened(Ledger(url, upgrade=True, clock=clock))
    run = ledger.start_run("acme-weekly", "acme", WEEK)
    for state in (RunState.RENDERING, RunState.ARCHIVED, RunState.DELIVERING):
        ledger.transition(run, state)
    ids = {"a@x.example": "<1@x>", "b@x.example": "<2@x>"}
    assert ledger.plan_deliveries("acme-weekly", WEEK, ids, ids, force=False,
                                  run_id=run) == list(ids)
    ledger.mark_sending("acme-weekly", WEEK, "a@x.example", run_id=run)
    engine = create_state_engine(url)
    with engine.begin() as conn:  # the lease ran out and another attempt took the run over
        conn.execute(sa.text("UPDATE runs SET attempt = 'someone-else' WHERE id = :id"),
                     {"id": run})
    engine.dispose()
    with pytest.raises(StateError, match="is no longer this attempt's"):
        ledger.mark_sending("acme-weekly", WEEK, "b@x.example", run_id=run)
    record = ledger.delivery("acme-weekly", WEEK, "b@x.example")
    assert record is not None and record.state == DeliveryState.PENDING
    # Planning again (a second planner) inserts nothing twice.
    assert ledger.plan_deliveries("acme-weekly", WEEK, ids, ids, force=False) == list(ids)
    assert len(ledger.deliveries("acme-weekly", period=WEEK)) == 2


def test_a_takeover_cannot_slip_between_the_fence_and_the_write(url: str) -> None:
    # The fence reads the run ("still this attempt's?"), then the delivery is written. Another
    # process taking the run over right after that read must wait until the write commits
    # (SQLite: the write lock from BEGIN IMMEDIATE; PostgreSQL: the row read FOR SHARE), not
    # slip in between and leave a delivery marked sending by an attempt that lost its run.
    engine = create_state_engine(url)
    ledger = opened(Ledger(url, upgrade=True, engine=engine))
    run = ledger.start_run("acme-weekly", "acme", WEEK)
    for state in (RunState.RENDERING, RunState.ARCHIVED, RunState.DELIVERING):
        ledger.transition(run, state)
    ids = {"a@x.example": "<1@x>"}
    ledger.plan_deliveries("acme-weekly", WEEK, ids, ids, force=False, run_id=run)
    other = create_state_engine(url)
    takeover: list[str] = []

    def take_over(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if takeover or not statement.startswith("SELECT runs.state, runs.attempt"):
            return
        with other.connect() as conn:
            wait = ("PRAGMA busy_timeout = 50" if conn.dialect.name == "sqlite"
                    else "SET lock_timeout = '50ms'")
            conn.exec_driver_sql(wait)
            try:
                conn.execute(sa.text("UPDATE runs SET attempt = 'someone-else' WHERE id = :id"),
                             {"id": run})
                conn.commit()
                takeover.append("took the run over")
            except sa.exc.OperationalError as exc:
                conn.rollback()
                takeover.append(f"waited: {str(exc.orig).splitlines()[0]}")

    sa.event.listen(engine, "after_cursor_execute", take_over)
    try:
        ledger.mark_sending("acme-weekly", WEEK, "a@x.example", run_id=run)
    finally:
        sa.event.remove(engine, "after_cursor_execute", take_over)
        other.dispose()
        ledger.close()
        engine.dispose()
    assert len(takeover) == 1 and takeover[0].startswith("waited"), takeover
    assert re.search("locked|lock timeout", takeover[0]), takeover


def test_a_run_of_a_live_process_still_blocks(url: str, clock: FakeClock) -> None:
    ledger = opened(Ledger(url, upgrade=True, clock=clock))
    ledger.start_run("acme-weekly", "acme", WEEK)
    with pytest.raises(StateError, match="already has a run in progress"):
        ledger.start_run("acme-weekly", "acme", WEEK)


def _open_new(url: str, answers: Any) -> None:
    """In a forked process: open the database (creating the schema); answer "" or what went
    wrong (an exception or a warning)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Ledger(url, upgrade=True).close()
        except Exception as exc:
            answers.put(f"{type(exc).__name__}: {exc}")
            return
    answers.put("; ".join(str(w.message) for w in caught))


def test_processes_opening_a_new_database_at_once_all_succeed(url: str) -> None:
    # Forked from this process (its imports done): the six start within milliseconds of each
    # other, where interpreters started afresh were spread over their ~1 s of imports.
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    answers = ctx.Queue()
    procs = [ctx.Process(target=_open_new, args=(url, answers)) for _ in range(6)]
    for proc in procs:
        proc.start()
    results = [answers.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert results == [""] * 6
    assert [proc.exitcode for proc in procs] == [0] * 6
    assert opened(Ledger(url)).schema_version == SCHEMA_VERSION


def test_the_audit_trail_keeps_who_did_what_and_when(ledger: Ledger, clock: FakeClock) -> None:
    ledger.audit("op", "download", report="acme-weekly", detail="acme-weekly_2026-11-09.pdf")
    clock.advance(5)
    ledger.audit("op", "retry", report="acme-weekly", run_id=7, detail="b@example.org")
    ledger.audit("ana", "pause", report="beta-weekly")
    rows = ledger.audit_rows(report="acme-weekly")
    assert [(r.user, r.action, r.run_id) for r in rows] == [("op", "retry", 7),
                                                            ("op", "download", None)]
    assert rows[0].at - rows[1].at == timedelta(seconds=5)
    assert [r.action for r in ledger.audit_rows(run_id=7)] == ["retry"]
    assert len(ledger.audit_rows(limit=2)) == 2


def test_pausing_is_remembered_and_resuming_forgets_it(ledger: Ledger) -> None:
    assert ledger.paused_reports() == set() and not ledger.is_paused("acme-weekly")
    assert ledger.set_paused("acme-weekly", True, by="op")
    assert not ledger.set_paused("acme-weekly", True, by="op")  # already paused
    assert ledger.is_paused("acme-weekly") and not ledger.is_paused("beta-weekly")
    assert ledger.set_paused("acme-weekly", False, by="op")
    assert ledger.paused_reports() == set()


def test_requeued_deliveries_are_due_again_with_their_message_id(ledger: Ledger) -> None:
    recipients = ["a@example.org", "b@example.org"]
    ledger.plan_deliveries("acme-weekly", WEEK, recipients, IDS, force=False)
    for recipient in recipients:
        ledger.mark_sending("acme-weekly", WEEK, recipient)
    ledger.mark_sent("acme-weekly", WEEK, "a@example.org", "250 ok")
    ledger.mark_failed("acme-weekly", WEEK, "b@example.org", transient=False, reply="550 no")
    assert ledger.plan_deliveries("acme-weekly", WEEK, recipients, IDS, force=False) == []
    assert ledger.requeue_deliveries("acme-weekly", WEEK, ["b@example.org", "c@x.org"]) == [
        "b@example.org"]
    again = ledger.delivery("acme-weekly", WEEK, "b@example.org")
    assert again is not None
    assert (again.state, again.attempts, again.message_id) == (
        DeliveryState.PENDING, 0, "<b@example.org>")
    assert ledger.plan_deliveries("acme-weekly", WEEK, recipients, IDS, force=False) == [
        "b@example.org"]
    assert ledger.requeue_deliveries("acme-weekly", WEEK, ["b@example.org"]) == []  # pending


def test_a_sqlite_ledger_never_imports_the_postgresql_dialect(tmp_path: Path) -> None:
    """Declaring the partial index for PostgreSQL too imported its dialect (~30-50 ms of CPU)
    in every one-shot ``generate``; a fresh interpreter is the only honest view."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from reports.state.ledger import Ledger\n"
        f"Ledger({'sqlite:///' + str(tmp_path / 'state.db')!r}).close()\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"
    assert (tmp_path / "state.db").is_file()
