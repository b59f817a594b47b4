"""The page count of an archived PDF, read from the file itself (the archive index has none).

WeasyPrint writes the page tree inside compressed object streams, so the ``/Type /Pages``
dictionary is looked for in the file and in every object stream; the root of the tree has the
largest ``/Count``. Counts are cached by SHA-256 (an archived file never changes under its hash).
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable

from reports.errors import ArchiveError

_STREAM = re.compile(rb"stream\r?\n")
_PAGES = re.compile(rb"/Type\s*/Pages\b")
_COUNT = re.compile(rb"/Count\s+(\d+)")
_WINDOW = 400
_cache: dict[str, int | None] = {}
_lock = threading.Lock()


def _counts(blob: bytes) -> list[int]:
    found = []
    for match in _PAGES.finditer(blob):
        lo = max(0, blob.rfind(b"<<", 0, match.start()))
        hi = blob.find(b">>", match.end())
        window = blob[lo: hi if hi != -1 else match.end() + _WINDOW]
        found += [int(m.group(1)) for m in _COUNT.finditer(window)]
    return found


def page_count(data: bytes) -> int | None:
    """The number of pages of a PDF, or None when the page tree cannot be found."""
    counts = _counts(data)
    for match in _STREAM.finditer(data):
        head = data[max(0, match.start() - _WINDOW):match.start()]
        if b"/ObjStm" not in head[head.rfind(b"obj"):]:
            continue  # only object streams hold dictionaries (not fonts, images, pages)
        inflater = zlib.decompressobj()
        try:
            chunk = inflater.decompress(data[match.end():match.end() + (8 << 20)], 4 << 20)
        except zlib.error:
            continue
        if b"/Pages" in chunk:
            counts += _counts(chunk)
    return max(counts) if counts else None


def archived_pages(sha256: str, read: Callable[[], bytes]) -> int | None:
    """The page count of an archived PDF (cached by its hash; ``read`` fetches its bytes from
    the archive store); None if unreadable."""
    with _lock:
        if sha256 in _cache:
            return _cache[sha256]
    try:
        count = page_count(read())
    except (OSError, ArchiveError):
        return None
    with _lock:
        _cache[sha256] = count
    return count
