"""The web UI over plain HTTP (httpx against the real server): sessions, CSRF, roles, org scope,
PDF headers, traversal, audit rows, login throttling, and the ``web`` command's checks."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from reports.config import load_config
from reports.errors import ConfigError
from reports.web.auth import LoginThrottle
from tests._e2e import run_cli
from tests._web import (
    PASSWORDS,
    RecordingRunner,
    WebSite,
    csrf_of,
    seed,
    serving,
    web_site,
    write_web_config,
)

__all__ = ["web_site"]



def test_nothing_without_a_session_but_login_and_static(web_site: WebSite) -> None:
    client = web_site.client()
    for path in ("/", "/reports/acme-weekly", f"/runs/{web_site.seeded.acme_run}",
                 "/archive/verify", "/reports/acme-weekly/pdf/2026-11-16_2026-11-22"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")
    assert client.get("/login").status_code == 200
    assert client.get("/static/web.css").status_code == 200
    started_before = list(web_site.runner.started)  # the site is shared by the session's tests
    refused = client.post("/reports/acme-weekly/run", data={"confirm": "yes"})
    assert refused.status_code == 303 and web_site.runner.started == started_before


def test_the_session_cookie_is_httponly_strict_and_secure_only_over_https(
    web_site: WebSite,
) -> None:
    cookie = web_site.client().get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=28800" in cookie
    assert "secure" not in cookie
    # Behind a TLS proxy on loopback (uvicorn trusts its X-Forwarded-Proto): Secure.
    tls = web_site.client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in tls.headers["set-cookie"].lower()


def test_a_wrong_password_is_refused_and_an_unknown_name_looks_the_same(
    web_site: WebSite,
) -> None:
    client = web_site.client()
    token = csrf_of(client.get("/login").text)
    wrong = client.post("/login", data={"name": "op", "password": "nope", "csrf": token})
    ghost = client.post("/login", data={"name": "ghost", "password": "nope", "csrf": token})
    assert wrong.status_code == ghost.status_code == 401
    assert "Wrong name or password" in wrong.text and "Wrong name or password" in ghost.text
    assert client.get("/").status_code == 303


def test_login_without_the_form_token_is_refused(web_site: WebSite) -> None:
    client = web_site.client()
    client.get("/login")
    answer = client.post("/login", data={"name": "op", "password": PASSWORDS["op"]})
    assert answer.status_code == 403
    assert client.get("/").status_code == 303


def test_login_only_follows_a_local_next(web_site: WebSite) -> None:
    client = web_site.client()
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"name": "op", "password": PASSWORDS["op"],
                                         "csrf": token, "next": "//evil.example/x"})
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_pdf_is_an_uncached_attachment_named_from_the_index(web_site: WebSite) -> None:
    client = web_site.login("op")
    answer = client.get("/reports/acme-weekly/pdf/2026-11-16_2026-11-22")
    assert answer.status_code == 200
    assert answer.content == web_site.seeded.acme_pdf.read_bytes()
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"] == (
        'attachment; filename="acme-weekly_2026-11-16_2026-11-22.pdf"'
    )
    rows = web_site.ledger.audit_rows(report="acme-weekly", limit=100)
    assert any(r.action == "download" and r.user == "op" for r in rows)
    early = client.get("/reports/acme-weekly/pdf/2026-11-16_2026-11-22/provisional")
    assert early.content == web_site.seeded.provisional_pdf.read_bytes() != answer.content
    assert early.headers["content-disposition"] == (
        'attachment; filename="acme-weekly_2026-11-16_2026-11-22_provisional.pdf"'
    )


@pytest.mark.parametrize("path", [
    pytest.param("/reports/acme-weekly/pdf/..%2F..%2F..%2Fconfig.toml", id="encoded-dots"),
    pytest.param("/reports/acme-weekly/pdf/../../config.toml", id="dots"),
    pytest.param("/reports/..%2Facme-weekly/pdf/2026-11-16_2026-11-22", id="report-dots"),
    pytest.param("/reports/acme-weekly/pdf/2026-11-16_2026-11-22%00.pdf", id="nul"),
    pytest.param("/reports/acme-weekly/pdf/2026-02-30_2026-03-01", id="no-such-date"),
    pytest.param("/reports/acme-weekly/pdf/2026-11-09_2026-11-15", id="not-archived"),
    pytest.param("/reports/acme-weekly/pdf/2026-11-16_2026-11-22/..", id="edition-dots"),
    pytest.param("/reports/acme-weekly/pdf/2026-11-16_2026-11-22/draft", id="no-such-edition"),
    pytest.param("/static/../config.toml", id="static-dots"),
    pytest.param("/static/%2e%2e/%2e%2e/config.toml", id="static-encoded"),
])
def test_traversal_and_unknown_files_are_refused(web_site: WebSite, path: str) -> None:
    answer = web_site.login("op").get(path)
    assert answer.status_code == 404, answer.text[:200]
    assert b"[state]" not in answer.content and b"%PDF" not in answer.content


def test_a_user_never_sees_another_orgs_report_run_or_pdf(web_site: WebSite) -> None:
    client = web_site.login("acme-viewer")
    listing = client.get("/").text
    assert "acme-weekly" in listing and "beta-weekly" not in listing
    assert f'href="/runs/{web_site.seeded.acme_run}"' in listing  # the last run, linked
    for path in ("/reports/beta-weekly", f"/runs/{web_site.seeded.beta_run}",
                 "/reports/beta-weekly/pdf/2026-11-09_2026-11-15"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "beta" not in answer.text
    assert "beta" not in client.get("/archive/verify").text
    assert client.get(f"/runs/{web_site.seeded.acme_run}").status_code == 200


def test_a_viewer_may_not_act_even_with_the_token(
    web_site: WebSite, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reports")
    client = web_site.login("acme-viewer")
    token = csrf_of(client.get("/reports/acme-weekly").text)
    assert "Run now" not in client.get("/reports/acme-weekly").text
    answer = client.post("/reports/acme-weekly/pause", data={"csrf": token, "confirm": "yes"})
    assert answer.status_code == 403
    assert "acme-weekly" not in web_site.ledger.paused_reports()
    assert any(r.getMessage() == "web.action.refused" for r in caplog.records)


def test_an_action_without_the_csrf_token_is_refused(web_site: WebSite) -> None:
    client = web_site.login("op")
    for data in ({"confirm": "yes"}, {"confirm": "yes", "csrf": "forged"}):
        answer = client.post("/reports/acme-weekly/run", data=data)
        assert answer.status_code == 403
    assert not [a for a in web_site.runner.started if "--to" not in a and len(a) == 2]


def test_an_action_asks_first_then_acts_and_is_audited(web_site: WebSite) -> None:
    client = web_site.login("op")
    token = csrf_of(client.get("/reports/acme-weekly").text)
    asked = client.post("/reports/acme-weekly/test-copy",
                        data={"csrf": token, "to": "qa@acme.example"})
    assert asked.status_code == 200 and "Confirm" in asked.text
    assert ("--report", "acme-weekly", "--to", "qa@acme.example") not in web_site.runner.started
    done = client.post("/reports/acme-weekly/test-copy",
                       data={"csrf": token, "to": "qa@acme.example", "confirm": "yes"})
    assert done.status_code == 303
    assert ("--report", "acme-weekly", "--to", "qa@acme.example") in web_site.runner.started
    rows = web_site.ledger.audit_rows(report="acme-weekly", limit=100)
    assert any(r.action == "test-copy" and r.user == "op" and "qa@acme.example" in r.detail
               for r in rows)
    bad = client.post("/reports/acme-weekly/test-copy",
                      data={"csrf": token, "to": "a@b.example\r\nBcc: x@y.example"})
    assert bad.status_code == 400


def test_retry_requeues_the_failed_delivery_and_the_run_page_shows_the_audit(
    web_site: WebSite,
) -> None:
    client = web_site.login("op")
    run = web_site.seeded.acme_run
    page = client.get(f"/runs/{run}").text
    assert "550 5.1.1 mailbox unavailable" in page and "Retry 1 failed delivery" in page
    token = csrf_of(page)
    done = client.post(f"/runs/{run}/retry", data={"csrf": token, "confirm": "yes"})
    assert done.status_code == 303
    assert ("--report", "acme-weekly", "--as-of", "2026-11-23") in web_site.runner.started
    delivery = web_site.ledger.delivery("acme-weekly", web_site.ledger.run(run).period,
                                        "programs@acme.example")
    assert delivery is not None and delivery.state.value == "pending"
    shown = client.get(f"/runs/{run}").text
    assert re.search(r">op<.*>retry<.*programs@acme\.example", shown, re.S)


def test_pause_and_resume_persist_in_the_state_database(web_site: WebSite) -> None:
    client = web_site.login("op")
    token = csrf_of(client.get("/reports/beta-weekly").text)
    client.post("/reports/beta-weekly/pause", data={"csrf": token, "confirm": "yes"})
    assert "beta-weekly" in web_site.ledger.paused_reports()
    assert "paused" in client.get("/").text
    client.post("/reports/beta-weekly/resume", data={"csrf": token, "confirm": "yes"})
    assert "beta-weekly" not in web_site.ledger.paused_reports()


def test_pages_and_logs_never_show_secrets(
    web_site: WebSite, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = web_site.login("op")
    pages = [client.get(p).text for p in (
        "/", "/reports/acme-weekly", f"/runs/{web_site.seeded.acme_run}", "/archive/verify",
    )]
    fresh = web_site.client()
    token = csrf_of(fresh.get("/login").text)
    fresh.post("/login", data={"name": "op", "password": "typo-" + PASSWORDS["op"],
                               "csrf": token})
    hashes = [u.password_hash for u in web_site.config.web.users]
    logged = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    for text in [*pages, logged]:
        assert "$argon2" not in text
        assert not any(h in text for h in hashes)
        assert "s" * 48 not in text and PASSWORDS["op"] not in text


def test_logins_are_throttled_after_failures() -> None:
    now = [1000.0]
    throttle = LoginThrottle(3, 60, lambda: now[0])
    keys = ["user:op", "addr:127.0.0.1"]
    for _ in range(3):
        assert throttle.wait_s(keys) == 0
        throttle.failed(keys)
    assert throttle.wait_s(["user:op"]) == pytest.approx(60)
    assert throttle.wait_s(["user:other"]) == 0
    now[0] += 61
    assert throttle.wait_s(keys) == 0


def test_the_server_refuses_logins_over_the_limit(web_site: WebSite) -> None:
    client = web_site.client()
    token = csrf_of(client.get("/login").text)
    for _ in range(3):
        client.post("/login", data={"name": "beta-viewer", "password": "x", "csrf": token})
    answer = client.post("/login", data={"name": "beta-viewer", "csrf": token,
                                         "password": PASSWORDS["beta-viewer"]})
    assert answer.status_code == 429 and "Too many failed logins" in answer.text


def test_hash_password_prints_an_argon2_hash(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reports.cli import app

    config = write_web_config(tmp_path, users=False)
    result = CliRunner().invoke(app, ["--config", str(config), "web", "hash-password"],
                                input="correct horse\n")
    assert result.exit_code == 0, result.output
    digest = result.stdout.strip()
    assert PasswordHasher().verify(digest, "correct horse")
    assert "correct horse" not in result.output
    empty = CliRunner().invoke(app, ["--config", str(config), "web", "hash-password"], input="\n")
    assert empty.exit_code == 2


def test_no_users_means_loopback_only(tmp_path: Path) -> None:
    config = write_web_config(tmp_path, users=False)
    proc = run_cli(config, "web", "--host", "0.0.0.0", "--port", "1")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0]


def test_a_bad_password_hash_is_named_but_not_repeated(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[web]\n[[web.users]]\nname = "op"\npassword_hash = "hunter2-plain"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "web.users[1].password_hash" in message and "hunter2" not in message


def test_without_users_it_is_a_read_only_loopback_viewer(tmp_path: Path) -> None:
    from reports.state.ledger import Ledger
    from reports.web.app import create_app

    config = load_config(write_web_config(tmp_path, users=False))
    seed(config)
    runner = RecordingRunner()
    with Ledger(config.state.url) as ledger, serving(
        create_app(config, secret="k" * 40, ledger=ledger, runner=runner)
    ) as url, httpx.Client(base_url=url, follow_redirects=False) as client:
        page = client.get("/reports/beta-weekly")
        assert page.status_code == 200 and "read-only local access" in page.text
        assert "Run now" not in page.text
        # No form on the page; the (signed, not secret) cookie holds the session's token.
        cookie = client.cookies["ibl_reports_session"].split(".")[0]
        token = json.loads(base64.b64decode(cookie))["csrf"]
        refused = client.post("/reports/beta-weekly/run", data={"csrf": token, "confirm": "yes"})
        assert refused.status_code == 403 and "Only operators" in refused.text
        assert runner.started == []
        rebound = client.get("/", headers={"Host": "evil.example:8080"})
        assert rebound.status_code == 400
        assert client.get("/", headers={"Host": "localhost:8080"}).status_code == 200
        assert client.get("/login").status_code == 303


def test_a_session_ends_after_its_hours_and_when_the_password_changes() -> None:
    from reports.config.web import WebConfig
    from reports.web.auth import Sessions

    now = [0.0]
    user = {"name": "op", "password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"}
    web = WebConfig.model_validate({"session_hours": 8, "users": [user]})
    sessions = Sessions(web, "k" * 40, lambda: now[0])
    session: dict[str, object] = {}
    sessions.sign_in(session, web.users[0])
    assert sessions.principal(session) is not None
    now[0] = 8 * 3600 + 1
    assert sessions.principal(session) is None
    now[0] = 0.0
    changed = WebConfig.model_validate(
        {"users": [{**user, "password_hash": user["password_hash"] + "x"}]})
    assert Sessions(changed, "k" * 40, lambda: now[0]).principal(session) is None
    assert Sessions(web, "other" * 10, lambda: now[0]).principal(session) is None
