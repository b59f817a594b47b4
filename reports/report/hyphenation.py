"""Pyphen's hyphenation dictionaries, read on demand instead of parsed whole.

WeasyPrint hyphenates (``hyphens: auto``, the report's table headers) through
``pyphen.Pyphen(lang=...)``, which parses every pattern of the language's ``hyph_*.dic`` into a
dict the first time a process needs it: 115 ms of CPU for English (11,000 patterns), **1.1 s for
German** (78,000), paid by the first report of every render process for a few header words.

``LazyHyphDict`` is pyphen's ``HyphDict`` (its ``positions``, so the same hyphenation points)
whose ``patterns`` parse a pattern line only when ``positions`` looks its key up. The index from
key to line is built with a few whole-text regular expressions (~5 ms for English, ~40 ms for
German) on the first lookup; keys that two lines share (whose order matters) are parsed then,
in file order, keeping the line pyphen's loop would keep. Two threads looking a key up at once
both parse its line and store the same pattern. ``install()`` puts one, not yet
read, in ``pyphen.hdcache`` (pyphen's per-file cache, which ``Pyphen`` reads first) for each
dictionary pyphen ships; a test compares every pattern and the hyphenation of a word list with
pyphen's own parse.
"""

from __future__ import annotations

import collections
import itertools
import operator
import re
from pathlib import Path
from typing import Any

import pyphen

_SPECIAL = re.compile(r"\^\^|/")
"""What pyphen changes in a line before taking its key: ``^^hh`` escapes, ``/`` alternatives."""
_DIGIT = re.compile(r"\d")

Pattern = tuple[int, tuple[int, ...]]


def parse_line(line: str) -> tuple[str, Pattern | None] | None:
    """One line of a ``hyph_*.dic`` as pyphen's ``HyphDict`` reads it: ``None`` for a blank or
    ignored line, else its key and (start, values), the latter ``None`` if all values are 0."""
    pattern = line.strip()
    if not pattern or pattern.startswith(pyphen.ignored):
        return None
    pattern = pyphen.parse_hex(lambda match: chr(int(match.group(1), 16)), pattern)
    factory: Any = int
    if "/" in pattern and "=" in pattern:
        pattern, alternative = pattern.split("/", 1)
        factory = pyphen.AlternativeParser(pattern, alternative)
    tags, values = zip(*[(string, factory(i or "0")) for i, string in pyphen.parse(pattern)],
                       strict=True)
    if max(values) == 0:
        return "".join(tags), None
    start, end = 0, len(values)
    while not values[start]:
        start += 1
    while not values[end - 1]:
        end -= 1
    return "".join(tags), (start, values[start:end])


class LazyPatterns:
    """``HyphDict.patterns`` for ``positions``: ``get(key)`` parses the key's line once."""

    def __init__(self, lines: dict[str, str], parsed: dict[str, Pattern | None]) -> None:
        self.lines = lines
        self.parsed = parsed

    def get(self, key: str, default: Pattern | None = None) -> Pattern | None:
        if key in self.parsed:
            found = self.parsed[key]
        else:
            line = self.lines.get(key)  # not pop: another thread may be parsing it too
            if line is None:
                return default
            entry = parse_line(line)
            found = self.parsed[key] = None if entry is None else entry[1]
        return default if found is None else found


def _read(path: Path) -> str:
    """The text after the encoding line, decoded as pyphen decodes it."""
    with path.open("rb") as fd:
        encoding = fd.readline().decode()
    if encoding.lower() == "microsoft-cp1251":
        encoding = "cp1251"
    return path.read_text(encoding).partition("\n")[2]


def index(body: str) -> tuple[LazyPatterns, int]:
    """``body``'s patterns by key, not parsed yet, and the longest key.

    The keys are taken with C-level string functions over all lines at once; the few lines
    pyphen changes first (``_SPECIAL``) get theirs from ``parse_line``. Where two lines share a
    key, pyphen's loop keeps the last one with a value: those keys are parsed now, in file
    order."""
    kept = list(itertools.filterfalse(
        operator.methodcaller("startswith", pyphen.ignored),
        filter(None, map(str.strip, body.split("\n")))))
    joined = "\n".join(kept)
    try:  # Latin-1 has no digits but 0-9: take them out of the bytes
        keys = (joined.encode("latin-1").translate(None, b"0123456789")
                .decode("latin-1").split("\n"))
    except UnicodeEncodeError:
        keys = _DIGIT.sub("", joined).split("\n")
    if "/" in joined or "^^" in joined:
        for number in itertools.compress(range(len(kept)), map(_SPECIAL.search, kept)):
            entry = parse_line(kept[number])
            if entry is not None:
                keys[number] = entry[0]
    lines = dict(zip(keys, kept, strict=True))
    parsed: dict[str, Pattern | None] = {}
    if len(lines) != len(keys):
        shared = {key for key, count in collections.Counter(keys).items() if count > 1}
        for key in shared:
            parsed[key] = None
            del lines[key]
        for number in [n for n, key in enumerate(keys) if key in shared]:
            entry = parse_line(kept[number])
            if entry is not None and entry[1] is not None:
                parsed[entry[0]] = entry[1]
    return LazyPatterns(lines, parsed), max(map(len, keys), default=0)


class LazyHyphDict(pyphen.HyphDict):  # type: ignore[misc]
    """pyphen's ``HyphDict`` of ``path``, read on its first ``positions``."""

    def __init__(self, path: Path) -> None:  # pyphen's reads the whole file here
        self.path = path
        self.cache: dict[str, Any] = {}
        self.loaded = False

    def positions(self, word: str) -> Any:
        if not self.loaded:
            self._load()
        return super().positions(word)

    def _load(self) -> None:
        self.patterns, self.maxlen = index(_read(self.path))
        self.loaded = True


def install() -> None:
    """A ``LazyHyphDict`` in ``pyphen.hdcache`` for each dictionary pyphen ships that no
    ``Pyphen`` has read yet. A pyphen without that cache (another version) is left as it is: a
    speed-up, not a change of output (a test checks it is in place)."""
    if not isinstance(getattr(pyphen, "hdcache", None), dict):
        return
    for path in pyphen.LANGUAGES.values():
        if path not in pyphen.hdcache:
            pyphen.hdcache[path] = LazyHyphDict(path)
