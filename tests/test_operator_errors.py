"""Errors a new operator meets (issue 18): each says the cause and names the file, line, key or
host, in one line, with the exit code of its kind."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from reports.cli import app
from reports.delivery.mail import MailKpi, MailSummary, email_reference
from reports.report.analysis import analyse
from reports.report.render import Branding, _context
from reports.report.template_vars import NESTED, REPORT_VARIABLES, markdown_table
from reports.source.neterrors import explain, is_final
from tests._sample import realistic

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
[api]
base_url = "embedded"

[archive]
dir = "archive"

[state]
url = "sqlite:///state.db"

[templates]
dir = "my-templates"

[[reports]]
name = "acme-weekly"
org = "acme-university"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
recipients = ["dean@acme.example"]
"""


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), env={"IBL_REPORTS_LOG_FORMAT": None, **(env or {})}
    )
    return result.exit_code, result.stdout, result.stderr


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------- templates


def test_the_readme_lists_exactly_the_variables_the_templates_receive() -> None:
    context = _context(analyse(realistic(), top_n=5), [], Branding("Acme"), date(2026, 11, 23),
                       "en")
    passed = {*context, "notice"}  # render_html adds the notice
    documented = {v.name for v in REPORT_VARIABLES}
    assert passed == documented, (
        f"not documented: {sorted(passed - documented)}; documented but not passed: "
        f"{sorted(documented - passed)} (edit reports/report/template_vars.py)"
    )
    words = set(email_reference().replace("`", " ").replace(",", " ").split())
    assert {*MailSummary.__dataclass_fields__, *MailKpi.__dataclass_fields__} <= words
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for table in (markdown_table(REPORT_VARIABLES, NESTED), email_reference()):
        assert table in readme, (
            "README.md's template variables are out of date: paste the output of `uv run python "
            "-c 'from reports.report.template_vars import *; print(markdown_table("
            "REPORT_VARIABLES, NESTED))'` (and of reports.delivery.mail.email_reference())"
        )


def test_an_undefined_name_in_an_override_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    partial = tmp_path / "my-templates" / "partials" / "notes.html.j2"
    partial.parent.mkdir(parents=True)
    partial.write_text("<section>\n  <p>{{ no_such_var }}</p>\n</section>\n", encoding="utf-8")
    code, _, err = cli("--config", str(config), "generate", "--report", "acme-weekly",
                       "--as-of", "2026-11-26")
    assert code == 1
    assert len(error_lines(err)) == 1, err
    assert f"{partial}, line 2: UndefinedError: 'no_such_var' is undefined" in err


