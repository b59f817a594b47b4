"""The archive: atomic writes, names that cannot escape, verify and prune."""

from __future__ import annotations

import hashlib
import resource
from datetime import date, timedelta
from pathlib import Path

import pytest

from reports.delivery.archive import Archive, parse_duration
from reports.errors import ArchiveError, ArchivePathError, UsageError
from reports.report.periods import Period, PeriodKind
from reports.state.ledger import Ledger

WEEK = Period(date(2026, 11, 9), date(2026, 11, 15), PeriodKind.WEEKLY)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "archive")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'state.db'}")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith("."))


def test_write_puts_the_pdf_under_org_report_period(archive: Archive) -> None:
    written = archive.write("acme-university", "acme-weekly", WEEK, PDF)
    expected = archive.root / "acme-university" / "acme-weekly" / "2026-11-09_2026-11-15.pdf"
    assert written.path == expected
    assert expected.read_bytes() == PDF
    assert (written.sha256, written.size) == (hashlib.sha256(PDF).hexdigest(), len(PDF))
    assert _leftovers(archive.root) == []


def test_rewriting_a_period_replaces_the_file_whole(archive: Archive) -> None:
    archive.write("acme", "weekly", WEEK, PDF)
    second = archive.write("acme", "weekly", WEEK, b"%PDF-new")
    assert second.path.read_bytes() == b"%PDF-new"
    assert _leftovers(archive.root) == []


@pytest.mark.parametrize(
    ("org", "report", "message"),
    [
        pytest.param("..", "weekly", "escape", id="dotdot-org"),
        pytest.param("acme", "..", "escape", id="dotdot-report"),
        pytest.param("../etc", "weekly", "path separator", id="dotdot-slash"),
        pytest.param("acme/evil", "weekly", "path separator", id="slash"),
        pytest.param("acme\\evil", "weekly", "path separator", id="backslash"),
        pytest.param("/etc", "weekly", "path separator", id="absolute"),
        pytest.param("", "weekly", "empty", id="empty-org"),
        pytest.param("acme", "", "empty", id="empty-report"),
        pytest.param("ac\x00me", "weekly", "NUL", id="nul"),
        pytest.param(".hidden", "weekly", "must be", id="leading-dot"),
        pytest.param("acme", "week ly", "must be", id="space"),
    ],
)
def test_names_that_could_escape_the_archive_are_refused(
    archive: Archive, org: str, report: str, message: str
) -> None:
    with pytest.raises(ArchivePathError, match=message):
        archive.write(org, report, WEEK, PDF)
    assert not archive.root.exists() or list(archive.root.rglob("*.pdf")) == []


def test_a_symlinked_folder_pointing_outside_is_refused(archive: Archive, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive.root.mkdir()
    (archive.root / "acme").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArchivePathError, match="outside the archive folder"):
        archive.write("acme", "weekly", WEEK, PDF)
    assert list(outside.rglob("*")) == []


def test_verify_reports_changed_and_missing_files(archive: Archive, ledger: Ledger) -> None:
    periods = [Period(WEEK.start + timedelta(weeks=i), WEEK.end + timedelta(weeks=i))
               for i in range(3)]
    for period in periods:
        written = archive.write("acme", "weekly", period, PDF + period.key.encode())
        ledger.record_archive("weekly", "acme", period, path=str(written.path),
                              sha256=written.sha256, size=written.size)
    assert archive.verify(ledger.archive_entries()).clean

    changed, missing = (archive.path_for("acme", "weekly", p) for p in periods[:2])
    changed.write_bytes(changed.read_bytes().replace(b"%PDF-1.7", b"%PDF-1.6"))  # same size
    missing.unlink()
    result = archive.verify(ledger.archive_entries())
    assert not result.clean
    assert [e.path for e in result.changed] == [str(changed)]
    assert [e.path for e in result.missing] == [str(missing)]
    assert len(result.ok) == 1
    assert result.lines() == [f"missing: {missing}",
                              f"changed: {changed} (sha256 differs from the one recorded)"]


def test_prune_deletes_old_files_and_their_entries(archive: Archive, ledger: Ledger) -> None:
    old = Period(date(2025, 1, 6), date(2025, 1, 12))
    for period in (old, WEEK):
        written = archive.write("acme", "weekly", period, PDF)
        ledger.record_archive("weekly", "acme", period, path=str(written.path),
                              sha256=written.sha256, size=written.size)
    removed = archive.prune(ledger, parse_duration("365d"), today=date(2026, 11, 16))
    assert [(e.period_start, e.period_end) for e in removed] == [(old.start, old.end)]
    assert not archive.path_for("acme", "weekly", old).exists()
    assert archive.path_for("acme", "weekly", WEEK).exists()
    assert [e.period_start for e in ledger.archive_entries()] == [WEEK.start]


HTML = b"<!doctype html><p>report</p>"


