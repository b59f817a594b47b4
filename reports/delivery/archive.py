"""The archive: every generated PDF, kept under the key ``<org>/<report>/<start>_<end>.pdf``.

A provisional PDF (made despite the freshness gate) is kept beside the final one, as
``<start>_<end>.provisional.pdf``. On a write-once store (S3) the key also carries the first 16
hex digits of the PDF's SHA-256 (``<start>_<end>.<sha16>.pdf``): a regenerated period gets a new
object, the one already mailed is never replaced. On a folder, a period re-rendered with another
render key (the report's config, the templates or the data changed) gets a further file,
``<start>_<end>.<key12>.pdf``; the earlier one stays as history either way, so the archive
still holds the PDF an earlier recipient got.

Beside each PDF the archive keeps the report's HTML, the very document the PDF was made from
(its charts and logo inlined as ``data:`` URIs, so it needs nothing else): the same key ending
``.html`` (on a write-once store with the HTML's own hash prefix). The web UI serves it as a
preview; ``verify`` checks it and ``prune`` deletes it with its PDF.

The bytes live in an archive store (``reports.delivery.store``: a local folder, written
atomically, or an S3 bucket, write-once). Org and report names are checked before they become
key components: nothing can escape the root. The ledger's ``archive_entries`` table is the
index; ``verify`` checks the objects it lists (SHA-256 and size) and ``prune`` deletes objects
and entries whose period ended longer ago than a duration.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reports.config import Config
from reports.delivery.store import ArchiveStore, FolderStore, open_store
from reports.errors import ArchiveChangedError, ArchivePathError, UsageError
from reports.report.periods import Clock, Period
from reports.state.archive_index import ArchiveRecord

if TYPE_CHECKING:
    from reports.config.archive import ArchiveConfig

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DURATION_RE = re.compile(r"^\s*(\d{1,5})\s*([dw])\s*$")


@dataclass(frozen=True)
class ArchivedFile:
    """A PDF written to the archive (and the report's HTML beside it, if given)."""

    location: str
    """A file path, or an ``s3://`` URL: what the archive index records."""
    sha256: str
    size: int
    html: tuple[str, str, int] | None = None
    """The HTML's location, SHA-256 and size (what the archive index records of it)."""

    @property
    def path(self) -> Path:
        """The location as a path (a folder store's)."""
        return Path(self.location)


@dataclass(frozen=True)
class VerifyResult:
    """What ``Archive.verify`` found."""

    ok: tuple[ArchiveRecord, ...]
    missing: tuple[ArchiveRecord, ...]
    changed: tuple[ArchiveRecord, ...]
    html_missing: tuple[ArchiveRecord, ...] = ()
    """Entries whose PDF is intact but whose recorded HTML is gone."""
    html_changed: tuple[ArchiveRecord, ...] = ()
    html_checked: int = 0

    @property
    def clean(self) -> bool:
        """Every listed file (PDF and HTML) is present with the recorded hash."""
        return not (self.missing or self.changed or self.html_missing or self.html_changed)

    def lines(self) -> list[str]:
        """One line per problem, for the CLI."""
        changed = "(sha256 differs from the one recorded)"
        return ([f"missing: {e.path}" for e in self.missing]
                + [f"changed: {e.path} {changed}" for e in self.changed]
                + [f"missing: {e.html_path}" for e in self.html_missing]
                + [f"changed: {e.html_path} {changed}" for e in self.html_changed])


class ArchiveIndex(Protocol):
    """The part of the ledger ``prune`` needs."""

    def archive_entries(self, report: str | None = None) -> list[ArchiveRecord]: ...

    def remove_archive_entry(self, report: str, period: Period, edition: str = ..., *,
                             path: str | None = ...) -> bool: ...


def check_name(value: str, *, what: str) -> str:
    """Refuse a name that is not one safe path component (``..``, separators, NUL, empty)."""
    if not value:
        raise ArchivePathError(f"the {what} name is empty; it cannot name an archive folder")
    if "\x00" in value:
        raise ArchivePathError(f"the {what} name {value!r} contains a NUL byte")
    if "/" in value or "\\" in value or os.path.isabs(value):
        raise ArchivePathError(
            f"the {what} name {value!r} contains a path separator; it would escape the archive "
            "folder"
        )
    if value in (".", ".."):
        raise ArchivePathError(f"the {what} name {value!r} would escape the archive folder")
    if not _NAME_RE.match(value):
        raise ArchivePathError(
            f"the {what} name {value!r} must be 1-100 letters, digits, '.', '_' or '-' and not "
            "start with '.' or '-'"
        )
    return value


def parse_duration(text: str) -> timedelta:
    """``"365d"`` or ``"12w"`` (days or weeks; months are ambiguous, so not accepted)."""
    match = _DURATION_RE.match(text)
    if not match:
        raise UsageError(
            f"{text!r} is not a duration; write a number of days or weeks, e.g. 365d or 52w"
        )
    count, unit = int(match.group(1)), match.group(2)
    return timedelta(days=count) if unit == "d" else timedelta(weeks=count)


def open_archive(config: ArchiveConfig) -> Archive:
    """The archive ``[archive]`` names (a folder, or an S3 bucket when ``url`` is set)."""
    return Archive(open_store(config))


class Archive:
    """The archive: names checked, keys made, bytes kept in a store."""

    def __init__(self, store: ArchiveStore | str | os.PathLike[str]) -> None:
        self.store: ArchiveStore = (
            FolderStore(Path(store)) if isinstance(store, str | os.PathLike) else store
        )

    def __repr__(self) -> str:
        return f"Archive({self.store!r})"

    @property
    def root(self) -> Path:
        """The folder of a folder store."""
        if not isinstance(self.store, FolderStore):
            raise TypeError(f"{self.store.describe()} is not a folder")
        return self.store.root

    @staticmethod
    def key_for(org: str, report: str, period: Period, edition: str = "final",
                sha256: str | None = None, variant: str | None = None) -> str:
        """The object key of a PDF (with its hash prefix on a write-once store; ``variant``, a
        render key's first characters, names a further PDF of the same period)."""
        check_name(org, what="org")
        check_name(report, what="report")
        if variant is not None and not re.fullmatch(r"[0-9a-f]{1,64}", variant):
            raise ArchivePathError(f"the archive variant {variant!r} is not a hex key")
        suffix = "" if edition == "final" else f".{edition}"
        if variant and sha256 is None:
            suffix += f".{variant}"
        if sha256 is not None:
            suffix += f".{sha256[:16]}"
        return f"{org}/{report}/{period.key}{suffix}.pdf"

    @staticmethod
    def html_key(pdf_key: str) -> str:
        """The key of the HTML kept beside the PDF at ``pdf_key`` (made with the HTML's hash on
        a write-once store)."""
        return pdf_key.removesuffix(".pdf") + ".html"

    def path_for(self, org: str, report: str, period: Period, edition: str = "final") -> Path:
        """Where a folder archive keeps the PDF; refuses names that escape the root."""
        if not isinstance(self.store, FolderStore):
            raise TypeError(f"{self.store.describe()} is not a folder")
        return self.store.path(self.key_for(org, report, period, edition))

    def write(self, org: str, report: str, period: Period, pdf: bytes, edition: str = "final",
              *, variant: str | None = None, html: bytes | None = None) -> ArchivedFile:
        """Store the PDF (and the report's HTML beside it); returns location, SHA-256, size.

        The HTML goes first: a crash between the two leaves an HTML file no index row names
        (pruned with its period), never an indexed PDF whose preview was lost.
        """
        meta = {"report": report, "org": org, "period": period.key, "edition": edition}
        kept = None
        if html is not None:
            html_digest = hashlib.sha256(html).hexdigest()
            html_key = self.html_key(self.key_for(
                org, report, period, edition,
                html_digest if self.store.write_once else None, variant))
            html_location = self.store.put(html_key, html, sha256=html_digest, meta=meta,
                                           content_type="text/html; charset=utf-8")
            kept = (html_location, html_digest, len(html))
        digest = hashlib.sha256(pdf).hexdigest()
        key = self.key_for(org, report, period, edition,
                           digest if self.store.write_once else None, variant)
        location = self.store.put(key, pdf, sha256=digest, meta=meta)
        return ArchivedFile(location=location, sha256=digest, size=len(pdf), html=kept)

    def read(self, entry: ArchiveRecord) -> bytes:
        """The bytes of an archived PDF."""
        return self.store.get(entry.path)

    def read_html(self, entry: ArchiveRecord) -> bytes | None:
        """The archived HTML of an entry, checked against its recorded SHA-256 (None: the
        entry has none, archived before HTML was kept)."""
        if entry.html_path is None:
            return None
        data = self.store.get(entry.html_path)
        if hashlib.sha256(data).hexdigest() != entry.html_sha256:
            raise ArchiveChangedError(
                f"{entry.html_path} differs from the HTML archived (its sha256 is not the one "
                "recorded)", path=entry.html_path)
        return data

    def verify(self, entries: Iterable[ArchiveRecord]) -> VerifyResult:
        """Check every listed object's SHA-256 and size; report the missing and changed ones."""
        ok: list[ArchiveRecord] = []
        missing: list[ArchiveRecord] = []
        changed: list[ArchiveRecord] = []
        html_missing: list[ArchiveRecord] = []
        html_changed: list[ArchiveRecord] = []
        html_checked = 0
        for entry in entries:
            if entry.html_path is not None:
                html_checked += 1
                html = self.store.stat(entry.html_path)
                if html is None:
                    html_missing.append(entry)
                elif (html.sha256, html.size) != (entry.html_sha256, entry.html_size):
                    html_changed.append(entry)
            found = self.store.stat(entry.path)
            if found is None:
                missing.append(entry)
                continue
            (ok if (found.sha256, found.size) == (entry.sha256, entry.size) else changed
             ).append(entry)
        return VerifyResult(ok=tuple(ok), missing=tuple(missing), changed=tuple(changed),
                            html_missing=tuple(html_missing), html_changed=tuple(html_changed),
                            html_checked=html_checked)

    def prune(
        self, index: ArchiveIndex, older_than: timedelta, *, today: date, dry_run: bool = False,
        confirm_all: bool = False,
    ) -> list[ArchiveRecord]:
        """Delete objects (each PDF with its HTML) and entries whose period ended more than
        ``older_than`` before today.

        ``dry_run`` only returns what would go. Without ``confirm_all``, an age of zero or a
        prune that would delete every archived file is refused (UsageError, nothing deleted).
        On a write-once store the period's superseded objects (of regenerated PDFs) go too.
        """
        cutoff = today - older_than
        entries = index.archive_entries()
        doomed = [entry for entry in entries if entry.period_end < cutoff]
        if not dry_run and not confirm_all and doomed and (
            not older_than or len(doomed) == len(entries)
        ):
            raise UsageError(
                f"pruning what ended before {cutoff.isoformat()} would delete every archived "
                f"file ({len(doomed)}); see them with --dry-run, then add --yes to delete them"
            )
        if dry_run:
            return doomed
        removed: list[ArchiveRecord] = []
        for entry in doomed:
            period = Period(entry.period_start, entry.period_end)
            self.store.delete(entry.path)
            if entry.html_path is not None:
                self.store.delete(entry.html_path)
            if self.store.write_once:
                stem = self.key_for(entry.org, entry.report, period, entry.edition)
                for location in self.store.locations(stem.removesuffix("pdf")):
                    self.store.delete(location)
            index.remove_archive_entry(entry.report, period, entry.edition, path=entry.path)
            removed.append(entry)
        return removed


def prune_archive(
    config: Config, older_than: str, *, clock: Clock, dry_run: bool = False,
    confirm_all: bool = False,
) -> list[ArchiveRecord]:
    """``archive prune``: delete archived PDFs whose period ended more than ``older_than`` ago
    (the records; ``dry_run``: what would go). Deleting every file needs ``confirm_all``."""
    from reports.state.ledger import Ledger

    with Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s) as ledger:
        return open_archive(config.archive).prune(
            ledger, parse_duration(older_than), today=clock().astimezone(UTC).date(),
            dry_run=dry_run, confirm_all=confirm_all,
        )
