"""The demo API's cache of answers already given: the JSON bytes of each well-formed answer.

The demo data is a pure function of the request and the knobs, so a request seen before is
answered with the same bytes without building them again: a repeated report run (and every run of
a benchmark after its warm-up) costs the server only its HTTP work, as a real API's cache would.
Bounded by the bytes it holds (least recently used answers go first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

ANSWER_CACHE_BYTES = 128 * 1024 * 1024
"""Enough for every answer of a 2,000-course, 100,000-user org's report (about 25 MB) several
times over."""


class AnswerCache:
    """Answer bytes by request key, least recently used first out past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        """The bytes stored under ``key`` (now the most recently used), or None."""
        body = self._items.get(key)
        if body is not None:
            self._items.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep ``body`` under ``key``; a body larger than the whole cache is not kept."""
        if len(body) > self.limit:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._items[key] = body
        self.size += len(body)
        while self.size > self.limit:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)
