"""What a page may show: read-only lookups in the config, the ledger and the archive, scoped.

Every lookup goes through the principal's org scope: a report, run or archived PDF of an org the
principal may not see is ``NotFound`` (a 404, the same answer as for one that does not exist),
so guessing URLs reveals nothing. Archived files (a PDF, the HTML kept beside it) are found
through the archive index only and read through the archive store (folder or S3); a location
the index lists outside the archive (another folder, bucket or prefix) is refused too. A URL
names a report, a period key, an edition and, for a PDF kept as history after a re-render, a
reference to it: the first 16 hex digits of the SHA-256 of its location (unique, where two renders
may give the same PDF bytes with different HTML).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from reports.config import Config, ReportConfig
from reports.delivery.archive import Archive, VerifyResult, open_archive
from reports.errors import ArchiveAccessError, ArchiveChangedError, ArchiveError
from reports.report.periods import Period
from reports.state.archive_index import FINAL, ArchiveRecord
from reports.state.deliveries import DeliveryRecord
from reports.state.runs import PROVISIONAL, RunEvent, RunRecord
from reports.web.auth import Principal
from reports.web.pdfinfo import archived_pages

_PERIOD_KEY = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})$")
_REF = re.compile(r"^[0-9a-f]{16}$")


_T = TypeVar("_T")


class NotFound(Exception):
    """Nothing the principal may see answers to this URL."""


@dataclass(frozen=True)
class ReportRow:
    """One line of the reports page."""

    report: ReportConfig
    next_local: datetime | None
    last_state: str | None
    last_period: str | None
    last_error: str | None
    paused: bool
    last_run: RunRecord | None = None


@dataclass(frozen=True)
class ArchiveRow:
    """One archived PDF of a report."""

    entry: ArchiveRecord
    pages: int | None

    @property
    def key(self) -> str:
        """The period key that names it in URLs."""
        return f"{self.entry.period_start.isoformat()}_{self.entry.period_end.isoformat()}"

    def _url(self, kind: str) -> str:
        entry = self.entry
        tail = "" if entry.edition == FINAL and entry.current else f"/{entry.edition}"
        if not entry.current:
            tail += f"/{file_ref(entry)}"
        return f"/reports/{entry.report}/{kind}/{self.key}{tail}"

    @property
    def href(self) -> str:
        """Its download URL (a provisional PDF's names its edition, a kept one its hash too)."""
        return self._url("pdf")

    @property
    def preview_href(self) -> str | None:
        """The URL of its HTML preview; None when it was archived before HTML was kept."""
        return self._url("html") if self.entry.html_path else None


def file_ref(entry: ArchiveRecord) -> str:
    """How a URL names one archived PDF among a period's renders: 16 hex digits of the SHA-256
    of its location."""
    return hashlib.sha256(entry.path.encode("utf-8")).hexdigest()[:16]


def parse_period_key(key: str) -> Period:
    """``2026-11-09_2026-11-15`` as a period; NotFound for anything else."""
    match = _PERIOD_KEY.match(key)
    if not match:
        raise NotFound(key)
    try:
        return Period(date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2)))
    except ValueError:
        raise NotFound(key) from None