def test_the_html_is_kept_beside_its_pdf_verified_read_back_and_pruned_with_it(
    archive: Archive, ledger: Ledger,
) -> None:
    old = Period(date(2025, 1, 6), date(2025, 1, 12))
    for period in (old, WEEK):
        written = archive.write("acme", "weekly", period, PDF, html=HTML)
        ledger.record_archive("weekly", "acme", period, path=str(written.path),
                              sha256=written.sha256, size=written.size, html=written.html)
    html = archive.root / "acme" / "weekly" / "2026-11-09_2026-11-15.html"
    assert written.html == (str(html), hashlib.sha256(HTML).hexdigest(), len(HTML))
    assert html.read_bytes() == HTML and _leftovers(archive.root) == []
    entry = ledger.archive_entry("weekly", WEEK)
    assert entry is not None and archive.read_html(entry) == HTML
    result = archive.verify(ledger.archive_entries())
    assert result.clean and result.html_checked == 2

    html.write_bytes(HTML.replace(b"report", b"REPORT"))  # same size, other bytes
    assert archive.verify(ledger.archive_entries()).lines() == [
        f"changed: {html} (sha256 differs from the one recorded)"]
    with pytest.raises(ArchiveError, match="differs from the HTML archived"):
        archive.read_html(entry)
    html.unlink()
    assert archive.verify(ledger.archive_entries()).lines() == [f"missing: {html}"]

    archive.prune(ledger, parse_duration("365d"), today=date(2026, 11, 16))
    assert sorted(p.name for p in (archive.root / "acme" / "weekly").iterdir()) == [
        "2026-11-09_2026-11-15.pdf"]


def test_a_pdf_archived_before_html_was_kept_has_no_preview(
    archive: Archive, ledger: Ledger,
) -> None:
    written = archive.write("acme", "weekly", WEEK, PDF)
    ledger.record_archive("weekly", "acme", WEEK, path=str(written.path),
                          sha256=written.sha256, size=written.size)
    entry = ledger.archive_entry("weekly", WEEK)
    assert entry is not None and written.html is None
    assert archive.read_html(entry) is None
    assert archive.verify([entry]).clean


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("365d", timedelta(days=365), id="days"),
        pytest.param("12w", timedelta(weeks=12), id="weeks"),
        pytest.param(" 7 d ", timedelta(days=7), id="spaces"),
    ],
)
def test_durations_in_days_or_weeks(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["6m", "1y", "365", "d", "-5d", "1.5w", ""])
def test_other_durations_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="days or weeks"):
        parse_duration(text)


def test_a_full_disk_leaves_no_half_written_file(archive: Archive) -> None:
    # RLIMIT_FSIZE makes writes past the limit fail with EFBIG, like a full disk (also as root).
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    target = archive.root / "acme" / "weekly"
    target.mkdir(parents=True)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        with pytest.raises(ArchiveError, match=r"cannot write .*_2026-11-15\.pdf") as info:
            archive.write("acme", "weekly", WEEK, PDF)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert info.value.path.endswith("2026-11-09_2026-11-15.pdf")
    assert list(target.iterdir()) == []


def test_an_archive_folder_that_is_a_file_is_an_archive_error(tmp_path: Path) -> None:
    # A misconfigured [archive] dir (works as root too, unlike a chmod-based read-only folder).
    root = tmp_path / "archive"
    root.write_text("not a folder")
    with pytest.raises(ArchiveError, match="cannot write") as info:
        Archive(root).write("acme", "weekly", WEEK, PDF)
    assert str(root) in str(info.value)
    assert root.read_text() == "not a folder"


def test_the_render_key_is_made_without_importing_the_renderer() -> None:
    """A cold ``generate``'s parent makes the render key while its PDF child renders; the
    built-in templates folder it hashes no longer costs it Jinja2 and the report's analysis and
    charts modules (~30 ms of CPU). A fresh interpreter is the only honest view."""
    import subprocess
    import sys

    from reports.config import ReportConfig
    from reports.config.privacy import PrivacyConfig
    from reports.delivery.renderkey import render_key

    spec = {"name": "acme-weekly", "org": "acme", "period": "weekly", "schedule": "0 7 * * 1"}
    probe = (
        "import sys\n"
        "from reports.config import ReportConfig\n"
        "from reports.config.privacy import PrivacyConfig\n"
        "from reports.delivery.renderkey import render_key\n"
        f"report = ReportConfig.model_validate({spec!r})\n"
        "print(render_key(data_hash='0' * 64, report=report, privacy=PrivacyConfig(),\n"
        "                 templates_dir=None, version='1'))\n"
        "print(sorted(m for m in ('reports.report.render', 'jinja2') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    key, imported = done.stdout.split("\n")[:2]
    assert imported == "[]"
    assert key == render_key(data_hash="0" * 64, report=ReportConfig.model_validate(spec),
                             privacy=PrivacyConfig(), templates_dir=None, version="1")


def test_the_out_and_html_copies_are_both_written_and_a_failure_names_its_file(
    tmp_path: Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from reports.atomic import write_copies

    pdf, html = tmp_path / "r.pdf", tmp_path / "r.html"
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")
    with ThreadPoolExecutor(1) as pool:
        write_copies(pool, [(pdf, b"%PDF-1.7"), (html, b"<html>")])
        assert (pdf.read_bytes(), html.read_bytes()) == (b"%PDF-1.7", b"<html>")
        with pytest.raises(UsageError, match=r"cannot write .*a-file/r\.html: "):
            write_copies(pool, [(pdf, b"%PDF-2"), (blocked / "r.html", b"<html>")])
        assert pdf.read_bytes() == b"%PDF-2"  # the other copy is whole all the same
        write_copies(pool, [])
