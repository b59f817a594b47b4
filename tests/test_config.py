"""config.toml validation: every kind of mistake gives one line naming the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reports.config import load_config
from reports.config.reference import reference_markdown
from reports.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

GOOD = """
[api]
base_url = "embedded"

[[reports]]
name = "w"
org = "acme"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
recipients = ["a@example.org"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_committed_config_is_valid_and_runs_out_of_the_box() -> None:
    config = load_config(REPO / "config.toml")
    assert config.api.base_url == "embedded"
    assert config.email.backend == "file"
    assert config.reports, "the demo config must define at least one report"
    assert config.email.outbox_dir == REPO / "outbox"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.archive.dir == tmp_path / "archive"
    assert config.state.url == f"sqlite:///{tmp_path / 'state.db'}"
    assert config.source == tmp_path / "config.toml"


def test_env_var_names_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("IBL_REPORTS_CONFIG", str(path))
    assert load_config(None).reports[0].name == "w"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            ('timezone = "Europe/Berlin"', 'timezone = "Europe/Berln"'),
            "reports[1].timezone: unknown time zone 'Europe/Berln'",
            id="bad-timezone",
        ),
        pytest.param(
            ('period = "weekly"', 'period = "daily"'), "reports[1].period:", id="bad-period"
        ),
        pytest.param(
            ('schedule = "0 7 * * 1"', 'schedule = "0 7 * *"'),
            "reports[1].schedule: '0 7 * *' is not a 5-field cron expression",
            id="cron-4-fields",
        ),
        pytest.param(
            ('schedule = "0 7 * * 1"', 'schedule = "0 25 * * 1"'),
            "reports[1].schedule: invalid cron expression",
            id="cron-bad-hour",
        ),
        pytest.param(
            ('base_url = "embedded"', 'base_url = "ftp://x"'), "api.base_url:", id="bad-url"
        ),
        pytest.param(
            ('base_url = "embedded"', 'base_url = "embedded"\nmax_concurency = 4'),
            "api.max_concurency: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            ('base_url = "embedded"', 'base_url = "embedded"\nmax_concurrency = 0'),
            "api.max_concurrency:",
            id="concurrency-zero",
        ),
        pytest.param(('org = "acme"', 'org = "../etc"'), "reports[1].org:", id="org-escape"),
        pytest.param(('name = "w"', ""), "reports[1].name: required key is missing", id="missing"),
        pytest.param(
            ('[api]', '[api]\napi_key = "sk-123"'),
            "api.api_key: secrets must not be written in the config file",
            id="inline-api-key",
        ),
        pytest.param(
            ('[api]', '[email]\npassword = "hunter2"\n[api]'),
            "email.password: secrets must not be written",
            id="inline-password",
        ),
        pytest.param(
            ('[api]', '[api]\napi_key_env = "sk-live-abc/def"'),
            "api.api_key_env:",
            id="key-instead-of-env-name",
        ),
        pytest.param(('[api]', "[api\n"), "not valid TOML", id="toml-syntax"),
        pytest.param(
            ('recipients = ["a@example.org"]', 'recipients = ["a@example.org"]\nlocale = "xx_YY"'),
            "reports[1].locale: unknown locale 'xx_YY'",
            id="bad-locale",
        ),
        pytest.param(
            ('recipients = ["a@example.org"]',
             'recipients = ["a@example.org"]\n[reports.freshness]\nmin_ratio = 1.5'),
            "reports[1].freshness.min_ratio:", id="freshness-override-range",
        ),
        pytest.param(
            ('[api]', '[freshness]\nhold_for = "6 hours"\n[api]'),
            "freshness.hold_for: '6 hours' is not a duration", id="bad-hold-for",
        ),
        pytest.param(
            ('[api]', '[freshness]\non_stale = "wait"\n[api]'), "freshness.on_stale:",
            id="bad-on-stale",
        ),
        pytest.param(
            ('recipients = ["a@example.org"]',
             'recipients = ["a@example.org"]\nmin_group_size = 0'),
            "reports[1].min_group_size: must be at least 5",
            id="group-size-zero",
        ),
        pytest.param(
            ('[api]', '[privacy]\nmin_group_size = 3\n[api]'),
            "privacy.min_group_size: must be at least 5",
            id="privacy-group-size-3",
        ),
        pytest.param(
            ('[api]', '[privacy]\nlearners = "anonymous"\n[api]'),
            "privacy.learners:",
            id="privacy-bad-learners",
        ),
        pytest.param(
            ('[api]', '[privacy]\nkey = "0123456789abcdef"\n[api]'),
            "privacy.key: secrets must not be written in the config file; put it in an "
            "environment variable and name that variable with pseudonym_key_env",
            id="inline-pseudonym-key",
        ),
    ],
)
def test_each_mistake_gives_one_line_naming_file_and_key(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_inline_secret_value_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[api]", '[api]\napi_key = "sk-very-secret-123"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "sk-very-secret-123" not in str(info.value)


def test_duplicate_report_names_are_refused(tmp_path: Path) -> None:
    second = GOOD[GOOD.index("[[reports]]"):]
    with pytest.raises(ConfigError, match="two reports are named 'w'"):
        load_config(write(tmp_path, GOOD + second))


def test_missing_file_names_the_path_and_the_ways_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.toml'}: file not found")):
        load_config(tmp_path / "nope.toml")


def test_unknown_report_lists_the_configured_ones(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"no report named 'x' \(configured: w\)"):
        config.report("x")


def test_a_report_freshness_table_overrides_the_defaults(tmp_path: Path) -> None:
    text = GOOD.replace('[api]', '[freshness]\nmin_ratio = 0.3\nhold_for = "2h"\n[api]', 1)
    text = text.replace('recipients = ["a@example.org"]',
                        'recipients = ["a@example.org"]\n[reports.freshness]\nratio = false', 1)
    config = load_config(write(tmp_path, text))
    mine = config.freshness_for(config.reports[0])
    assert (mine.ratio, mine.min_ratio, mine.hold_for) == (False, 0.3, "2h")
    assert config.freshness.ratio is True


def test_the_readme_config_reference_matches_the_code() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert reference_markdown() in readme, (
        "README.md's config reference is out of date: paste the output of "
        "`uv run python -c 'from reports.config.reference import reference_markdown as r; "
        "print(r())'`"
    )


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param("0 7 * * 7", id="sunday-as-7"),
        pytest.param("0 7 * * 5-7", id="range-to-sunday"),
        pytest.param("30 6 1 * *", id="monthly-first"),
        pytest.param("0 7 * * mon", id="weekday-name"),
    ],
)
def test_valid_crontab_schedules_are_accepted(tmp_path: Path, schedule: str) -> None:
    path = write(tmp_path, GOOD.replace('schedule = "0 7 * * 1"', f'schedule = "{schedule}"'))
    assert load_config(path).reports[0].schedule == schedule


