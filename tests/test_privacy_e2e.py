"""Learner privacy end to end: the demo API over loopback HTTP, the CLI (``run_cli``), every
output read back (PDF text, alt text and attachments, .eml text, HTML and attachments, --html,
--json, logs) and searched for the learners' usernames and names."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from reports.report.privacy import pseudonym
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY, run_cli, run_cli_process, write_config
from tests._privacy import Mail, identities, leaked, learners, outbox, read_pdf

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


def _small_counts(values: list[str]) -> list[str]:
    """The values that are a count from 1 to 9 (a small group shown)."""
    return [v for v in values if v.strip().isdigit() and 0 < int(v) < 10]


def _check_no_small_count(api: RunningApi, mail: Mail) -> None:
    """No course count from 1 to 9 in the PDF's text, alt text or CSVs, nor the mail's CSVs."""
    url = f"{api.url}/api/ai-analytics/audience/orgs/{ORG}/active-users/per-course"
    per_course = httpx.get(url, params={"start_date": WEEK[0], "end_date": WEEK[1]},
                           headers={"Authorization": f"Api-Token {API_KEY}"}).json()["data"]
    small = [c for c in per_course if 0 < c["user_count"] < 10]
    assert small, "the demo API's small_courses knob should give small courses"
    pdf = read_pdf(mail.pdf)
    for course in small:
        rows = [line for line in pdf.text.splitlines() if course["name"] in line]
        assert rows and all("<10" in row for row in rows), rows
    [alt] = [a for a in pdf.alt if a.startswith("Horizontal bar chart")]
    assert "<10" in alt
    for course in small:
        assert f"{course['name']} ({course['user_count']})" not in alt
    tables = [pdf.attachments["courses.csv"], pdf.attachments["daily_enrollments.csv"],
              mail.files["courses.csv"].decode("utf-8-sig"),
              mail.files["daily_enrollments.csv"].decode("utf-8-sig")]
    for table in tables:
        rows = list(csv.reader(io.StringIO(table)))
        assert _small_counts([v for row in rows[1:] for v in row[2:4]]) == []
    assert f"{len(small)} of {len(per_course)} courses had fewer than 10 active learners" in (
        " ".join(pdf.text.split()))


def test_the_default_report_names_no_learner_and_counts_no_small_group(
    tmp_path: Path, served: RunningApi
) -> None:
    names = identities(learners(served, ORG, *WEEK))
    config = config_for(tmp_path, served)
    config.write_text(config.read_text().replace(
        'backend = "file"', 'backend = "file"\nattach_csv = true'))
    proc = run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, "--out",
                   "r.pdf", "--html", "r.html", "--json", env=LOGS)
    assert proc.returncode == 0, proc.stderr
    pdf = read_pdf((tmp_path / "r.pdf").read_bytes())
    assert "Learner " in pdf.text  # the most-engaged table, by pseudonym
    assert pdf.alt and set(pdf.attachments) == {"courses.csv", "daily_enrollments.csv"}
    logs = send(config)
    mails = outbox(tmp_path)
    assert set(mails) == set(RCPTS)
    _check_no_small_count(served, mails[RCPTS[0]])
    preview = _web_preview(config)
    assert preview == (tmp_path / "r.html").read_text("utf-8")  # the PDF's own HTML
    assert "Learner " in preview and "&lt;10" in preview  # pseudonyms, suppressed counts
    for where, text in [
        ("PDF", pdf.everything()),
        ("--html", html.unescape((tmp_path / "r.html").read_text("utf-8"))),
        ("the web UI's preview", html.unescape(preview)),  # names as a browser shows them
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


def _web_preview(config: Path) -> str:
    """The archived HTML of the week as the web UI previews it (the real app on loopback)."""
    from reports.config import load_config
    from reports.state.ledger import Ledger
    from reports.web.app import create_app
    from tests._web import RecordingRunner, serving

    loaded = load_config(config)
    with Ledger(loaded.state.url) as ledger, serving(create_app(
        loaded, secret="k" * 40, ledger=ledger, runner=RecordingRunner(),
    )) as url:
        answer = httpx.get(f"{url}/reports/acme-weekly/html/{WEEK[0]}_{WEEK[1]}")
    assert answer.status_code == 200, answer.text[:200]
    return answer.text


def _listed(pdf: bytes) -> set[str]:
    rows = list(csv.reader(io.StringIO(read_pdf(pdf).attachments["active_users.csv"])))
    assert rows[0] == ["learner", "engagement_index", "performance_index"]
    return {row[0] for row in rows[1:]}


@pytest.mark.long
def test_pseudonyms_are_stable_across_periods_and_processes(
    tmp_path: Path, served: RunningApi
) -> None:
    config = config_for(tmp_path, served, "attach_learner_list = true")
    listed = {}
    # Two periods, two processes: the first run makes the key (in this process), the second
    # is a process of its own that reads it from the file.
    for as_of, run in ((AS_OF_EARLIER, run_cli), (AS_OF, run_cli_process)):
        run(config, "generate", "--report", "acme-weekly", "--as-of", as_of, "--out",
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


def test_the_aggregate_form_lists_no_learner_at_all(tmp_path: Path, served: RunningApi) -> None:
    rows = learners(served, ORG, *WEEK)
    config = config_for(tmp_path, served, 'learners = "aggregate"\nattach_learner_list = true')
    run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, "--out", "r.pdf",
            check=True)
    pdf = read_pdf((tmp_path / "r.pdf").read_bytes())
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


@pytest.mark.long
def test_a_changed_config_renders_anew_and_the_resend_carries_the_new_pdf(
    tmp_path: Path, served: RunningApi
) -> None:
    names = identities(learners(served, ORG, *WEEK))
    config = config_for(tmp_path, served, 'learners = "named"\nattach_learner_list = true\n')
    send(config)
    sent = [outbox(tmp_path)[RCPTS[0]]]
    assert leaked(sent[0].everything(), names)  # named: identities were mailed

    def resend(change: str) -> str:
        out = send(config, "--force")
        assert "reused archived PDF" not in out and "archived" in out, change
        sent.append(outbox(tmp_path)[RCPTS[0]])
        assert sent[-1].pdf != sent[-2].pdf, change
        return " ".join(read_pdf(sent[-1].pdf).text.split())

    # Named -> the defaults: the resent mail carries no identity.
    config = config_for(tmp_path, served)
    resend("privacy")
    assert leaked(sent[-1].everything(), names) == []
    # Branding: another display name and accent colour.
    config.write_text(config.read_text().replace(
        'display_name = "Acme University"',
        'display_name = "Acme Institute of Learning"\naccent_color = "#CC3311"'))
    assert "Acme Institute of Learning" in resend("branding")
    # A template override.
    override = tmp_path / "mytemplates" / "partials"
    override.mkdir(parents=True)
    (override / "notes.html.j2").write_text(
        '<section class="notes"><h2>Notes</h2><p>Prepared by the Registry.</p></section>')
    config.write_text(config.read_text().replace(
        "[archive]", '[templates]\ndir = "mytemplates"\n\n[archive]'))
    assert "Prepared by the Registry." in resend("template")
    assert leaked(sent[-1].everything(), names) == []

    # The archive keeps every PDF; the ledger says which one the recipients got last.
    listed = _archive(config, "list", "--json")
    assert [e["current"] for e in listed] == [True, False, False, False]
    assert {e["sha256"] for e in listed} == {hashlib.sha256(m.pdf).hexdigest() for m in sent}
    assert _delivered_sha(tmp_path) == {hashlib.sha256(sent[-1].pdf).hexdigest()}
    assert run_cli(config, "archive", "verify").returncode == 0
    # Unchanged config: the current PDF is reused, not rendered again.
    assert "reused archived PDF" in send(config, "--force")
    assert outbox(tmp_path)[RCPTS[0]].pdf == sent[-1].pdf


def test_an_org_with_fewer_than_k_active_learners_says_so_instead_of_the_kpis(
    tmp_path: Path, api_server: Callable[..., RunningApi]  # noqa: F811
) -> None:
    tiny = api_server(MockKnobs(token=API_KEY, courses=3, users=6))
    config = config_for(tmp_path, tiny)
    send(config)
    mail = outbox(tmp_path)[RCPTS[0]]
    text = " ".join(read_pdf(mail.pdf).text.split())
    assert "Fewer than 10 learners were active this week" in text
    assert "Net enrollments" not in text and "Avg. engagement index" not in text  # no KPI cards
    assert "Fewer than 10 learners were active this week" in mail.text
    assert "Active users" not in mail.text and "Active users" not in mail.html
