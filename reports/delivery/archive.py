"""The archive: every generated PDF, kept at ``<root>/<org>/<report>/<start>_<end>.pdf``.

A provisional PDF (made despite the freshness gate) is kept beside the final one, as
``<start>_<end>.provisional.pdf``. A period re-rendered with another render key (the report's
config, the templates or the data changed) gets a further file, ``<start>_<end>.<key12>.pdf``
(``<start>_<end>.provisional.<key12>.pdf``); the earlier one stays as history, so the archive
still holds the PDF an earlier recipient got.

Files are written atomically (a temporary file in the same folder, fsync, rename, fsync of the
folder), so a crash or a full disk never leaves a half-written PDF under the final name. Org and
report names are checked before they become path components: nothing can escape the root.
The ledger's ``archive_entries`` table is the index; ``verify`` re-hashes the files it lists and
``prune`` deletes files and entries whose period ended longer ago than a duration.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Protocol

from reports.atomic import write_atomic
from reports.config import Config
from reports.errors import ArchiveError, ArchivePathError, UsageError
from reports.report.periods import Clock, Period
from reports.state.archive_index import ArchiveRecord

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DURATION_RE = re.compile(r"^\s*(\d{1,5})\s*([dw])\s*$")


@dataclass(frozen=True)
class ArchivedFile:
    """A PDF written to the archive."""

    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class VerifyResult:
    """What ``Archive.verify`` found."""

    ok: tuple[ArchiveRecord, ...]
    missing: tuple[ArchiveRecord, ...]
    changed: tuple[ArchiveRecord, ...]

    @property
    def clean(self) -> bool:
        """Every listed file is present with the recorded hash."""
        return not self.missing and not self.changed

    def lines(self) -> list[str]:
        """One line per problem, for the CLI."""
        return [f"missing: {e.path}" for e in self.missing] + [
            f"changed: {e.path} (sha256 differs from the one recorded)" for e in self.changed
        ]


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


class Archive:
    """The archive folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r})"

    def path_for(self, org: str, report: str, period: Period, edition: str = "final", *,
                 variant: str | None = None) -> Path:
        """Where the PDF of ``report`` for ``period`` lives; refuses names that escape root.

        ``variant`` (a render key's first characters) names a further PDF of the same period.
        """
        check_name(org, what="org")
        check_name(report, what="report")
        if variant is not None and not re.fullmatch(r"[0-9a-f]{1,64}", variant):
            raise ArchivePathError(f"the archive variant {variant!r} is not a hex key")
        suffix = "" if edition == "final" else f".{edition}"
        suffix += f".{variant}" if variant else ""
        path = self.root / org / report / f"{period.key}{suffix}.pdf"
        root = self.root.resolve()
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            # A symlinked org or report folder pointing elsewhere.
            raise ArchivePathError(
                f"{path} resolves to {resolved}, outside the archive folder {root}",
                path=str(path),
            )
        return path

    def write(self, org: str, report: str, period: Period, pdf: bytes, edition: str = "final",
              *, variant: str | None = None) -> ArchivedFile:
        """Write the PDF atomically; returns its path, SHA-256 and size."""
        path = self.path_for(org, report, period, edition, variant=variant)
        _atomic_write(path, pdf)
        return ArchivedFile(path=path, sha256=hashlib.sha256(pdf).hexdigest(), size=len(pdf))

    def read(self, entry: ArchiveRecord) -> bytes:
        """The bytes of an archived PDF."""
        try:
            return Path(entry.path).read_bytes()
        except OSError as exc:
            raise ArchiveError(f"cannot read {entry.path}: {exc.strerror or exc}",
                               path=entry.path) from exc

    def verify(self, entries: Iterable[ArchiveRecord]) -> VerifyResult:
        """Re-hash every listed file; report the missing and the changed ones."""
        ok: list[ArchiveRecord] = []
        missing: list[ArchiveRecord] = []
        changed: list[ArchiveRecord] = []
        for entry in entries:
            try:
                digest, size = _hash_file(Path(entry.path))
            except FileNotFoundError:
                missing.append(entry)
                continue
            except OSError as exc:
                raise ArchiveError(f"cannot read {entry.path}: {exc.strerror or exc}",
                                   path=entry.path) from exc
            (ok if (digest, size) == (entry.sha256, entry.size) else changed).append(entry)
        return VerifyResult(ok=tuple(ok), missing=tuple(missing), changed=tuple(changed))

    def prune(
        self, index: ArchiveIndex, older_than: timedelta, *, today: date, dry_run: bool = False,
        confirm_all: bool = False,
    ) -> list[ArchiveRecord]:
        """Delete files and entries whose period ended more than ``older_than`` before today.

        ``dry_run`` only returns what would go. Without ``confirm_all``, an age of zero or a
        prune that would delete every archived file is refused (UsageError, nothing deleted).
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
            path = Path(entry.path)
            if not path.resolve().is_relative_to(self.root.resolve()):
                raise ArchivePathError(
                    f"the index lists {path}, outside the archive folder {self.root}; "
                    "refusing to delete it", path=str(path),
                )
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise ArchiveError(f"cannot delete {path}: {exc.strerror or exc}",
                                   path=str(path)) from exc
            index.remove_archive_entry(entry.report, Period(entry.period_start, entry.period_end),
                                       entry.edition, path=entry.path)
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
        return Archive(config.archive.dir).prune(
            ledger, parse_duration(older_than), today=clock().astimezone(UTC).date(),
            dry_run=dry_run, confirm_all=confirm_all,
        )


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise ArchiveError(
            f"cannot write {path}: {exc.strerror or exc} (is the disk full or the folder "
            "read-only?)", path=str(path),
        ) from exc
