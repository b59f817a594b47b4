"""Where matplotlib and fontconfig keep their caches when ``$HOME`` cannot hold them.

matplotlib (``MPLCONFIGDIR``) and fontconfig (``XDG_CACHE_HOME``) write their caches under
``$HOME``. When ``$HOME`` is not writable (a service account), ``prepare_environment`` points both
at one per-user folder in the temp dir, once, so fonts are not re-scanned on every run.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import MutableMapping
from pathlib import Path


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _private_cache_dir() -> Path:
    """A per-user folder in the temp dir, refused if someone else owns it or it is a symlink."""
    path = Path(tempfile.gettempdir()) / f"ibl-reports-cache-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="ibl-reports-cache-"))


def prepare_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Point MPLCONFIGDIR and XDG_CACHE_HOME at a private folder if ``$HOME`` is not writable.

    Variables that are already set are left alone, so calling this again is a no-op. Returns
    the variables it set.
    """
    env = os.environ if environ is None else environ
    home = env.get("HOME", "")
    cache_home = env.get("XDG_CACHE_HOME") or (f"{home}/.cache" if home else "")
    if home and _writable_dir(Path(cache_home)):
        return {}
    base = _private_cache_dir()
    changes: dict[str, str] = {}
    if not env.get("XDG_CACHE_HOME") or not _writable_dir(Path(env["XDG_CACHE_HOME"])):
        changes["XDG_CACHE_HOME"] = str(base)
    if not env.get("MPLCONFIGDIR"):
        changes["MPLCONFIGDIR"] = str(base / "matplotlib")
    env.update(changes)
    return changes
