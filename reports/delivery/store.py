"""Where archived PDFs (and their HTML) are kept: the archive-store protocol and the local
folder store.

A store holds objects under keys like ``<org>/<report>/<start>_<end>.pdf`` and answers with a
*location* (what the archive index records: a file path, or an ``s3://`` URL). Everything that
reads or writes the archive (the run, ``archive list|verify|prune``, the web UI's download) goes
through this protocol, so the folder store and the S3 store (``reports.delivery.s3store``) work
everywhere.

- ``FolderStore`` (``[archive] dir``): files written atomically (temporary file, fsync, rename,
  fsync of the folder); rewriting a key replaces the file whole. Every location is checked to lie
  inside the root (a symlinked folder pointing elsewhere is refused).
- A *write-once* store (S3 with ``If-None-Match: *``) never replaces an object: the archive puts
  the PDF's SHA-256 into its key, so a regenerated period gets a new object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reports.atomic import write_atomic
from reports.errors import ArchiveError, ArchivePathError

if TYPE_CHECKING:
    from reports.config.archive import ArchiveConfig


@dataclass(frozen=True)
class Stat:
    """What a store knows of one object without the caller reading it: SHA-256 and size."""

    sha256: str
    size: int


class ArchiveStore(Protocol):
    """An archive store: write-once or replacing, local or remote."""

    write_once: bool
    """True when an object, once written, is never replaced (keys then carry the hash)."""

    def describe(self) -> str:
        """Where the store is, for messages (a folder, or ``s3://bucket/prefix at endpoint``)."""
        ...

    def check(self) -> None:
        """Fail now (one line) if the store cannot be used: a missing bucket, bad credentials."""
        ...

    def put(self, key: str, data: bytes, *, sha256: str, meta: Mapping[str, str],
            content_type: str = "application/pdf") -> str:
        """Store ``data`` under ``key`` (``sha256`` is its hash); returns its location."""
        ...

    def get(self, location: str) -> bytes:
        """The bytes at ``location`` (ArchiveError if missing or unreadable)."""
        ...

    def stat(self, location: str) -> Stat | None:
        """The SHA-256 and size of the object at ``location``; None if it is missing."""
        ...

    def delete(self, location: str) -> None:
        """Delete the object at ``location`` (nothing if already gone)."""
        ...

    def locations(self, key_prefix: str) -> list[str]:
        """The locations of every object whose key starts with ``key_prefix``."""
        ...


def open_store(config: ArchiveConfig) -> ArchiveStore:
    """The store ``[archive]`` names: S3 when ``url`` is set, else the folder ``dir``."""
    if config.url:
        from reports.delivery.s3store import S3Store

        return S3Store.from_config(config)
    return FolderStore(config.dir)


class FolderStore:
    """The archive folder on a local (or mounted) file system."""

    write_once = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FolderStore({str(self.root)!r})"

    def describe(self) -> str:
        return f"the archive folder {self.root}"

    def check(self) -> None:
        """Nothing to check: a missing folder is created on the first write."""

    def path(self, key: str) -> Path:
        """The file of ``key``; refuses one that resolves outside the root."""
        return self._inside(self.root / key)

    def _inside(self, path: Path) -> Path:
        root = self.root.resolve()
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            # A symlinked org or report folder pointing elsewhere, or an index row gone astray.
            raise ArchivePathError(
                f"{path} resolves to {resolved}, outside the archive folder {root}",
                path=str(path),
            )
        return path

    def put(self, key: str, data: bytes, *, sha256: str, meta: Mapping[str, str],
            content_type: str = "application/pdf") -> str:
        path = self.path(key)
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise ArchiveError(
                f"cannot write {path}: {exc.strerror or exc} (is the disk full or the folder "
                "read-only?)", path=str(path),
            ) from exc
        return str(path)

    def get(self, location: str) -> bytes:
        path = self._inside(Path(location))
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ArchiveError(f"cannot read {location}: {exc.strerror or exc}",
                               path=location) from exc

    def stat(self, location: str) -> Stat | None:
        path = Path(location)
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ArchiveError(f"cannot read {location}: {exc.strerror or exc}",
                               path=location) from exc
        return Stat(digest.hexdigest(), size)

    def delete(self, location: str) -> None:
        path = Path(location)
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

    def locations(self, key_prefix: str) -> list[str]:
        folder, _, stem = key_prefix.rpartition("/")
        base = self.path(folder) if folder else self.root
        if not base.is_dir():
            return []
        return sorted(str(p) for p in base.iterdir() if p.is_file() and p.name.startswith(stem))
