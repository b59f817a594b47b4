"""Compiled report templates, kept in memory and in the user's cache folder.

Decisions:

- Compiling the report's dozen templates is most of a cold HTML stage (~0.1 s of CPU in a
  fresh process, on the one-shot's critical path; ~12 ms once compiled). Jinja2 can load a
  template's compiled code instead (``jinja2.BytecodeCache``): kept in memory for the process's
  later renders (each render makes a fresh environment in its language) and on disk, so the
  next process loads it with ``marshal`` instead of compiling.
- Jinja2 reuses compiled code only while the template's source has the same checksum (an
  edited template is compiled anew) and for the same Jinja2 and Python (its bytecode magic).
  The code also depends on the environment's settings (``SETTINGS``, new-style gettext), which
  Jinja2 does not check: the folder's name is a hash of them, of Jinja2's version and of
  Python's, so another setting or version never reads this one's code.
- Only the built-in templates are written there (``templates/`` of the installed package: one
  file each, replaced when one changes); a user's ``[templates] dir`` is compiled in every
  process and kept in memory, so the folder does not grow with every folder a user tries.
- The folder is ``$XDG_CACHE_HOME/ibl-reports/templates-<hash>`` (``~/.cache`` without it; the
  render workers point ``XDG_CACHE_HOME`` at a private folder when ``$HOME`` is not writable),
  made readable by its owner only, its files checked before they are loaded (``cachefiles``):
  loading code others could write would run their code. A folder that is not this user's own,
  not private, or not writable, and any error reading or writing a file, leaves the templates
  compiled in memory as before; a damaged file is compiled anew (``cachefiles`` checks a digest,
  Jinja2 the magic and checksum; an error reading it resets the bucket). Files are written whole
  (not durable: losing one costs a compile).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from reports.report import cachefiles

SETTINGS: dict[str, Any] = {
    "autoescape": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "auto_reload": False,
    "extensions": ["jinja2.ext.i18n"],
}
"""The report environment's settings, besides its loader, undefined and this cache."""

NEWSTYLE_GETTEXT = True
"""``install_gettext_translations(..., newstyle=...)``: the i18n extension compiles ``trans``
blocks differently with it."""


def folder_name(settings: dict[str, Any] | None = None,
                newstyle: bool = NEWSTYLE_GETTEXT) -> str:
    """``templates-<hash>`` of what the compiled code depends on besides the source (the
    environment's ``settings``, ``SETTINGS`` by default)."""
    import jinja2
    from jinja2.bccache import bc_magic

    held = SETTINGS if settings is None else settings
    return cachefiles.named("templates", sorted(held.items()), newstyle, jinja2.__version__,
                            sys.version, bc_magic)


@functools.cache
def bytecode_cache() -> Any:
    """The process's cache of compiled templates (one for every report environment)."""
    from reports.report import BUILTIN_TEMPLATES

    return _cache_class()(cachefiles.cache_folder(folder_name()), BUILTIN_TEMPLATES)


@functools.cache
def _cache_class() -> type:
    import jinja2

    class KeptBytecode(jinja2.BytecodeCache):
        """Compiled templates in memory, and those under ``root`` also in ``folder`` (None:
        in memory only)."""

        def __init__(self, folder: Path | None, root: Path | None = None) -> None:
            self.folder = folder
            self.root = root
            self.code: dict[str, bytes] = {}
            self.on_disk: set[str] = set()

        def get_cache_key(self, name: str, filename: str | None = None) -> str:
            key: str = super().get_cache_key(name, filename)
            if self.root is not None and filename is not None and Path(filename).is_relative_to(
                    self.root):
                self.on_disk.add(key)
            return key

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            code = self.code.get(bucket.key)
            if code is None and self.folder is not None and bucket.key in self.on_disk:
                code = cachefiles.read(self.folder / f"{bucket.key}.cache")
            if code is None:
                return
            try:
                bucket.bytecode_from_string(code)
            except Exception:  # a damaged file (Jinja2 unpickles its checksum unguarded)
                bucket.reset()
            if bucket.code is not None:  # not reset: the right magic and checksum
                self.code[bucket.key] = code

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            code = self.code[bucket.key] = bucket.bytecode_to_string()
            if self.folder is not None and bucket.key in self.on_disk:
                cachefiles.write(self.folder / f"{bucket.key}.cache", code)

    return KeptBytecode
