"""Keep Python's cyclic garbage collector out of a render, and collect when idle instead.

A WeasyPrint render builds a graph of several hundred thousand objects (boxes, styles, text
layouts). While it grows, the allocation counter keeps triggering collections, and the full ones
walk the whole graph (plus every module object imported before it) again and again. Measured with
bench/render.py (demo weekly report, 2 cores, side by side): the PDF stage took 364 ms with the
collector running and 257 ms with it paused, with steadier timings. Peak memory moves little,
because almost everything a render frees is freed by reference counting anyway: +2 MB for the
demo report, +11.5 MB (160 -> 171 MB) for the render child of a 2,000-course org (bench/bigorg.py).

- ``paused()`` turns the collector off for a block and back on afterwards (only if it was on:
  blocks nest, and a caller that disabled it keeps it disabled). Nothing is collected on exit.
- ``lifelong()`` is ``paused()`` for a block whose objects live as long as the process (a
  command's imports and config): they are frozen on exit instead of collected later.
- ``settle()`` is what a long-lived worker calls when it is idle (after it has sent its answer):
  one full collection. The first one in a process also freezes the
  survivors (imported modules, font and template caches): they move to the permanent generation
  and later collections skip them, ~12 ms instead of ~35 ms per job. Only once: a frozen object
  is never collected, so freezing after every job could pin cyclic garbage that a cache lets go
  of later; freezing once bounds that to what existed after the first job (bench/longrun.py
  checks RSS).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (re-enabled after, if it was on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def lifelong() -> Iterator[None]:
    """Run a block that builds objects for the life of the process (imports, the config) with
    the collector off, then freeze what exists: no collection walks them again.

    Only re-enabling would cost more than it saves: everything the block allocated is still in
    the youngest generation, and the next collection walks all of it at once. Freezing is O(1);
    the price is that garbage cycles left at that point are never collected (a start's few).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


_froze = False
"""Whether ``settle`` has frozen this process's survivors (a fork inherits both)."""


def settle() -> None:
    """Collect the garbage of the last job now; the first time in a process, also exempt the
    survivors from later collections. (A flag, not ``gc.get_freeze_count()``: that one walks
    the whole permanent generation, ~40 ms after a render.)"""
    global _froze
    gc.collect()
    if not _froze:
        gc.freeze()
        _froze = True