@pytest.mark.parametrize(
    ("recipients", "expected"),
    [
        pytest.param('["alice@example.org(<bob@example.org>"]',
                     "alice@example.org(<bob@example.org>", id="cve-2023-27043"),
        pytest.param('["dean@acme.example\\r\\nBcc: x@evil.example"]', "line break",
                     id="crlf"),
        pytest.param('["not-an-address"]', "not-an-address", id="no-domain"),
        pytest.param('["a@example.org", "A@example.org"]', "listed twice", id="duplicate"),
    ],
)
def test_bad_recipients_are_named_at_load(tmp_path: Path, recipients: str, expected: str) -> None:
    path = write(tmp_path, GOOD.replace('recipients = ["a@example.org"]',
                                        f"recipients = {recipients}"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "reports[1].recipients:" in message and expected in message
    assert "\n" not in message


def test_state_url_from_the_variable_url_env_names(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '\n[state]\nurl_env = "MY_STATE_URL"\n')
    url = "postgresql+psycopg://u:s3cret@db.example/reports"
    config = load_config(path, env={"MY_STATE_URL": url})
    assert config.state.url == url
    assert "s3cret" not in repr(config)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == (f"{path}: state.url_env: the environment variable MY_STATE_URL is "
                               "not set (it should hold the state database URL)")
    both = write(tmp_path, GOOD + '\n[state]\nurl = "sqlite:///x.db"\nurl_env = "X"\n')
    with pytest.raises(ConfigError, match=r"state\.url_env: write either url or url_env"):
        load_config(both, env={"X": url})


CELERY = '\n[executor]\nkind = "celery"\n[state]\nurl_env = "PG"\n'
PG_ENV = {"PG": "postgresql+psycopg://u:p@localhost/db"}


def test_the_celery_executor_refuses_sqlite(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '\n[executor]\nkind = "celery"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(f"{path}: executor.kind: the celery executor needs a "
                                      "shared PostgreSQL state database")
    assert load_config(write(tmp_path, GOOD + CELERY), env=PG_ENV).executor.kind == "celery"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param("[render]\ntimeout_s = 2000\n", "render.timeout_s: 2000 s must be shorter "
                     "than scheduler.run_timeout_s (1800 s)", id="render-over-task"),
        pytest.param("[scheduler]\nrun_timeout_s = 3590\n", "executor.visibility_timeout_s: "
                     "3600 s must be longer than the task's hard time limit (3605 s:",
                     id="task-over-visibility"),
    ],
)
def test_celery_timeouts_are_ordered_at_load(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD + CELERY + extra), env=PG_ENV)
    assert expected in str(info.value)


def test_the_lease_is_shorter_than_stuck_after(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).state.lease == 10
    assert load_config(write(tmp_path, GOOD + "[state]\nstuck_after_s = 2\n")).state.lease == 0.5
    path = write(tmp_path, GOOD + "[state]\nstuck_after_s = 20\nlease_s = 20\n")
    with pytest.raises(ConfigError, match="state.lease_s: 20 s must be shorter than "
                       r"state.stuck_after_s \(20 s\)"):
        load_config(path)
