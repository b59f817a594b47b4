"""The regex cache of WeasyPrint's HTML tokenizer, keyed as it was meant to be.

tinyhtml5 (WeasyPrint's HTML parser) reads runs of text with ``HTMLInputStream.chars_until``,
which caches the regex for each set of stop characters in ``characters_until_regex``. In
tinyhtml5 2.1.0 the cache never hits: ``characters = cache[(characters, opposite)] = regex``
rebinds ``characters`` to the regex before the key is built, so every call joins its characters
into a pattern again and asks ``re`` for it (~11 ms of the ~27 ms a parse of the report takes).

``install()`` replaces that dict with a ``TokenRegexes``: a dict that, asked for a key it does
not hold, builds the very regex tinyhtml5 builds and keeps it under the right key, so the
function's first lookup succeeds from the second call on. A test pins the coupling: the same
patterns as tinyhtml5's own, the same parse, and no entry made by tinyhtml5's broken path.
"""

from __future__ import annotations

import re
from typing import Any


class TokenRegexes(dict[tuple[Any, bool], re.Pattern[str]]):
    """``characters_until_regex`` that fills itself on a miss."""

    def __missing__(self, key: tuple[Any, bool]) -> re.Pattern[str]:
        characters, opposite = key
        regex = "".join([f"\\x{ord(character):02x}" for character in characters])
        if not opposite:
            regex = f"^{regex}"
        compiled = self[key] = re.compile(f"[{regex}]+")
        return compiled


def install(inputstream: Any) -> None:
    """Give ``inputstream`` (``tinyhtml5.inputstream``) a ``TokenRegexes``; a tinyhtml5 without
    that dict (another version) is left as it is (a test checks it is in place)."""
    held = getattr(inputstream, "characters_until_regex", None)
    if isinstance(held, dict) and not isinstance(held, TokenRegexes):
        inputstream.characters_until_regex = TokenRegexes()
