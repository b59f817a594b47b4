"""`ibl-reports generate` end to end: demo API over loopback HTTP, the CLI (``run_cli``), and
the PDF read back and checked against what the API says."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
import pypdf
import pytest

from reports.report.fmt import integer, period_label
from reports.report.periods import weekly
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY, run_cli, write_config

AS_OF = "2026-11-26"
PERIOD = weekly(date(2026, 11, 26))
ORG = "acme-university"


def api_get(api: RunningApi, path: str, **params: str) -> dict:  # type: ignore[type-arg]
    url = f"{api.url}/api/ai-analytics/audience/orgs/{ORG}/{path}"
    answer = httpx.get(url, params=params, headers={"Authorization": f"Api-Token {API_KEY}"})
    answer.raise_for_status()
    return answer.json()  # type: ignore[no-any-return]


def pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(path)
    return "\n".join(page.extract_text() or "" for page in reader.pages)


@pytest.fixture
def served(api_server: Callable[..., RunningApi]) -> RunningApi:  # noqa: F811
    # A mid-sized org (the default is 20-60 courses and 500-3000 users: seconds of fetching)
    return api_server(MockKnobs(token=API_KEY, courses=12, users=300))


def test_generate_makes_a_pdf_whose_numbers_match_the_api(
    tmp_path: Path, served: RunningApi
) -> None:
    config = write_config(tmp_path, api_url=served.url, extra="attach_learner_list = true")
    proc = run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF,
                   "--out", "report.pdf", "--html", "report.html", "--json", check=True)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["period"] == {"start": "2026-11-16", "end": "2026-11-22"}
    assert summary["pages"] >= 2
    timings = summary["timings"]
    assert set(timings) >= {"startup_s", "ledger_s", "fetch_s", "worker_start_s", "analyse_s",
                            "charts_s", "html_s", "pdf_s", "archive_s", "total_s"}
    stages = sum(v for k, v in timings.items() if k != "total_s")
    assert min(timings.values()) >= 0
    assert abs(stages - timings["total_s"]) <= 0.05 * timings["total_s"], timings
    # The charts child drew beside the PDF child's stages: reported apart, not in the sum.
    assert set(summary["overlapped"]) == {"analyse_s", "charts_s"}
    assert summary["overlapped"]["charts_s"] > 0
    assert summary["requests"] > 3

    pdf = tmp_path / "report.pdf"
    archived = tmp_path / "archive" / ORG / "acme-weekly" / "2026-11-16_2026-11-22.pdf"
    assert archived.read_bytes() == pdf.read_bytes()
    assert summary["bytes"] == pdf.stat().st_size

    per_course = api_get(served, "active-users/per-course",
                         start_date="2026-11-16", end_date="2026-11-22")
    text = pdf_text(pdf)
    assert "Acme University" in text
    assert period_label(PERIOD) in text
    assert integer(per_course["total"]) in text
    top = max(per_course["data"], key=lambda c: c["user_count"])
    assert top["name"] in text

    reader = pypdf.PdfReader(pdf)
    attachments = reader.attachments
    assert set(attachments) == {"courses.csv", "active_users.csv", "daily_enrollments.csv"}
    users = list(csv.reader(io.StringIO(attachments["active_users.csv"][0].decode("utf-8-sig"))))
    assert users[0] == ["learner", "engagement_index", "performance_index"]  # pseudonymous
    assert len(users) - 1 == per_course["total"]
    courses = list(csv.reader(io.StringIO(attachments["courses.csv"][0].decode("utf-8-sig"))))
    current_ids = {c["course_id"] for c in per_course["data"]}
    assert current_ids <= {row[0] for row in courses[1:]}

    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "http://" not in html.replace("http://www.w3.org", "")


def test_two_runs_give_byte_identical_pdfs(tmp_path: Path, served: RunningApi) -> None:
    config = write_config(tmp_path, api_url=served.url)
    run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, "--out", "a.pdf",
            check=True)
    run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF, "--out", "b.pdf",
            check=True)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_custom_range_and_adhoc_org(tmp_path: Path, served: RunningApi) -> None:
    config = write_config(tmp_path, api_url=served.url)
    proc = run_cli(config, "generate", "--org", "other-org", "--period", "monthly",
                   "--start", "2026-10-01", "--end", "2026-10-31", "--json", check=True)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["period"] == {"start": "2026-10-01", "end": "2026-10-31"}
    assert Path(summary["pdf"]).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--report", "nope"], "no report named 'nope'", id="unknown-report"),
        pytest.param(["--report", "acme-weekly", "--all"], "choose exactly one", id="two-modes"),
        pytest.param(["--report", "acme-weekly", "--as-of", "2026-13-01"],
                     "--as-of: '2026-13-01' is not a date", id="bad-date"),
        pytest.param(["--report", "acme-weekly", "--start", "2026-11-10", "--end", "2026-11-01"],
                     "ends (2026-11-01) before it starts", id="reversed-range"),
        pytest.param(["--org", "x"], "--org needs --period", id="org-without-period"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, served: RunningApi, args: list[str], message: str
) -> None:
    config = write_config(tmp_path, api_url=served.url)
    proc = run_cli(config, "generate", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_wrong_api_key_fails_with_exit_1_naming_endpoint_and_org(
    tmp_path: Path, api_server: Callable[..., RunningApi]  # noqa: F811
) -> None:
    served = api_server(MockKnobs(token="another-key"))
    config = write_config(tmp_path, api_url=served.url)
    proc = run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert "org 'acme-university'" in line and "401" in line
    assert API_KEY not in proc.stderr + proc.stdout
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").rglob("*.pdf"))
    # The run is recorded once the data is in; a failed fetch is still a failed run.
    runs = json.loads(run_cli(config, "runs", "--json", check=True).stdout)
    assert [(r["state"], r["period_start"]) for r in runs] == [("failed", "2026-11-16")]
    assert line == f"error: acme-weekly: {runs[0]['error']}"


def test_missing_key_names_the_env_var(tmp_path: Path, served: RunningApi) -> None:
    config = write_config(tmp_path, api_url=served.url)
    text = config.read_text().replace('api_key_env = "IBL_TEST_KEY"', 'api_key_env = "NOT_SET"')
    config.write_text(text)
    proc = run_cli(config, "generate", "--report", "acme-weekly", "--as-of", AS_OF)
    assert proc.returncode == 2
    assert "NOT_SET" in proc.stderr


def test_all_makes_every_report_and_one_failure_does_not_stop_the_others(
    tmp_path: Path, api_server: Callable[..., RunningApi]  # noqa: F811
) -> None:
    from reports.source.mock import Fault

    served = api_server(MockKnobs(token=API_KEY, courses=6, users=60, faults=(
        Fault(action="html", org="broken-org"),
    )))
    extra = "".join(
        f'\n[[reports]]\nname = "{org}-weekly"\norg = "{org}"\nperiod = "weekly"\n'
        f'schedule = "0 7 * * 1"\nrecipients = ["x@example.org"]\n'
        for org in ("second-org", "broken-org")
    )
    config = write_config(tmp_path, api_url=served.url, extra=extra)
    proc = run_cli(config, "generate", "--all", "--as-of", AS_OF, "--json")
    assert proc.returncode == 1
    items = {item["report"]: item for item in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert set(items) == {"acme-weekly", "second-org-weekly", "broken-org-weekly"}
    assert Path(items["acme-weekly"]["pdf"]).is_file()
    assert Path(items["second-org-weekly"]["pdf"]).is_file()
    assert "org 'broken-org'" in items["broken-org-weekly"]["error"]
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: broken-org-weekly: ")
    assert not (tmp_path / "archive" / "broken-org").exists()
