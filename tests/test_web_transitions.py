"""The run page's transitions (pure): an "archived" transition names the archive key and links
to the PDF, for a folder or an S3 archive, for a PDF reused from an earlier run, and for one
pruned since; never the server's path."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reports.state.archive_index import ArchiveRecord
from reports.state.runs import RunEvent, RunState
from reports.web.scoped import ArchiveRow
from reports.web.transitions import archive_key, transitions

AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
KEY = "acme-university/acme-weekly/2026-11-16_2026-11-22.pdf"


def _row(location: str, *, current: bool = True) -> ArchiveRow:
    entry = ArchiveRecord(
        report="acme-weekly", org="acme-university", period_start=date(2026, 11, 16),
        period_end=date(2026, 11, 22), path=location, sha256="a" * 64, size=10,
        data_hash=None, created_at=AT, current=current,
    )
    return ArchiveRow(entry, pages=1)


def _archived(detail: str | None) -> RunEvent:
    return RunEvent(7, RunState.RENDERING, RunState.ARCHIVED, AT, detail)


@pytest.mark.parametrize("location", [
    pytest.param(f"/srv/ibl/archive/{KEY}", id="folder"),
    pytest.param(f"s3://reports-bucket/prod/{KEY}", id="s3"),
    pytest.param(f"C:\\ibl\\archive\\{KEY.replace('/', chr(92))}", id="windows-path"),
])
def test_an_archived_transition_shows_the_key_and_links_to_the_pdf(location: str) -> None:
    row = _row(location)
    [shown] = transitions([_archived(location)], [row])
    assert (shown.prefix, shown.detail, shown.href) == ("", KEY, row.href)
    assert "srv" not in shown.detail and "bucket" not in shown.detail


def test_a_reused_pdf_links_to_the_one_an_earlier_run_archived() -> None:
    location = f"/srv/ibl/archive/{KEY}"
    earlier = _row(f"/srv/ibl/archive/{KEY.removesuffix('.pdf')}.0123abcd4567.pdf",
                   current=False)
    [shown] = transitions([_archived(f"reused {location}")], [_row(location), earlier])
    assert (shown.prefix, shown.detail, shown.href) == (
        "reused ", KEY, "/reports/acme-weekly/pdf/2026-11-16_2026-11-22")
    old = earlier.entry.path
    [kept] = transitions([_archived(old)], [_row(location), earlier])
    assert kept.href == earlier.href and kept.detail == archive_key(old)
    assert kept.href.startswith("/reports/acme-weekly/pdf/2026-11-16_2026-11-22/final/")


def test_a_pruned_pdf_is_named_without_a_link_and_other_details_are_kept() -> None:
    events = [
        RunEvent(7, None, RunState.COLLECTING, AT, "acme-weekly 2026-11-16_2026-11-22"),
        _archived(f"/srv/ibl/archive/{KEY}"),
        RunEvent(7, RunState.ARCHIVED, RunState.DONE, AT, "generated (not mailed)"),
        _archived(None),
    ]
    shown = transitions(events, [])
    assert [(t.detail, t.href) for t in shown] == [
        ("acme-weekly 2026-11-16_2026-11-22", None),
        (f"{KEY} (no longer in the archive)", None),
        ("generated (not mailed)", None),
        ("", None),
    ]