# ---------------------------------------------------------------- no network


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A plain HTTP server (answers a TLS hello with garbage, as a misconfigured port does)."""
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("case", ["refused", "tls", "timeout"])
def test_an_unreachable_api_is_named_with_the_cause_and_host(
    tmp_path: Path, case: str, plain_http_port: int, silent_port: int
) -> None:
    port = {"refused": closed_port(), "tls": plain_http_port, "timeout": silent_port}[case]
    url, expected = {
        "refused": (f"http://127.0.0.1:{port}", f"127.0.0.1:{port} refused the connection"),
        "tls": (f"https://127.0.0.1:{port}", f"TLS with 127.0.0.1:{port} failed"),
        "timeout": (f"http://127.0.0.1:{port}", f"127.0.0.1:{port} sent no answer within 0.3 s"),
    }[case]
    config = tmp_path / "config.toml"
    config.write_text(
        # One request in flight: with eight, the first failure cancels the others mid-handshake
        # and asyncio leaves their sockets to the garbage collector, whose ResourceWarning
        # (an error under pytest) lands in whichever test runs next on a loaded machine.
        CONFIG.replace('base_url = "embedded"',
                       f'base_url = "{url}"\nmax_retries = 0\nmax_concurrency = 1\n'
                       "timeout_s = 0.3")
        .replace('[templates]\ndir = "my-templates"\n', ""), encoding="utf-8",
    )
    code, _, err = cli("--config", str(config), "generate", "--report", "acme-weekly",
                       "--as-of", "2026-11-26", env={"IBL_API_KEY": "k"})
    assert code == 1
    assert len(error_lines(err)) == 1, err
    assert expected in err and "ConnectError" not in err, err


def test_a_dns_failure_is_named_and_a_name_that_does_not_exist_is_not_retried() -> None:
    # The chain httpx builds for a failed lookup (a real lookup would depend on the resolver).
    request = httpx.Request("GET", "https://api.example.org/api/x")
    for code, final in ((socket.EAI_NONAME, True), (socket.EAI_AGAIN, False)):
        try:
            try:
                raise socket.gaierror(code, "Name or service not known")
            except socket.gaierror as exc:
                raise httpx.ConnectError(str(exc), request=request) from exc
        except httpx.ConnectError as exc:
            text = explain(exc, fallback_host="?", timeout_s=30)
            assert text.startswith("DNS: the name api.example.org could not be")
            assert is_final(exc) is final


def test_a_templates_dir_that_does_not_exist_is_refused_at_load(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")  # dir = "my-templates", never created
    code, _, err = cli("--config", str(config), "generate", "--report", "acme-weekly")
    assert code == 2
    assert error_lines(err) == [
        f"error: {config}: templates.dir: the templates folder {tmp_path / 'my-templates'} "
        "does not exist"
    ]
    assert not (tmp_path / "state.db").exists()  # nothing was fetched or recorded


# ---------------------------------------------------------------- locales


@pytest.mark.parametrize("locale", ["de-DE", "de_DE", "de_DE.UTF-8", "pt-BR", "zh-Hans-CN"])
def test_bcp47_and_posix_locales_are_accepted_on_the_command_line(
    tmp_path: Path, locale: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.replace('[templates]\ndir = "my-templates"\n', "").replace(
        'timezone = "Europe/Berlin"', f'timezone = "Europe/Berlin"\nlocale = "{locale}"'),
        encoding="utf-8")
    code, out, err = cli("--config", str(config), "jobs", "--json")
    assert code == 0 and err == "", err
    assert out.startswith("[")


def test_an_unknown_locale_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.replace('[templates]\ndir = "my-templates"\n', "").replace(
        'timezone = "Europe/Berlin"', 'timezone = "Europe/Berlin"\nlocale = "zz-QQ"'),
        encoding="utf-8")
    code, _, err = cli("--config", str(config), "jobs")
    assert code == 2
    assert error_lines(err) == [
        f"error: {config}: reports[1].locale: unknown locale 'zz-QQ' (write a language and "
        "region Babel knows, BCP 47 or POSIX: de-DE, de_DE, pt-BR, zh-Hans-CN)"]


# ---------------------------------------------------------------- addresses


def test_names_are_printed_as_written_and_a_comma_in_a_name_gets_the_quoted_form(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    plain = CONFIG.replace('[templates]\ndir = "my-templates"\n', "")
    config.write_text(plain.replace('"dean@acme.example"', '"Müller, Jürgen <j@example.org>"'),
                      encoding="utf-8")
    quoted = '"Müller, Jürgen" <j@example.org>'
    code, _, err = cli("--config", str(config), "jobs")
    assert code == 2 and len(error_lines(err)) == 1, err
    assert "reports[1].recipients: Müller, Jürgen <j@example.org>: " in err
    assert f"put the name in double quotes: {quoted} (in TOML: '{quoted}')" in err
    assert "\\x" not in err

    config.write_text(plain, encoding="utf-8")
    code, _, err = cli("--config", str(config), "send", "--report", "acme-weekly",
                       "--to", "Müller, Jürgen <j@example.org>")
    assert code == 2 and len(error_lines(err)) == 1 and quoted in err, err

    # what cannot be shown as written (a hidden line break) is still escaped
    config.write_text(plain.replace('"dean@acme.example"', '"dean\\u2028@acme.example"'),
                      encoding="utf-8")
    code, _, err = cli("--config", str(config), "jobs")
    assert code == 2 and "dean\\u2028@acme.example" in err and "\u2028" not in err, err
