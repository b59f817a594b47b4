"""The org catalogue: one [[reports]] table with orgs_file becomes one report per CSV row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.config import load_config
from reports.errors import ConfigError
from tests._e2e import run_cli

TABLE = """
[[reports]]
name = "{org}-weekly"
orgs_file = "orgs.csv"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
locale = "en"
recipients = ["ops@example.org"]
"""
PLAIN = """
[[reports]]
name = "solo"
org = "solo-org"
period = "monthly"
schedule = "0 7 1 * *"
recipients = ["a@example.org"]
"""
HEADER = "org,display_name,recipients,timezone,locale\n"


def make(tmp_path: Path, rows: str, *, table: str = TABLE, header: str = HEADER) -> Path:
    (tmp_path / "orgs.csv").write_text(header + rows, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(table, encoding="utf-8")
    return path


def test_one_report_per_row_and_empty_cells_fall_back_to_the_table(tmp_path: Path) -> None:
    path = make(tmp_path, "acme,Acme University,dean@acme.example; ops@acme.example,,de\n"
                          "\n"
                          "beta,,,America/New_York,\n")
    config = load_config(path)
    acme, beta = config.reports
    assert (acme.name, acme.org, acme.display_name) == ("acme-weekly", "acme", "Acme University")
    assert acme.recipients == ["dean@acme.example", "ops@acme.example"]
    assert (acme.timezone, acme.locale) == ("Europe/Berlin", "de")
    assert (beta.name, beta.org_name, beta.recipients) == ("beta-weekly", "beta",
                                                           ["ops@example.org"])
    assert (beta.timezone, beta.locale) == ("America/New_York", "en")
    assert acme.orgs_file == tmp_path / "orgs.csv"
    assert config.report("beta-weekly") is beta


def test_missing_columns_fall_back_and_the_file_is_relative_to_the_config(
    tmp_path: Path,
) -> None:
    (tmp_path / "cfg").mkdir()
    path = make(tmp_path / "cfg", "acme\nbeta\n", header="org\n")
    assert [r.name for r in load_config(path).reports] == ["acme-weekly", "beta-weekly"]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param("acme,,dean@acme.example,,\nbeta,,ok@b.example;bad@,,\n",
                     "orgs.csv:3: recipients: bad@:", id="bad-address-names-line"),
        pytest.param("acme,,,Mars/Olympus,\n", "orgs.csv:2: timezone: unknown time zone "
                     "'Mars/Olympus'", id="bad-zone"),
        pytest.param("acme,,,,xx_YY_ZZ\n", "orgs.csv:2: locale: unknown locale", id="bad-locale"),
        pytest.param(",Nameless,,,\n", "orgs.csv:2: org: required column is empty",
                     id="empty-org"),
        pytest.param("../etc,,,,\n", "orgs.csv:2: org: '../etc' must be", id="unsafe-org"),
        pytest.param("acme,,,,\nacme,,,,\n", "orgs.csv:3: org: 'acme' is listed twice (first on "
                     "line 2)", id="duplicate-org"),
        pytest.param("acme,\"A\nB\",,,\n", "orgs.csv:3: display_name: the display name",
                     id="line-break-in-name"),
        pytest.param("acme,,a@b.example;A@b.example,,\n", "orgs.csv:2: recipients: "
                     "'A@b.example' is listed twice", id="duplicate-recipient"),
        pytest.param("acme,x,y,UTC,en,extra\n", "orgs.csv:2: 6 cells but the header has 5",
                     id="too-many-cells"),
        pytest.param("", "orgs.csv: no orgs in the file", id="no-rows"),
    ],
)
def test_row_errors_name_the_file_and_line(tmp_path: Path, rows: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(make(tmp_path, rows))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / expected.split(":")[0])), message
    assert expected.split(" ", 1)[0].split("orgs.csv")[1] in message
    assert expected.split(" ", 1)[1] in message, message


@pytest.mark.parametrize(
    ("header", "table", "expected"),
    [
        pytest.param("org,email\n", TABLE, "orgs.csv:1: unknown column 'email'", id="bad-column"),
        pytest.param("display_name\n", TABLE, "orgs.csv:1: the header has no org column",
                     id="no-org-column"),
        pytest.param(HEADER, TABLE.replace('"{org}-weekly"', '"weekly"'),
                     "config.toml: reports[1].name: must contain {org}", id="no-placeholder"),
        pytest.param(HEADER, TABLE.replace('orgs_file', 'org = "x"\norgs_file'),
                     "config.toml: reports[1].org: write either org or orgs_file",
                     id="org-and-file"),
        pytest.param(HEADER, TABLE.replace('period = "weekly"', 'period = "daily"'),
                     "config.toml: reports[1].period:", id="template-validated"),
        pytest.param(HEADER, TABLE.replace("orgs.csv", "nope.csv"),
                     "nope.csv: file not found", id="missing-file"),
        pytest.param(HEADER, PLAIN.replace('"solo"', '"acme-weekly"') + TABLE,
                     "two reports are named 'acme-weekly' (reports[1] and", id="name-clash"),
    ],
)
def test_table_and_header_errors(tmp_path: Path, header: str, table: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(make(tmp_path, "acme,,,,\n", table=table, header=header))
    assert expected in str(info.value), str(info.value)


def test_jobs_lists_the_expanded_reports_and_errors_exit_2(tmp_path: Path) -> None:
    path = make(tmp_path, "acme,,,,\nbeta,,,Asia/Tokyo,\n", table=PLAIN + TABLE)
    result = run_cli(path, "jobs", "--json")
    assert result.returncode == 0, result.stderr
    assert [j["report"] for j in json.loads(result.stdout)] == [
        "solo", "acme-weekly", "beta-weekly"
    ]
    (tmp_path / "orgs.csv").write_text(HEADER + "acme,,bad@,,\n", encoding="utf-8")
    result = run_cli(path, "jobs")
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: {tmp_path / 'orgs.csv'}:2: recipients: bad@")
