"""The hash of the collected data: equal hashes mean the same report (the render key's input).

The hash is SHA-256 of the data as compact JSON with sorted keys: every dataclass as the
dict ``dataclasses.asdict`` gives (without ``ReportData``'s ``requests`` and ``extra``, which
say how the data was fetched, not what it is), tuples as lists, dates and anything else JSON has
no type for as ``str()``. The dataclasses are handed to the JSON encoder as they are and turned
into dicts when it meets them: ``asdict`` first built a deep copy of the whole data (~5,000
objects for a demo org: 15-25 ms of CPU per report), which the encoder then walked again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from functools import cache
from typing import Any

from reports.report.model import ReportData

_THE_DATA = tuple(f.name for f in fields(ReportData) if f.name not in ("requests", "extra"))


def data_hash(data: ReportData) -> str:
    """A stable hash of the collected data: equal hashes mean the same report."""
    payload = {name: getattr(data, name) for name in _THE_DATA}
    blob = json.dumps(payload, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """What JSON has no type for: a dataclass as its fields' dict, anything else as ``str``."""
    if is_dataclass(value) and not isinstance(value, type):
        return {name: getattr(value, name) for name in _names(type(value))}
    return str(value)


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))

