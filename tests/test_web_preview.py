"""The web UI's HTML previews, downloads audited per run, and failed logins in the audit trail
(httpx against the real server; the org scope of previews, also by guessing URLs)."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reports.config import load_config
from reports.delivery.archive import Archive
from reports.state.ledger import Ledger
from reports.web.auth import Principal
from reports.web.pages import PREVIEW_CSP
from reports.web.scoped import NotFound, Scoped
from tests._web import (
    ACME_PERIOD,
    PASSWORDS,
    WebSite,
    csrf_of,
    preview_html,
    web_site,
    write_web_config,
)

__all__ = ["web_site"]

ACME = "/reports/acme-weekly/html/2026-11-16_2026-11-22"
BETA = "/reports/beta-weekly/html/2026-11-09_2026-11-15"


def test_the_preview_is_the_archived_html_inline_sandboxed_and_never_cached(
    web_site: WebSite,
) -> None:
    client = web_site.login("op")
    answer = client.get(ACME)
    assert answer.status_code == 200
    assert answer.content == preview_html("acme-weekly")
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"] == (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox") == PREVIEW_CSP
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"] == (
        'inline; filename="acme-weekly_2026-11-16_2026-11-22.html"')
    assert answer.headers["x-content-type-options"] == "nosniff"
    page = client.get("/reports/acme-weekly").text
    assert f'href="{ACME}"' in page
    # The provisional edition was archived before HTML was kept: "no preview", no link.
    assert "no preview" in page and f'href="{ACME}/provisional"' not in page
    assert client.get(ACME + "/provisional").status_code == 404


def test_a_download_and_a_preview_are_audited_with_their_run(web_site: WebSite) -> None:
    client = web_site.login("acme-viewer")
    run = web_site.seeded.acme_run
    assert client.get("/reports/acme-weekly/pdf/2026-11-16_2026-11-22").status_code == 200
    assert client.get(ACME).status_code == 200
    rows = web_site.ledger.audit_rows(run_id=run, limit=100)
    mine = [(r.action, r.report) for r in rows if r.user == "acme-viewer"]
    assert ("download", "acme-weekly") in mine and ("preview", "acme-weekly") in mine
    [download] = [r for r in rows if r.user == "acme-viewer" and r.action == "download"][:1]
    assert "acme-weekly_2026-11-16_2026-11-22.pdf (final; PDF sha256" in download.detail
    page = client.get(f"/runs/{run}").text
    assert "Archived by this run" in page and f'href="{ACME}"' in page
    assert "acme-weekly_2026-11-16_2026-11-22.pdf (final; PDF sha256" in page  # its audit row


@pytest.mark.parametrize("path", [
    pytest.param(BETA, id="other-org"),
    pytest.param(BETA + "/final", id="other-org-edition"),
    pytest.param("/reports/acme-weekly/html/2026-11-09_2026-11-15", id="other-orgs-period"),
    pytest.param(ACME + "/final/" + "0" * 16, id="no-such-file"),
    pytest.param(ACME + "/final/..%2F..", id="hash-dots"),
    pytest.param(ACME + "/../../../config.toml", id="dots"),
    pytest.param("/reports/acme-weekly/html/..%2F..%2Fstate.db", id="encoded-dots"),
    pytest.param(ACME + "/draft", id="no-such-edition"),
])
def test_a_user_never_gets_another_orgs_preview(web_site: WebSite, path: str) -> None:
    client = web_site.login("acme-viewer")
    answer = client.get(path)
    assert answer.status_code == 404, path
    assert "beta" not in answer.text and "<h1>" + "beta-weekly" not in answer.text
    # Beta's own viewer does get it; acme's viewer does not, even with its exact reference.
    beta = web_site.login("beta-viewer")
    assert beta.get(BETA).content == preview_html("beta-weekly")
    ref = hashlib.sha256(str(web_site.seeded.beta_pdf).encode()).hexdigest()[:16]
    assert client.get(f"{BETA}/final/{ref}").status_code == 404
    assert beta.get(ACME).status_code == 404


def test_a_changed_preview_is_refused_not_served(web_site: WebSite) -> None:
    html = web_site.seeded.acme_pdf.with_suffix(".html")
    original = html.read_bytes()
    html.write_bytes(original.replace(b"Preview", b"Tampered"))
    try:
        answer = web_site.login("op").get(ACME)
        assert answer.status_code == 409 and b"Tampered" not in answer.content
        assert "archive check" in answer.text
        check = web_site.login("op").get("/archive/verify").text
        assert "preview changed" in check
    finally:
        html.write_bytes(original)


def test_a_failed_login_is_audited_without_the_password_and_shown_to_operators(
    web_site: WebSite,
) -> None:
    client = web_site.client()
    token = csrf_of(client.get("/login").text)
    typo = "secret-typo-" + PASSWORDS["op"]
    answer = client.post("/login", data={"name": "mallory", "password": typo, "csrf": token})
    assert answer.status_code == 401
    [row] = [r for r in web_site.ledger.audit_rows(limit=500) if r.user == "mallory"]
    assert (row.action, row.detail, row.report) == ("login-failed", "from 127.0.0.1", None)
    assert abs((datetime.now(UTC) - row.at).total_seconds()) < 60
    path = Path(web_site.config.state.url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        assert typo not in "".join(str(r) for r in db.iterdump())
    audit = web_site.login("op").get("/audit")
    assert audit.status_code == 200
    assert "mallory" in audit.text and "login-failed" in audit.text and typo not in audit.text
    # A viewer gets no audit page; an operator's nav links it.
    assert web_site.login("acme-viewer").get("/audit").status_code == 403
    assert 'href="/audit"' in web_site.login("op").get("/").text


def test_an_earlier_render_kept_as_history_is_served_by_its_hash(tmp_path: Path) -> None:
    config = load_config(write_web_config(tmp_path))
    archive = Archive(config.archive.dir)
    with Ledger(config.state.url) as ledger:
        # Two renders giving the same PDF bytes (a screen-only style change) with other HTML.
        for variant, body in (("a" * 12, b"first"), ("b" * 12, b"second")):
            written = archive.write("acme-university", "acme-weekly", ACME_PERIOD,
                                    b"%PDF-same", variant=variant, html=b"<p>" + body)
            ledger.record_archive("acme-weekly", "acme-university", ACME_PERIOD,
                                  path=str(written.path), sha256=written.sha256,
                                  size=written.size, html=written.html, render_key=variant)
        viewer = Principal("acme-viewer", "viewer", frozenset({"acme-university"}))
        scoped = Scoped(config, ledger, viewer, clock=lambda: datetime.now(UTC))
        current, earlier = scoped.archive("acme-weekly")
        assert (current.entry.current, earlier.entry.current) == (True, False)
        ref = hashlib.sha256(earlier.entry.path.encode()).hexdigest()[:16]
        assert earlier.entry.path.endswith(".aaaaaaaaaaaa.pdf")
        assert current.href == f"/reports/acme-weekly/pdf/{ACME_PERIOD.key}"
        assert earlier.href == f"/reports/acme-weekly/pdf/{ACME_PERIOD.key}/final/{ref}"
        assert earlier.preview_href == earlier.href.replace("/pdf/", "/html/")
        assert scoped.archive_html("acme-weekly", ACME_PERIOD.key)[1] == b"<p>second"
        found, html = scoped.archive_html("acme-weekly", ACME_PERIOD.key, "final", ref)
        assert (found.path, html) == (earlier.entry.path, b"<p>first")
        assert scoped.archive_file("acme-weekly", ACME_PERIOD.key, "final", ref)[0] == found
        for wrong in ("A" * 16, "0" * 16, ref[:15]):
            with pytest.raises(NotFound):
                scoped.archive_html("acme-weekly", ACME_PERIOD.key, "final", wrong)
