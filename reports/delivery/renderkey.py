"""The render key: one hash of everything that shapes a report's PDF.

A send reuses the archived PDF of a period only when its render key is the same, so a change of
any of these renders anew (the earlier PDF stays in the archive as history):

- the collected data (its hash);
- the report's config, except the keys that only decide when and to whom it is sent
  (recipients, schedule, catch-up), with the ``[privacy]`` defaults it falls back on and the
  bytes of its logo;
- a fingerprint of the pseudonym key (a one-way value: the key itself never leaves the process);
- every file of the templates in effect: the built-in folder and the ``[templates] dir`` folder;
- the package version.

The key says nothing about the data or the key: it is a SHA-256 over their hashes.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

from reports.config import ReportConfig
from reports.config.privacy import PrivacyConfig
from reports.errors import ArchiveError
from reports.report import BUILTIN_TEMPLATES

NOT_RENDERED = frozenset({"recipients", "schedule", "catch_up", "catch_up_max_periods"})
"""ReportConfig keys that do not shape the PDF; every other key (present or future) does."""


def package_version() -> str:
    """The installed ibl-reports version ("unknown" when run from an uninstalled tree)."""
    try:
        return metadata.version("ibl-reports")
    except metadata.PackageNotFoundError:
        return "unknown"


def tree_hash(folder: Path | None) -> str:
    """A hash of every file under ``folder`` (relative names and contents), or "" for none."""
    if folder is None:
        return ""
    digest = hashlib.sha256()
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        for file in files:
            digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    except OSError as exc:
        raise ArchiveError(f"cannot read the templates in {folder}: {exc.strerror or exc}",
                           path=str(folder)) from exc
    return digest.hexdigest()


def _file_hash(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"  # the render names the file; the key only has to differ


def render_key(
    *, data_hash: str, report: ReportConfig, privacy: PrivacyConfig,
    templates_dir: Path | None, key_fingerprint: str = "", version: str | None = None,
) -> str:
    """The SHA-256 render key of one report's PDF."""
    settings = report.model_dump(mode="json", exclude=set(NOT_RENDERED))
    parts = {
        "data": data_hash,
        "report": settings,
        "privacy": privacy.model_dump(mode="json"),
        "logo": _file_hash(report.logo),
        "pseudonym_key": key_fingerprint,
        "templates": tree_hash(BUILTIN_TEMPLATES),
        "override_templates": tree_hash(templates_dir),
        "version": package_version() if version is None else version,
    }
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
