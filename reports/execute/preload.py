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
  the same fonts win) and the English chain looked up at every size the charts use.

No report is rendered here: a throw-away report costs more CPU than the two children's cold
first reports save. Importing a module must never fail for a warm-up: what it cannot do, the
first render does (and reports).
"""

from __future__ import annotations

import contextlib
import importlib

MODULES = ("jinja2", "jinja2.ext", "babel.support", "email.policy")
"""Beyond the one-shot children's modules: what a first render imported on first use."""


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


preload()
