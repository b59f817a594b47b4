"""Learner privacy, the pure parts: pseudonyms, the learners forms, small-group suppression
(complementary cells, averages, percentages), and the pseudonym key file."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from reports.config import ReportConfig, parse_config
from reports.config.privacy import PrivacyConfig
from reports.errors import ConfigError
from reports.report.analysis import analyse
from reports.report.csvdata import courses_csv, daily_enrollments_csv
from reports.report.highlights import highlights
from reports.report.model import CourseActivity
from reports.report.privacy import (
    Policy,
    apply_learners,
    engagement_bands,
    policy_for,
    pseudonym,
)
from reports.report.render import kpi_cards, missing_notes
from reports.report.suppress import Suppression, complementary, daily_cells, plan
from reports.state.pseudonym_key import KEY_FILE, fingerprint, key_path, load_key
from tests._sample import realistic

KEY = b"0123456789abcdef0123456789abcdef"


def test_a_pseudonym_is_stable_short_and_depends_on_key_org_and_user() -> None:
    one = pseudonym(KEY, "acme", "ada000001")
    assert one == pseudonym(KEY, "acme", "ada000001")
    assert one.startswith("Learner ") and len(one.removeprefix("Learner ")) == 10
    assert set(one.removeprefix("Learner ")) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert len({one, pseudonym(KEY, "acme", "ada000002"), pseudonym(KEY, "other", "ada000001"),
                pseudonym(b"another key of enough length!!", "acme", "ada000001")}) == 4


def test_a_pseudonym_is_the_start_of_the_hmacs_base32() -> None:
    """The first 10 characters of base32(HMAC-SHA256(key, "org/username")), as in the archive's
    earlier reports (the values were computed by encoding the whole digest)."""
    assert pseudonym(KEY, "acme", "ada000001") == "Learner U7IBXBCD4V"
    assert pseudonym(KEY, "acme", "ada000002") == "Learner SSQY25QTKW"


def test_the_learners_forms_drop_every_identity() -> None:
    data = realistic()
    pseudo = apply_learners(data, Policy("pseudonymous", key=KEY))
    assert {u.name for u in pseudo.users} == {""}
    assert {u.username for u in pseudo.users} == {
        pseudonym(KEY, data.org, u.username) for u in data.users}
    assert [u.engagement_index for u in pseudo.users] == [u.engagement_index for u in data.users]
    aggregate = apply_learners(data, Policy("aggregate"))
    assert {(u.username, u.name) for u in aggregate.users} == {("", "")}
    assert apply_learners(data, Policy("named")) is data
    assert KEY.decode() not in repr(Policy("pseudonymous", key=KEY))


def test_a_report_falls_back_on_the_privacy_table() -> None:
    report = ReportConfig.model_validate(
        {"name": "w", "org": "o", "period": "weekly", "schedule": "0 7 * * 1"})
    assert policy_for(PrivacyConfig(), report) == Policy("pseudonymous", 10, False)
    own = report.model_copy(update={"learners": "named", "min_group_size": 5,
                                    "attach_learner_list": True})
    assert policy_for(PrivacyConfig(), own) == Policy("named", 5, True)


def test_engagement_bands_count_every_scored_learner_once() -> None:
    bands = engagement_bands([0.0, 19.9, 20.0, 55.5, 100.0, None])
    assert [(b.low, b.high, b.learners) for b in bands] == [
        (0, 20, 2), (20, 40, 1), (40, 60, 1), (60, 80, 0), (80, 100, 1)]


@pytest.mark.parametrize(
    ("cells", "hidden"),
    [
        pytest.param({"a": 3, "b": 40, "c": 12}, {"a", "c"}, id="one-small-gets-a-complement"),
        pytest.param({"a": 3, "b": 4, "c": 12}, {"a", "b"}, id="two-small-are-enough"),
        pytest.param({"a": 0, "b": 40, "c": None}, set(), id="zero-and-missing-stay"),
        pytest.param({"a": 9, "b": 0}, {"a"}, id="no-candidate-left"),
        pytest.param({"a": 10, "b": 11}, set(), id="nothing-small"),
    ],
)
def test_complementary_suppression(cells: dict[str, int | None], hidden: set[str]) -> None:
    assert complementary(cells.items(), 10) == hidden


def test_daily_cells_complement_within_each_day() -> None:
    rows = [("d1", "a", 3, 0), ("d1", "b", 20, 0), ("d2", "a", 15, 2), ("d2", "b", 30, 12)]
    assert daily_cells(rows, 10) == {(0, 2), (1, 2), (2, 3), (3, 3)}


def _small(data_users: int = 1160, small: int = 3) -> object:
    data = realistic()
    courses = list(data.courses)
    for i in range(1, small + 1):
        courses[-i] = replace(courses[-i], user_count=i * 2)
    return replace(data, courses=tuple(courses), total_active=data_users)


def test_suppressed_counts_never_print_below_k() -> None:
    data = _small()
    hide = plan(data, 10)  # type: ignore[arg-type]
    analysis = analyse(data, top_n=30, suppression=hide)  # type: ignore[arg-type]
    assert analysis.courses_suppressed == 3
    for row in analysis.top_courses:
        assert hide.hides(row.users) == (0 < row.users < 10)
    table = list(csv.reader(io.StringIO(courses_csv(data, hide).decode("utf-8-sig"))))  # type: ignore[arg-type]
    assert sum(row[2] == "<10" for row in table[1:]) == 3
    daily = list(csv.reader(io.StringIO(
        daily_enrollments_csv(data, hide).decode("utf-8-sig"))))  # type: ignore[arg-type]
    for row in [*table[1:], *daily[1:]]:
        for value in row[2:4]:
            assert value in ("", "<10") or int(value) == 0 or int(value) >= 10, row
    assert any("<10" in row for row in daily)
    notes = " ".join(missing_notes(analysis, "en"))
    listed = len(data.courses)  # type: ignore[attr-defined]
    assert f"3 of {listed} courses had fewer than 10 active learners" in notes


def test_an_org_under_k_says_so_instead_of_the_kpis() -> None:
    data = realistic()
    users = data.users[:4]
    tiny = replace(data, users=users, total_active=4, courses=tuple(
        CourseActivity(c.course_id, c.name, min(c.user_count, 4)) for c in data.courses))
    analysis = analyse(tiny, top_n=15, suppression=plan(tiny, 10))
    assert analysis.org_too_small and kpi_cards(analysis, "en") == ()
    [sentence] = highlights(analysis)
    assert sentence.startswith("Fewer than 10 learners were active this week")
    assert analysis.engagement.mean is None and analysis.engagement.suppressed


def test_percentages_on_a_small_base_are_left_out() -> None:
    data = replace(realistic(), previous_total_active=6)
    analysis = analyse(data, top_n=15, suppression=Suppression(10))
    assert analysis.active_users.pct is None and analysis.active_users.change is not None
    assert "%" not in highlights(analysis)[0]
    assert analyse(data, top_n=15).active_users.pct is not None


def _config(tmp_path: Path, url: str = "sqlite:///state.db") -> object:
    return parse_config({"state": {"url": url}}, source=tmp_path / "config.toml")


def test_the_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    key = load_key(config, {})  # type: ignore[arg-type]
    path = key_path(config)  # type: ignore[arg-type]
    assert path == tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(config, {}) == key  # type: ignore[arg-type]
    assert fingerprint(key) != fingerprint(b"x" * 32) and key.decode() not in fingerprint(key)
    assert load_key(config, {"IBL_PSEUDONYM_KEY": "e" * 32}) == b"e" * 32  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_key(config, {"IBL_PSEUDONYM_KEY": "short"})  # type: ignore[arg-type]
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=r"readable by others \(mode 0644\); run chmod 600"):
        load_key(config, {})  # type: ignore[arg-type]


def test_a_server_database_keeps_the_key_beside_the_config(tmp_path: Path) -> None:
    config = _config(tmp_path, "postgresql+psycopg://u@h/db")
    assert key_path(config) == tmp_path / KEY_FILE  # type: ignore[arg-type]


def _load(folder: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(load_key(_config(Path(folder)), {}))  # type: ignore[arg-type]


def test_processes_racing_to_make_the_key_agree_on_one(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(str(tmp_path), queue)) for _ in range(4)]
    for proc in procs:
        proc.start()
    keys = {queue.get(timeout=30) for _ in procs}
    for proc in procs:
        proc.join(timeout=30)
    assert len(keys) == 1 and keys == {(tmp_path / KEY_FILE).read_bytes().strip()}
