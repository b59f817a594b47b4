"""What every warm render child inherits: done once, at import, by the process it is forked from.

The pool's fork server (``worker.PRELOAD``) and a Celery worker import this module before they
fork render children; what it does is then shared copy-on-write, instead of each child paying it
on its first report (a child's first report costs 0.4-0.8 s of CPU more than its next, mostly
Pango, fontconfig and cffi warming up, which no import does):

- the render modules, and matplotlib's ``Figure`` and Agg canvas without pyplot, which the
  charts never use (~0.3 s of CPU less), the artists' property docstrings skipped (as the
  one-shot's charts child does; a render never reads a docstring);
- what a first render imported on first use: Jinja2, Babel's catalogues, Pillow's image
  plugins, the e-mail policy of the archive's HTML;
- matplotlib's font choice narrowed to the charts' family chains (``fonts.chain_fonts_only``:
  the same fonts win) and the English chain looked up at every size the charts use;
- the first render's one-time look-ups that a fork inherits (``warm_pdf_lookups``, ~55 ms of
  CPU here instead of in every worker): the C types WeasyPrint names at render time, English's
  Babel locale data and hyphenation dictionary (not the ``FontConfiguration``: see there).

Everything this module builds lives as long as the process: it is built with the collector
paused and then frozen (``gcpause.lifelong``), so that no collection, in this process or in a
child, walks it again. A child's first collection used to walk (and so copy, page by page,
out of the shared memory) the whole imported heap: ~90 ms of CPU per pool worker.

No report is rendered here: a throw-away report costs more CPU than the two children's cold
first reports save. Nothing is opened that a fork must not share (matplotlib drops its open
fonts in a child anyway). Importing a module must never fail for a warm-up: what it cannot do,
the first render does (and reports).
"""

from __future__ import annotations

import contextlib
import importlib

from reports.report.gcpause import lifelong

MODULES = ("jinja2", "jinja2.ext", "babel.support", "email.policy")
"""Beyond the one-shot children's modules: what a first render imported on first use."""

C_TYPES = ("char[]", "PangoRectangle *", "PangoLogAttr[]", "unsigned int *", "hb_tag_t[]",
           "hb_codepoint_t[]")
"""The C types a first render makes WeasyPrint's ``ffi`` build (parsed, or taken from
``cdefcache``); cffi keeps each for the process."""


def preload() -> None:
    """Import what a render uses and warm matplotlib's font lookups (once per process): what
    the one-shot's two children do at their start (``warmups.warm_charts``, ``PDF_MODULES``),
    and ``MODULES``."""
    from reports.execute.warmups import PDF_MODULES, warm_charts

    with contextlib.suppress(Exception):  # a missing font: the first chart says so
        warm_charts("en")
    for name in (*PDF_MODULES, *MODULES):
        importlib.import_module(name)
    import PIL.Image

    PIL.Image.preinit()  # the plugins a chart PNG is opened with
    with contextlib.suppress(Exception):  # each is done again by the first render if need be
        warm_pdf_lookups()


def warm_pdf_lookups() -> None:
    """What a first PDF looks up once per process and a forked child keeps: WeasyPrint's C types
    (``C_TYPES``), English's locale data (``lang.resolve``) and pyphen's English dictionary
    (indexed, ``hyphenation``). Not the ``FontConfiguration`` every render shares: making its
    font map starts Pango's ``FcInit`` thread, and a child forked while that thread still runs
    would wait for it forever at its first layout (a fork copies no thread)."""
    import pyphen

    from reports.lang import resolve
    from reports.report.weasy import weasyprint

    ffi = weasyprint.text.ffi.ffi
    for cdecl in C_TYPES:
        ffi.typeof(cdecl)
    resolve("en")
    pyphen.Pyphen(lang=pyphen.language_fallback("en")).positions("warm")


with lifelong():  # the imports and look-ups live as long as the process: frozen, never walked
    preload()
