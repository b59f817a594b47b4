"""The web UI in Debian's Chromium (Playwright): sign in with the keyboard, read the reports,
download a PDF byte for byte, open its HTML preview (the CSP holds: no script, no outside
request), and the phone-width layout of a viewer limited to one org.

One browser for the session, a handful of page loads. Set IBL_WEB_SCREENSHOTS=DIR to keep
screenshots of what the tests saw (desktop 1280 px and phone 390 px wide).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reports.config import load_config
from reports.delivery.archive import Archive
from reports.report.analysis import analyse
from reports.report.render import Branding, render_html
from reports.state.ledger import Ledger
from reports.web.app import create_app
from tests._sample import realistic
from tests._web import (
    BETA_PERIOD,
    PASSWORDS,
    PDF,
    SECRET,
    T0,
    RecordingRunner,
    WebSite,
    require_chromium,
    serving,
    web_site,
    write_web_config,
)

__all__ = ["web_site"]

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium for one test.

    Not shared across tests: while Playwright's sync API is open it keeps an asyncio loop marked
    running on the main thread, and a test that runs the CLI in-process (its ``asyncio.run``)
    after it on the same xdist worker fails with "cannot be called from a running event loop".
    A module-scoped browser is not enough: xdist may run another module's test before the
    module's teardown.
    """
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("IBL_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _sign_in(page: Any, name: str, password: str) -> None:
    """Fill the login form with the keyboard only."""
    page.locator("#name").focus()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_sign_in_list_and_download(browser: Any, web_site: WebSite) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(web_site.url + "/reports/acme-weekly")
        assert "/login" in page.url
        _sign_in(page, "op", "not-the-password")
        assert page.get_by_role("alert").inner_text() == "Wrong name or password."
        _shot(page, "login-refused-desktop")
        _sign_in(page, "op", PASSWORDS["op"])
        assert page.url.endswith("/reports/acme-weekly")
        _shot(page, "report-desktop")
        with page.expect_download() as caught:
            page.get_by_role("link", name="Download 2026-11-16_2026-11-22", exact=True).click()
        download = caught.value
        assert download.suggested_filename == "acme-weekly_2026-11-16_2026-11-22.pdf"
        assert Path(download.path()).read_bytes() == web_site.seeded.acme_pdf.read_bytes()
        _check_preview(page)
        page.goto(web_site.url + "/audit")
        assert "download" in page.locator("main").inner_text()
        _shot(page, "audit-desktop")
        page.goto(web_site.url + "/")
        rows = page.locator("tbody tr")
        assert rows.count() == 2
        assert "beta-weekly" in page.locator("tbody").inner_text()
        _shot(page, "reports-desktop")
        page.goto(f"{web_site.url}/runs/{web_site.seeded.acme_run}")
        assert "550 5.1.1 mailbox unavailable" in page.locator("main").inner_text()
        _check_archived_transition(page, web_site)
        _shot(page, "run-desktop")
    finally:
        context.close()


def _check_archived_transition(page: Any, web_site: WebSite) -> None:
    """The "archived" transition names the archive key and links to that PDF; the server's
    archive folder appears nowhere on the page."""
    key = "acme-university/acme-weekly/2026-11-16_2026-11-22.pdf"
    row = page.locator("tr", has=page.locator(".s-archived"))
    assert row.locator("td").nth(3).inner_text() == key
    assert str(web_site.seeded.acme_pdf.parents[2]) not in page.content()
    with page.expect_download() as caught:
        row.get_by_role("link", name=key, exact=True).click()
    assert Path(caught.value.path()).read_bytes() == web_site.seeded.acme_pdf.read_bytes()


def _check_preview(page: Any) -> None:
    """The preview under its CSP: inline styles and data: images shown; no script runs and
    nothing is fetched from elsewhere."""
    with page.expect_navigation():
        page.get_by_role("link", name="Preview 2026-11-16_2026-11-22", exact=True).click()
    assert page.locator("h1").inner_text() == "acme-weekly"
    assert page.title() == "Preview of acme-weekly"  # the page's script did not run
    assert page.locator("h1").evaluate("e => getComputedStyle(e).color") == "rgb(0, 114, 178)"
    assert page.locator("#chart").evaluate("e => e.naturalWidth") == 1
    assert page.locator("#outside").evaluate("e => e.naturalWidth") == 0
    page.go_back()


def test_a_viewer_at_phone_width_sees_only_their_org(browser: Any, web_site: WebSite) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(web_site.url + "/login")
        _sign_in(page, "acme-viewer", PASSWORDS["acme-viewer"])
        body = page.locator("main").inner_text()
        assert "acme-weekly" in body and "beta-weekly" not in body
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wide, "the reports page scrolls sideways at 390 px"
        _shot(page, "reports-phone")
        page.goto(web_site.url + "/reports/acme-weekly")
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        _shot(page, "report-phone")
        answer = page.goto(web_site.url + "/reports/beta-weekly")
        assert answer is not None and answer.status == 404
        answer = page.goto(web_site.url + "/reports/beta-weekly/html/2026-11-09_2026-11-15")
        assert answer is not None and answer.status == 404
        page.goto(f"{web_site.url}/runs/{web_site.seeded.acme_run}")
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert str(web_site.seeded.acme_pdf.parents[2]) not in page.content()
        _shot(page, "run-phone")
    finally:
        context.close()


def _real_report_site(folder: Path) -> tuple[Any, Ledger]:
    """A site whose one archived edition has a real report's HTML (cards, highlights, tables;
    no charts, which are images of the text width and cost a matplotlib import here)."""
    config = load_config(write_web_config(folder))
    html = render_html(analyse(realistic(), top_n=15), [], Branding("Beta College"),
                       templates_dir=None, generated_on=BETA_PERIOD.end, locale="en")
    written = Archive(config.archive.dir).write("beta-college", "beta-weekly", BETA_PERIOD, PDF,
                                                html=html.encode())
    ledger = Ledger(config.state.url)
    ledger.record_archive("beta-weekly", "beta-college", BETA_PERIOD, path=str(written.path),
                          sha256=written.sha256, size=written.size, html=written.html)
    app = create_app(config, secret=SECRET, ledger=ledger, runner=RecordingRunner(),
                     clock=lambda: T0)
    return app, ledger


_LAYOUT = ("[window.innerWidth, document.documentElement.scrollWidth, window.visualViewport.scale,"
           " document.body.offsetWidth,"
           " parseFloat(getComputedStyle(document.querySelector('.kpi-value')).fontSize)]")


def test_the_preview_of_a_real_report_reads_at_phone_width(browser: Any, tmp_path: Path) -> None:
    """At 390 px the preview is laid out for the phone (not the A4 sheet zoomed out to fit):
    page scale 1, nothing scrolls sideways, the key figures at a readable size; at desktop
    width it is the A4 sheet."""
    app, ledger = _real_report_site(tmp_path)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        with serving(app) as url:
            page.goto(url + "/login")
            _sign_in(page, "beta-viewer", PASSWORDS["beta-viewer"])
            page.goto(url + "/reports/beta-weekly")
            with page.expect_navigation():
                page.get_by_role("link", name="Preview 2026-11-09_2026-11-15",
                                 exact=True).click()
            assert page.title().startswith("Beta College: Weekly report")
            inner, scroll, scale, body, kpi = layout = page.evaluate(_LAYOUT)
            assert (inner, scale, body) == (390, 1, 390), layout
            assert scroll <= inner, f"the preview scrolls sideways at 390 px: {layout}"
            assert kpi >= 18, f"the key figures are drawn at {kpi} px"
            _shot(page, "preview-phone")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.reload()
            inner, scroll, scale, body, kpi = layout = page.evaluate(_LAYOUT)
            assert inner == 1280 and body >= round(210 / 25.4 * 96), layout  # the A4 sheet
            _shot(page, "preview-desktop")
    finally:
        context.close()
        ledger.close()
