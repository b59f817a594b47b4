"""Files of this user's private cache folder: compiled templates, WeasyPrint's parsed C
declarations and stylesheets (``compiled``, ``cdefcache``, ``sheetcache``).

Decisions:

- What is read from these files is code (Jinja2's compiled templates, pickles, marshalled
  selectors): a file someone else could write would run their code. So the folder
  ``$XDG_CACHE_HOME/ibl-reports/<name>`` (``~/.cache`` without it) is used only if both
  ``ibl-reports`` and ``<name>`` are directories, not symlinks, owned by this user, that nobody
  else can write (both are made mode 0700); a file is opened without following a symlink
  (``O_NOFOLLOW``) and read only if the open file is a regular file of this user's that nobody
  else can write.
- A file starts with the SHA-256 of the rest: one damaged on disk, or cut short, is not loaded
  (``read`` gives None) and the caller parses or compiles anew and writes it again.
- Files are written whole (``atomic.write_atomic``, not durable: no fsync): losing one costs a
  parse. A failure to write is not an error (the next process parses again).
- One folder per version of what the content depends on (``named``: a hash of it, with
  ``stamps`` for a library's files without importing it): an upgrade
  leaves the old folder beside the new one, and nothing deletes it (a few hundred kB each;
  deleting ``~/.cache/ibl-reports`` is always safe).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import stat
from pathlib import Path
from typing import Any

from reports.atomic import write_atomic

_DIGEST = 32
"""Bytes of SHA-256 at the head of every file."""


def named(kind: str, *depends_on: object) -> str:
    """A cache folder's name: ``<kind>-<hash>`` of what its content depends on besides its own
    key (versions, settings, ``stamps``), so another version never reads this one's files."""
    return f"{kind}-" + hashlib.sha256(repr(depends_on).encode()).hexdigest()[:16]


def stamps(package: str, files: tuple[str, ...]) -> list[str]:
    """Where ``package``'s ``files`` are, their sizes and times (without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return [f"{package}: none"]
    found = []
    for name in files:
        path = os.path.join(next(iter(spec.submodule_search_locations)), name)
        try:
            held = os.stat(path)
        except OSError:
            found.append(f"{path}: none")
            continue
        found.append(f"{path}:{held.st_size}:{held.st_mtime_ns}")
    return found


def _ours(info: os.stat_result, kind: int) -> bool:
    """Whether ``info`` is a ``kind`` (``stat.S_IFDIR``/``S_IFREG``) of this user's that nobody
    else can write."""
    return (stat.S_IFMT(info.st_mode) == kind and info.st_uid == os.getuid()
            and stat.S_IMODE(info.st_mode) & 0o022 == 0)


def cache_folder(name: str, environ: Any = None) -> Path | None:
    """This user's private cache folder ``name`` (see the module doc), made if missing; None if
    there is no home, or the folder or its parent is not this user's own and private."""
    env = os.environ if environ is None else environ
    home = env.get("XDG_CACHE_HOME") or (
        os.path.join(env["HOME"], ".cache") if env.get("HOME") else "")
    if not home:
        return None
    parent = Path(home) / "ibl-reports"
    folder = parent / name
    try:
        parent.mkdir(mode=stat.S_IRWXU, parents=True, exist_ok=True)
        folder.mkdir(mode=stat.S_IRWXU, exist_ok=True)
        private = all(_ours(path.lstat(), stat.S_IFDIR) for path in (parent, folder))
        held = folder.lstat()
    except OSError:
        return None
    if not private or stat.S_IMODE(held.st_mode) & 0o077 or not os.access(folder, os.W_OK):
        return None
    return folder


def read(path: Path) -> bytes | None:
    """The content of the cache file ``path``, or None: missing, a symlink, not this user's
    own, writable by others, or damaged (its digest does not match)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            if not _ours(os.fstat(fd), stat.S_IFREG):
                return None
            data = handle.read()
        except OSError:
            return None
    digest, content = data[:_DIGEST], data[_DIGEST:]
    return content if len(digest) == _DIGEST and hashlib.sha256(content).digest() == digest \
        else None


def write(path: Path, content: bytes) -> None:
    """Write ``content`` to the cache file ``path`` whole, with its digest (an error is
    dropped: the next process makes it again)."""
    with contextlib.suppress(OSError):
        write_atomic(path, hashlib.sha256(content).digest() + content, durable=False)
