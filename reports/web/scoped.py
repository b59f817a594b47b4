"""What a page may show: read-only lookups in the config, the ledger and the archive, scoped.

Every lookup goes through the principal's org scope: a report, run or archived PDF of an org the
principal may not see is ``NotFound`` (a 404, the same answer as for one that does not exist),
so guessing URLs reveals nothing. Archived files are found through the archive index only and
read through the archive store (folder or S3); a location the index lists outside the archive
(another folder, bucket or prefix) is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from reports.config import Config, ReportConfig
from reports.delivery.archive import Archive, VerifyResult, open_archive
from reports.errors import ArchiveAccessError, ArchiveError, ArchivePathError
from reports.report.periods import Period
from reports.state.archive_index import FINAL, ArchiveRecord
from reports.state.deliveries import DeliveryRecord
from reports.state.runs import PROVISIONAL, RunEvent, RunRecord
from reports.web.auth import Principal
from reports.web.pdfinfo import archived_pages

_PERIOD_KEY = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})$")


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

    @property
    def href(self) -> str:
        """Its download URL (the edition is a path segment for a provisional PDF)."""
        tail = "" if self.entry.edition == FINAL else f"/{self.entry.edition}"
        return f"/reports/{self.entry.report}/pdf/{self.key}{tail}"


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

        jobs = list_jobs(scoped, clock=self._clock, last_run=last_run)
        return [
            ReportRow(by_name[job.report], job.next_local, job.last_state, job.last_period,
                      job.last_error, job.report in paused, last.get(job.report))
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
        """The archived PDFs of a visible report, newest period first."""
        report = self.report(name)
        entries = [e for e in self.ledger.archive_entries(name) if e.org == report.org]
        return [ArchiveRow(e, archived_pages(e.sha256, self._reader(e))) for e in reversed(entries)]

    def _reader(self, entry: ArchiveRecord) -> Callable[[], bytes]:
        return lambda: self.store.read(entry)

    def archive_file(
        self, name: str, period_key: str, edition: str = FINAL,
    ) -> tuple[ArchiveRecord, bytes]:
        """The index entry and the bytes of one archived PDF; NotFound unless safe to serve."""
        report = self.report(name)
        if edition not in (FINAL, PROVISIONAL):
            raise NotFound(edition)
        entry = self.ledger.archive_entry(name, parse_period_key(period_key), edition)
        if entry is None or entry.org != report.org:
            raise NotFound(period_key)
        try:
            return entry, self.store.read(entry)
        except ArchivePathError:
            raise NotFound(period_key) from None
        except ArchiveAccessError:
            raise
        except ArchiveError:
            raise NotFound(period_key) from None

    def verify(self) -> tuple[VerifyResult, int]:
        """Re-hash every archived file this principal may see; returns the result and count."""
        entries = [
            e for e in self.ledger.archive_entries() if self.principal.may_see(e.org)
        ]
        return self.store.verify(entries), len(entries)
