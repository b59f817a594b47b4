"""The PDF's file identifier (``/ID``), added to the finished file instead of by pydyf.

Given ``pdf_identifier``, pydyf (WeasyPrint's PDF writer) computes the second half of the
``/ID`` as the MD5 of every object's serialised data, and serialises (and Flate-compresses, at
level 9) every object a second time to get it: ~25-40 ms of a ~550 ms PDF stage for the demo
report, measured alternately in one process. The file itself is already a hash's worth of
content, so ``with_file_id`` takes the PDF written without an ``/ID`` and puts
``/ID [(<first>) (<MD5 of that file>)]`` into its trailer, the dictionary of the final
cross-reference stream, exactly where pydyf puts it (after ``/Info``, before ``/Filter``).
No byte offset moves: the insertion is inside the last object, after its start, which is what
``startxref`` and the cross-reference entries point to, and the dictionary is not part of the
compressed stream. A file not laid out as pydyf writes it gives ``None``, and the caller asks
WeasyPrint for the identifier the slow way.
"""

from __future__ import annotations

import hashlib
import re

_STARTXREF = re.compile(rb"startxref\n(\d+)\n%%EOF\n?$")
_XREF_OBJECT = re.compile(  # up to where pydyf puts /ID: after /Info, before /Filter
    rb"\d+ 0 obj\n<</Type /XRef(?:(?!>>|/ID|<<|\nstream\n).)*?"
    rb"(?=/Filter /FlateDecode/Length \d+>>\nstream\n)",
    re.DOTALL,
)
_HEX = re.compile(rb"[0-9a-f]+")


def with_file_id(pdf: bytes, first: bytes) -> bytes | None:
    """``pdf`` with ``/ID [(first) (md5 of pdf)]`` in its trailer; ``None`` if not possible.

    ``first`` must be lowercase hex (what ``hashlib``'s ``hexdigest`` gives).
    """
    if not _HEX.fullmatch(first):
        raise ValueError("the file identifier must be lowercase hex")
    end = _STARTXREF.search(pdf, max(0, len(pdf) - 64))
    if end is None:
        return None
    found = _XREF_OBJECT.match(pdf, int(end.group(1)))
    if found is None:
        return None
    digest = hashlib.md5(pdf, usedforsecurity=False).hexdigest().encode()
    at = found.end()
    return pdf[:at] + b"/ID [(" + first + b") (" + digest + b")]" + pdf[at:]
