"""Email messages, bodies, strict addresses, header injection, the file outbox."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from reports.addresses import parse_address
from reports.delivery.backends import FileOutbox
from reports.delivery.mail import (
    Attachment,
    MailSummary,
    build_message,
    format_subject,
    make_message_id,
    render_bodies,
)
from reports.delivery.mailer import deliver, send_alert
from reports.errors import ConfigError, MailAddressError
from reports.report.periods import Period, PeriodKind
from reports.send import SendOutcome
from reports.state.deliveries import DeliveryState
from reports.state.ledger import Ledger

WEEK = Period(date(2026, 11, 9), date(2026, 11, 15), PeriodKind.WEEKLY)
PDF = b"%PDF-1.7\n" + b"x" * 2000 + b"\n%%EOF\n"
SENDER = "ibl.ai reports <reports@example.org>"
SUMMARY = MailSummary(
    title="Weekly report", org_name="Acme University", period_label="9-15 Nov 2026",
    report_name="acme-weekly",
    kpis=[("Active users", "1,204", "+8% vs previous week"), ("Enrollments", "88", "")],
    highlights=["Course <b>Biology</b> doubled its users", "No data was missing"],
)


def message_for(recipient: str, **overrides: object) -> EmailMessage:
    text, html = render_bodies(SUMMARY)
    values: dict[str, object] = {
        "sender": SENDER, "recipient": recipient,
        "subject": "Weekly report, Acme University, 9-15 Nov 2026", "text_body": text,
        "html_body": html, "pdf": PDF, "pdf_name": "acme-weekly_2026-11-09_2026-11-15.pdf",
        "message_id": make_message_id("acme-weekly", WEEK.key, recipient, "example.org"),
        "date": datetime(2026, 11, 16, 7, 0, tzinfo=UTC), "report": "acme-weekly",
        "period_key": WEEK.key,
    }
    values.update(overrides)
    return build_message(**values)  # type: ignore[arg-type]


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_message_has_text_html_and_the_pdf_for_one_recipient() -> None:
    message = reparse(message_for("dean@acme.example", extra_attachments=[
        Attachment("active_users.csv", b"username,name\nu1,One\n")]))
    assert message["To"] == "dean@acme.example"
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("ibl.ai reports", "reports@example.org")
    assert message["Subject"] == "Weekly report, Acme University, 9-15 Nov 2026"
    assert message["Date"] == "Mon, 16 Nov 2026 07:00:00 +0000"
    assert "Cc" not in message and "Bcc" not in message
    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert body is not None and html is not None
    assert "Active users: 1,204 · +8% vs previous week" in body.get_content()
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert attachments["acme-weekly_2026-11-09_2026-11-15.pdf"].get_content() == PDF
    assert attachments["active_users.csv"].get_content_type() == "text/csv"


def test_message_ids_are_stable_per_report_period_and_recipient() -> None:
    one = make_message_id("acme-weekly", WEEK.key, "a@example.org", "example.org")
    assert one == make_message_id("acme-weekly", WEEK.key, "A@Example.org", "example.org")
    others = {
        make_message_id("acme-weekly", WEEK.key, "b@example.org", "example.org"),
        make_message_id("acme-weekly", "2026-11-16_2026-11-22", "a@example.org", "example.org"),
        make_message_id("acme-monthly", WEEK.key, "a@example.org", "example.org"),
    }
    assert one not in others and len(others) == 3
    assert one.startswith("<") and one.endswith("@example.org>")
    assert "a@example.org" not in one  # the recipient is not exposed in the header


def test_html_body_is_escaped_self_contained_and_readable_on_a_phone() -> None:
    text, html = render_bodies(SUMMARY)
    assert "&lt;b&gt;Biology&lt;/b&gt;" in html and "<b>Biology</b>" not in html
    assert "<b>Biology</b>" in text  # the text body is not HTML-escaped
    assert 'name="viewport"' in html and "max-width:600px" in html
    assert "<img" not in html and "http" not in html and "<link" not in html


def test_a_user_template_overrides_the_built_in_one(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "body.txt").write_text("Hello {{ summary.org_name }}\n")
    text, html = render_bodies(SUMMARY, override_dir=tmp_path)
    assert text == "Hello Acme University\n"
    assert "Weekly report" in html  # the HTML template still comes from the built-in folder


def test_a_notice_is_the_first_line_even_with_user_templates(tmp_path: Path) -> None:
    from dataclasses import replace

    notice = "Provisional: data for Nov 15 has not arrived for 12 of 12 courses"
    text, html = render_bodies(replace(SUMMARY, notice=notice))
    assert text.splitlines()[0] == notice
    assert html.index(notice) < html.index("<h1")
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "body.txt").write_text("Hello {{ summary.org_name }}\n")
    (tmp_path / "email" / "body.html").write_text("<html><body><p>Hi</p></body></html>")
    text, html = render_bodies(replace(SUMMARY, notice=notice + " <&>"), override_dir=tmp_path)
    assert text == f"{notice} <&>\n\nHello Acme University\n"
    assert html == (f"<html><body><p><strong>{notice} &lt;&amp;&gt;</strong></p>"
                    "<p>Hi</p></body></html>")


def test_provisional_and_replacement_subjects() -> None:
    from reports.delivery.mail import edition_subject

    subject = "Weekly report, Acme University, 9-15 Nov 2026"
    assert edition_subject(subject, "final") == subject
    assert edition_subject(subject, "provisional") == "[Provisional] " + subject
    assert edition_subject(subject, "replacement") == (
        subject + " (final: replaces the provisional report)")


def test_an_undefined_variable_in_a_template_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "body.txt").write_text("{{ summary.no_such_field }}\n")
    with pytest.raises(ConfigError, match="no_such_field"):
        render_bodies(SUMMARY, override_dir=tmp_path)


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("alice@example.org", id="bare"),
        pytest.param("Alice Doe <alice@example.org>", id="named"),
        pytest.param('"Doe, Alice" <alice@example.org>', id="quoted-name"),
        pytest.param("Zoë Müller <zoe@example.org>", id="unicode-name"),
        pytest.param("first.last+tag@mail.example.org", id="plus-and-dots"),
        pytest.param("ops@localhost", id="dotless-domain"),
    ],
)
def test_plain_addresses_are_accepted(address: str) -> None:
    parsed = parse_address(address)
    assert "@" in parsed.addr_spec


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("alice@example.org(<bob@example.org>", id="cve-2023-27043-comment"),
        pytest.param('"a@b"@example.org', id="quoted-local-part"),
        pytest.param("alice@example.org, bob@example.org", id="two-addresses"),
        pytest.param("alice@example.org bob@example.org", id="two-addresses-space"),
        pytest.param("Alice <alice@example.org>, bob@example.org", id="named-then-bare"),
        pytest.param("alice", id="no-domain"),
        pytest.param("alice@", id="empty-domain"),
        pytest.param("@example.org", id="empty-local"),
        pytest.param("alice@@example.org", id="double-at"),
        pytest.param("alice@-example.org", id="bad-label"),
        pytest.param('"bob@evil.example" <alice@example.org>', id="address-as-name"),
        pytest.param("Team: alice@example.org;", id="group"),
        pytest.param("alice@exämple.org", id="non-ascii-domain"),
        pytest.param("", id="empty"),
    ],
)
def test_ambiguous_addresses_are_refused(address: str) -> None:
    with pytest.raises(MailAddressError, match="not one plain ASCII address"):
        parse_address(address)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("recipient", "dean@acme.example\r\nBcc: spy@evil.example", id="to-crlf"),
        pytest.param("recipient", "Dean\n <dean@acme.example>", id="name-lf"),
        pytest.param("recipient", "=?utf-8?q?Dean=0ABcc=3A_spy=40evil=2Eexample?= "
                     "<dean@acme.example>", id="to-encoded-lf"),
        pytest.param("subject", "Report\r\nBcc: spy@evil.example", id="subject-crlf"),
        pytest.param("subject", "=?utf-8?q?Report=0D=0ABcc=3A_spy=40evil=2Eexample?=",
                     id="subject-encoded-crlf"),
        pytest.param("subject", "=?utf-8?b?UmVwb3J0CkJjYzogc3B5QGV2aWwuZXhhbXBsZQ==?=",
                     id="subject-base64-lf"),
        pytest.param("sender", "Reports <reports@example.org>\nBcc: spy@evil.example",
                     id="from-lf"),
        pytest.param("pdf_name", "report.pdf\r\nX-Evil: 1", id="filename-crlf"),
    ],
)
def test_header_injection_is_refused(field: str, value: str) -> None:
    recipient = value if field == "recipient" else "dean@acme.example"
    overrides = {field: value} if field != "recipient" else {}
    with pytest.raises(MailAddressError) as info:
        message_for(recipient, **overrides)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)
    assert "dean@acme.example" in str(info.value)  # names the recipient


def test_a_subject_is_made_from_the_config_template() -> None:
    subject = format_subject(
        "{period_title} report, {org_name}, {period_label}", period_title="Weekly",
        org_name="Acme University", period_label="9-15 Nov 2026", report="acme-weekly",
    )
    assert subject == "Weekly report, Acme University, 9-15 Nov 2026"
    with pytest.raises(ConfigError, match=r"email\.subject.*no_such"):
        format_subject("{no_such}", period_title="W", org_name="A", period_label="P",
                       report="r")
    with pytest.raises(MailAddressError, match="line break"):
        format_subject("{org_name}", period_title="W", org_name="Acme\nBcc: x@y.z",
                       period_label="P", report="r")


def test_the_file_outbox_writes_one_eml_per_recipient(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    receipt = outbox.send(message_for("dean@acme.example"), "dean@acme.example")
    path = tmp_path / "outbox" / "2026-11-09_2026-11-15_acme-weekly_dean@acme.example.eml"
    assert receipt.reply == f"written to {path}"
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["To"] == "dean@acme.example"
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [path.name]
    # what `send --to` then prints: where the copy went, not a "server reply"
    line = SendOutcome("acme-weekly", WEEK, sent=("dean@acme.example",),
                       test_reply=receipt.said()).lines()
    assert line == [f"acme-weekly 2026-11-09..2026-11-15: test copy sent to dean@acme.example "
                    f"(written to {path}); no delivery recorded"]


def test_delivering_to_the_outbox_twice_writes_each_message_once(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'state.db'}")
    outbox = FileOutbox(tmp_path / "outbox")
    recipients = ["dean@acme.example", "programs@acme.example"]
    messages = {r: message_for(r) for r in recipients}
    first = deliver(ledger, outbox, "acme-weekly", WEEK, messages, max_attempts=1)
    assert first.sent == tuple(recipients) and first.ok
    for path in (tmp_path / "outbox").iterdir():
        path.unlink()
    second = deliver(ledger, outbox, "acme-weekly", WEEK, messages, max_attempts=1)
    assert second.sent == () and second.skipped == tuple(recipients)
    assert list((tmp_path / "outbox").iterdir()) == []
    assert {d.state for d in ledger.deliveries("acme-weekly")} == {DeliveryState.SENT}
    assert ledger.period_done("acme-weekly", WEEK, recipients)


def test_an_unwritable_outbox_is_a_transient_failure(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'state.db'}")
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    report = deliver(ledger, FileOutbox(blocker), "acme-weekly", WEEK,
                     {"dean@acme.example": message_for("dean@acme.example")},
                     max_attempts=2, backoff_s=0.5, sleep=lambda _s: None)
    [failure] = report.failed
    assert not failure.permanent and "cannot write" in failure.reason
    assert report.lines()[0].startswith("dean@acme.example: transient")
    record = ledger.delivery("acme-weekly", WEEK, "dean@acme.example")
    assert record is not None and record.state is DeliveryState.FAILED_TRANSIENT
    assert record.attempts == 2


def test_alerts_reach_every_valid_recipient(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "outbox")
    report = send_alert(outbox, SENDER, ["ops@example.org", "bad address", "dev@example.org"],
                        "ibl-reports: acme-weekly failed", "The API answered 503.")
    assert report.sent == ("ops@example.org", "dev@example.org")
    [failure] = report.failed
    assert failure.recipient == "bad address" and failure.permanent
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert len(files) == 2 and all(name.endswith(".eml") for name in files)


# ---------------------------------------------------------------------------------------------
# The body as its reader sees it: the comparison, KPI cards like the PDF's, phone width


def test_what_the_figures_are_compared_with() -> None:
    from reports.report.fmt import compared_with

    october = Period(date(2026, 10, 1), date(2026, 10, 31), PeriodKind.MONTHLY)
    january = Period(date(2027, 1, 1), date(2027, 1, 31), PeriodKind.MONTHLY)
    assert compared_with(october, october.previous()) == "September"
    assert compared_with(january, january.previous()) == "December 2026"
    assert compared_with(october, october.previous(), "de") == "September"
    assert compared_with(WEEK, WEEK.previous()) == "the week of Nov 2"
    custom = Period(date(2026, 11, 3), date(2026, 11, 12), PeriodKind.CUSTOM)
    assert compared_with(custom, custom.previous()) == "Oct 24\u2009\u2013\u2009Nov 2, 2026"


def _real_summary(accent: str = "#D55E00") -> MailSummary:
    from reports.delivery.summary import summarise
    from reports.report.analysis import analyse
    from tests._sample import realistic

    return summarise(analyse(realistic(), top_n=15), title="Weekly report",
                     org_name="Acme University", report_name="acme-weekly",
                     accent_color=accent)


def test_the_body_says_what_the_figures_are_compared_with_and_shows_the_kpi_cards() -> None:
    text, html = render_bodies(_real_summary())
    assert "Changes are compared with the week of Nov 2." in text
    assert "- Active users: 1,160 · +12% (+124) vs the week of Nov 2" in text
    assert "Changes are compared with the week of Nov 2." in html
    assert "vs 1,036 in the week of Nov\u00a02" in html  # the previous figure, under the change
    # Arrows and colours as on the PDF's first page: up is green for users, a fall in
    # unenrollments is good news too; the accent colour on the bars and card borders.
    assert ('color:#00735a;margin:0;"><span aria-hidden="true" style="font-size:10px;">'
            '&#9650;</span> <bdi>+12% (+124)</bdi>') in html
    assert html.count("&#9660;") >= 1 and html.count("border-top:3px solid #D55E00") == 6
    assert "background:#D55E00" in html
    # The mail clients' subset: tables and inline styles, nothing a client strips.
    for absent in ("<style", "class=", "flex", "grid", "<div", "<link", "<img", "http"):
        assert absent not in html, absent


@pytest.fixture
def browser() -> Any:
    # Per test: an open Playwright keeps an asyncio loop marked running on the main thread
    # (see tests/test_web_browser.py's browser fixture).
    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("IBL_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{path} is missing and IBL_TEST_REQUIRE_SERVICES=1")
        pytest.skip(f"{path} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.parametrize("width", [390, 1000])
def test_the_html_body_reads_well_in_a_browser_at_phone_and_desktop_width(
    browser: Any, width: int
) -> None:
    _, html = render_bodies(_real_summary())
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.set_content(html)
        # Nothing wider than the screen; at most 600 px of content on a desktop.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        cards = page.locator("td[width='50%']").filter(has_text="ACTIVE USERS")
        values = page.get_by_text("1,160", exact=True)
        box = values.bounding_box()
        assert box is not None and 0 < box["x"] < width
        first, second = (page.locator("td[width='50%']").nth(i).bounding_box() for i in (0, 1))
        assert first is not None and second is not None
        # Two cards side by side, equal heights, inside a column of at most 600 px.
        assert first["y"] == second["y"] and first["height"] == second["height"]
        assert second["x"] + second["width"] - first["x"] <= 600
        assert cards.count() == 1
        style = page.evaluate(
            "() => { const p = [...document.querySelectorAll('p')]"
            ".find(e => e.textContent.includes('+12% (+124)'));"
            " return getComputedStyle(p).color; }")
        assert style == "rgb(0, 115, 90)"
        folder = os.environ.get("IBL_WEB_SCREENSHOTS")
        if folder:
            page.screenshot(path=f"{folder}/email-{width}.png", full_page=True)
    finally:
        page.close()
