"""Learner privacy end to end: the demo API over loopback HTTP, the CLI as a subprocess, every
output read back (PDF text, alt text and attachments, .eml text, HTML and attachments, --html,
--json, logs) and searched for the learners' usernames and names."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from reports.report.privacy import pseudonym
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY, run_cli, write_config
from tests._privacy import identities, leaked, learners, outbox, read_pdf

ORG = "acme-university"
AS_OF = "2026-11-26"  # the week 2026-11-16..22
WEEK = ("2026-11-16", "2026-11-22")
AS_OF_EARLIER = "2026-11-19"  # the week 2026-11-09..15
RCPTS = ("dean@acme.example", "programs@acme.example")
LOGS = {"IBL_REPORTS_LOG_FORMAT": "json"}


@pytest.fixture
def served(api_server: Callable[..., RunningApi]) -> RunningApi:  # noqa: F811
    return api_server(MockKnobs(token=API_KEY, courses=8, users=150, small_courses=3))


def config_for(folder: Path, api: RunningApi, extra: str = "") -> Path:
    return write_config(folder, api_url=api.url, recipients=RCPTS, extra=extra)


def send(config: Path, *args: str) -> str:
    proc = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF, *args, env=LOGS)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_the_default_report_names_no_learner_anywhere(
    tmp_path: Path, served: RunningApi
) -> None:
    names = identities(learners(served, ORG, *WEEK))
    config = config_for(tmp_path, served)
    proc = run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, "--out",
                   "r.pdf", "--html", "r.html", "--json", env=LOGS)
    assert proc.returncode == 0, proc.stderr
    pdf = read_pdf((tmp_path / "r.pdf").read_bytes())
    assert "Learner " in pdf.text  # the most-engaged table, by pseudonym
    assert pdf.alt and set(pdf.attachments) == {"courses.csv", "daily_enrollments.csv"}
    logs = send(config)
    mails = outbox(tmp_path)
    assert set(mails) == set(RCPTS)
    for where, text in [
        ("PDF", pdf.everything()), ("--html", (tmp_path / "r.html").read_text("utf-8")),
        ("--json and logs", proc.stdout + proc.stderr + logs),
        *[(f"mail to {r}", m.everything()) for r, m in mails.items()],
    ]:
        assert leaked(text, names) == [], where

    key = tmp_path / "pseudonym.key"  # beside state.db, private, never printed
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().strip()
    assert secret not in pdf.everything() + proc.stdout + proc.stderr + logs
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert secret not in "".join(str(row) for row in db.iterdump())


def _listed(pdf: bytes) -> set[str]:
    rows = list(csv.reader(io.StringIO(read_pdf(pdf).attachments["active_users.csv"])))
    assert rows[0] == ["learner", "engagement_index", "performance_index"]
    return {row[0] for row in rows[1:]}


def test_pseudonyms_are_stable_across_periods_and_processes(
    tmp_path: Path, served: RunningApi
) -> None:
    config = config_for(tmp_path, served, "attach_learner_list = true")
    listed = {}
    for as_of in (AS_OF_EARLIER, AS_OF):  # two periods, two processes
        run_cli(config, "generate", "--report", "acme-weekly", "--as-of", as_of, "--out",
                f"{as_of}.pdf", check=True)
        listed[as_of] = _listed((tmp_path / f"{as_of}.pdf").read_bytes())
    key = (tmp_path / "pseudonym.key").read_bytes().strip()
    earlier = {r["username"] for r in learners(served, ORG, "2026-11-09", "2026-11-15")}
    later = {r["username"] for r in learners(served, ORG, *WEEK)}
    assert listed[AS_OF_EARLIER] == {pseudonym(key, ORG, u) for u in earlier}
    assert listed[AS_OF] == {pseudonym(key, ORG, u) for u in later}
    both = earlier & later
    assert both and {pseudonym(key, ORG, u) for u in both} <= listed[AS_OF_EARLIER] & listed[AS_OF]
    assert all(p.startswith("Learner ") and len(p) == len("Learner ") + 10 for p in listed[AS_OF])

    # The key from the environment wins over the file: another key, other pseudonyms.
    env_key = "k" * 40
    run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, "--out", "env.pdf",
            check=True, env={"IBL_PSEUDONYM_KEY": env_key})
    assert _listed((tmp_path / "env.pdf").read_bytes()) == {
        pseudonym(env_key.encode(), ORG, u) for u in later}


@pytest.mark.parametrize("form", ["named", "aggregate"])
def test_names_only_when_named_and_no_learner_rows_when_aggregate(
    tmp_path: Path, served: RunningApi, form: str
) -> None:
    rows = learners(served, ORG, *WEEK)
    config = config_for(tmp_path, served, f'learners = "{form}"\nattach_learner_list = true')
    run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, "--out", "r.pdf",
            check=True)
    pdf = read_pdf((tmp_path / "r.pdf").read_bytes())
    if form == "named":
        top = max(rows, key=lambda r: (r["engagement_index"] or 0))
        assert top["username"] in pdf.text
        assert "username" in pdf.attachments["active_users.csv"].splitlines()[0]
    else:
        assert leaked(pdf.everything(), identities(rows)) == []
        assert "Learner " not in pdf.everything()
        assert "active_users.csv" not in pdf.attachments
        assert "Engagement distribution" in pdf.text


def _delivered_sha(folder: Path) -> set[str]:
    with sqlite3.connect(folder / "state.db") as db:
        return {row[0] for row in db.execute("select pdf_sha256 from deliveries")}


def _archive(config: Path, *args: str) -> list[dict[str, object]]:
    proc = run_cli(config, "archive", *args, check=True)
    return json.loads(proc.stdout) if "--json" in args else []  # type: ignore[no-any-return]


@pytest.mark.parametrize("change", ["privacy", "branding", "template"])
def test_a_changed_config_renders_anew_and_the_resend_carries_the_new_pdf(
    tmp_path: Path, served: RunningApi, change: str
) -> None:
    names = identities(learners(served, ORG, *WEEK))
    before = 'learners = "named"\nattach_learner_list = true\n'
    config = config_for(tmp_path, served, before)
    send(config)
    first = outbox(tmp_path)[RCPTS[0]]
    if change == "privacy":
        assert leaked(first.everything(), names)  # named: identities were mailed
        config = config_for(tmp_path, served)  # back to the defaults
    elif change == "branding":
        config = config_for(tmp_path, served, before.replace("Acme", "X") + (
            'display_name = "Acme Institute of Learning"\naccent_color = "#CC3311"\n'))
    else:
        override = tmp_path / "mytemplates" / "partials"
        override.mkdir(parents=True)
        (override / "notes.html.j2").write_text(
            '<section class="notes"><h2>Notes</h2><p>Prepared by the Registry.</p></section>')
        config = config_for(tmp_path, served, before)
        config.write_text(config.read_text().replace(
            "[archive]", '[templates]\ndir = "mytemplates"\n\n[archive]'))
    out = send(config, "--force")
    assert "reused archived PDF" not in out and "archived" in out
    again = outbox(tmp_path)[RCPTS[0]]
    assert again.pdf != first.pdf
    text = read_pdf(again.pdf).text
    if change == "privacy":
        assert leaked(again.everything(), names) == []
    elif change == "branding":
        assert "Acme Institute of Learning" in text
    else:
        assert "Prepared by the Registry." in text

    # The archive keeps both PDFs; the ledger says which one the recipients got last.
    listed = _archive(config, "list", "--json")
    assert [e["current"] for e in listed] == [True, False]
    assert {e["sha256"] for e in listed} == {
        hashlib.sha256(first.pdf).hexdigest(), hashlib.sha256(again.pdf).hexdigest()}
    assert _delivered_sha(tmp_path) == {hashlib.sha256(again.pdf).hexdigest()}
    assert run_cli(config, "archive", "verify").returncode == 0
    # Unchanged config: the new PDF is reused, not rendered again.
    assert "reused archived PDF" in send(config, "--force")
    assert outbox(tmp_path)[RCPTS[0]].pdf == again.pdf