class Scoped:
    """The config, the ledger and the archive as one principal may see them."""

    def __init__(
        self, config: Config, ledger: Any, principal: Principal, *,
        clock: Callable[[], datetime], paused: Callable[[], set[str]] | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.principal = principal
        self._clock = clock
        self._paused = paused or set
        self._archive: Archive | None = None

    @property
    def store(self) -> Archive:
        """The archive (opened on first use: an S3 store checks its bucket then)."""
        if self._archive is None:
            self._archive = open_archive(self.config.archive)
        return self._archive

    # -- reports ---------------------------------------------------------------------------

    def reports(self) -> list[ReportRow]:
        """Every configured report this principal may see, with its schedule and last run."""
        from reports.schedule.joblist import list_jobs

        visible = [r for r in self.config.reports if self.principal.may_see(r.org)]
        scoped = self.config.model_copy(update={"reports": visible})
        paused = self._paused()
        by_name = {r.name: r for r in visible}
        last: dict[str, RunRecord | None] = {}

        def last_run(name: str) -> RunRecord | None:
            last[name] = self.ledger.last_run(name)
            return last[name]

        jobs = list_jobs(scoped, clock=self._clock, last_run=last_run, paused=paused)
        return [
            ReportRow(by_name[job.report], job.next_local, job.last_state, job.last_period,
                      job.last_error, job.paused, last.get(job.report))
            for job in jobs
        ]

    def report(self, name: str) -> ReportConfig:
        """A configured report this principal may see."""
        for report in self.config.reports:
            if report.name == name and self.principal.may_see(report.org):
                return report
        raise NotFound(name)

    def paused(self, name: str) -> bool:
        """Whether the report's schedule is paused."""
        return name in self._paused()

    # -- runs ------------------------------------------------------------------------------

    def runs_of(self, name: str, limit: int = 30) -> list[RunRecord]:
        """The latest runs of a report, newest first (only its visible orgs' runs)."""
        return [r for r in self.ledger.runs(name, limit=limit) if self.principal.may_see(r.org)]

    def run(self, run_id: int) -> RunRecord:
        """A run this principal may see."""
        run: RunRecord | None = self.ledger.run(run_id)
        if run is None or not self.principal.may_see(run.org):
            raise NotFound(str(run_id))
        return run

    @staticmethod
    def gate_reason(run: RunRecord) -> str | None:
        """The freshness gate's verdict on the run, as one sentence (None if not judged)."""
        if not run.gate:
            return None
        import json

        from reports.report.freshness import Verdict

        try:
            return Verdict.from_json(json.loads(run.gate)).reason()
        except (ValueError, KeyError, TypeError):
            return "(unreadable verdict)"

    def events(self, run: RunRecord) -> list[RunEvent]:
        """The run's transitions, oldest first."""
        return list(self.ledger.events(run.id))

    def deliveries(self, run: RunRecord) -> list[DeliveryRecord]:
        """The deliveries of the run's report and period (whichever run last touched them)."""
        return list(self.ledger.deliveries(run.report, period=run.period))

    # -- archive ---------------------------------------------------------------------------

    def archive(self, name: str) -> list[ArchiveRow]:
        """The archived PDFs of a visible report: newest period first; in a period the final
        edition, then the provisional one, each current PDF before the earlier renders kept."""
        report = self.report(name)
        entries = [e for e in self.ledger.archive_entries(name) if e.org == report.org]
        entries.sort(key=lambda e: e.created_at, reverse=True)
        entries.sort(key=lambda e: (-e.period_end.toordinal(), -e.period_start.toordinal(),
                                    e.edition != FINAL, not e.current))
        return [ArchiveRow(e, archived_pages(e.sha256, self._reader(e))) for e in entries]

    def _reader(self, entry: ArchiveRecord) -> Callable[[], bytes]:
        return lambda: self.store.read(entry)

    def archive_entry(
        self, name: str, period_key: str, edition: str = FINAL, ref: str | None = None,
    ) -> ArchiveRecord:
        """One archived PDF's index entry (the period's current one, or the one ``ref`` names
        (``file_ref``), history included); NotFound unless this principal may see it."""
        report = self.report(name)
        if edition not in (FINAL, PROVISIONAL) or (ref is not None and not _REF.match(ref)):
            raise NotFound(edition)
        period = parse_period_key(period_key)
        entry: ArchiveRecord | None
        if ref is None:
            entry = self.ledger.archive_entry(name, period, edition)
        else:
            entry = next((e for e in self.ledger.archive_files(name, period, edition)
                          if file_ref(e) == ref), None)
        if entry is None or entry.org != report.org:
            raise NotFound(period_key)
        return entry

    def archive_file(
        self, name: str, period_key: str, edition: str = FINAL, ref: str | None = None,
    ) -> tuple[ArchiveRecord, bytes]:
        """The index entry and the bytes of one archived PDF; NotFound unless safe to serve."""
        entry = self.archive_entry(name, period_key, edition, ref)
        return entry, self._read(lambda: self.store.read(entry), period_key)

    def archive_html(
        self, name: str, period_key: str, edition: str = FINAL, ref: str | None = None,
    ) -> tuple[ArchiveRecord, bytes]:
        """The index entry and the HTML kept beside one archived PDF, checked against its
        recorded SHA-256 (ArchiveChangedError if it differs); NotFound if there is none."""
        entry = self.archive_entry(name, period_key, edition, ref)
        data = self._read(lambda: self.store.read_html(entry), period_key)
        if data is None:  # archived before the HTML was kept beside the PDF
            raise NotFound(period_key)
        return entry, data

    @staticmethod
    def _read(read: Callable[[], _T], what: str) -> _T:
        try:
            return read()
        except (ArchiveAccessError, ArchiveChangedError):
            raise
        except ArchiveError:  # missing, or a location outside the archive
            raise NotFound(what) from None

    def run_of(self, entry: ArchiveRecord) -> int | None:
        """The run that archived ``entry`` (for one archived before runs were recorded with
        it: the latest run of its period and edition), or None."""
        if entry.run_id is not None:
            return entry.run_id
        for run in self.runs_of(entry.report, limit=100):
            if ((run.period_start, run.period_end) == (entry.period_start, entry.period_end)
                    and (run.edition or FINAL) == entry.edition):
                return run.id
        return None

    def verify(self) -> tuple[VerifyResult, int]:
        """Re-hash every archived file this principal may see; returns the result and count."""
        entries = [
            e for e in self.ledger.archive_entries() if self.principal.may_see(e.org)
        ]
        return self.store.verify(entries), len(entries)
