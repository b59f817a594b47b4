"""The charts' figures, kept between renders: a warm process draws each chart kind again on the
same matplotlib figure, its axes emptied, instead of building a new one.

Decisions:

- Building a figure's axes and their tick artists, and measuring every text on a new renderer,
  was about a quarter of a warm process's chart CPU; a pool worker draws the same three kinds of
  chart for every report. What is kept: figures per chart kind and thread (a thread-local
  store: two threads never share one), with their Agg canvas, so their renderer and the
  renderer's text-metric cache (matplotlib's, at most 4,096 texts) live on too. At most nine
  figures (three kinds, ``KEPT_PER_KIND`` each), a few MB each, per thread that draws.
- A kept figure is used again only for the same resolution, number of panels and font families
  (the tick labels made under one font list keep it); otherwise a new one is made and kept
  beside it, up to ``KEPT_PER_KIND`` per chart kind (the least recently used goes). A batch's
  orgs alternate between font lists (Latin names only, or some in CJK, ...): with one figure
  per kind, every switch rebuilt all three (~80 ms of CPU, and their text-metric caches). Another
  height (the course chart grows with its courses) resizes it: same PNG bytes as a new figure
  of that height (a test; each org of a batch may have another number of courses).
- Before it is used again, everything a chart adds is taken away (bar containers, patches,
  texts, lines, collections, the legend), its data limits are recomputed from nothing left,
  autoscaling is back on, no axis is inverted, and the subplot parameters are matplotlib's
  defaults, so the layout is measured from where a new figure starts. What every chart sets
  anew each time (tick locators and formatters, limits, labels, titles, the grid, hidden axes)
  is not reset. A test draws a sequence of different reports on kept figures and compares each
  PNG with the one a new figure gives: byte for byte the same. ``bench/longrun.py`` watches the
  memory over many renders.
- matplotlib is imported inside the functions (importing this module stays cheap).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reports.report.chartplan import COLUMN_WIDTH_IN

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class _Kept:
    key: tuple[object, ...]
    figure: Figure


_store = threading.local()

KEPT_PER_KIND = 3
"""Figures kept per chart kind and thread, one per resolution, panels and font list."""


def new_figure(height_in: float, dpi: float = 100) -> Figure:
    """A new figure as wide as the text column, on its own Agg canvas (no pyplot)."""
    from matplotlib.figure import Figure

    from reports.report.chartrender import ChartCanvas

    fig = Figure(figsize=(COLUMN_WIDTH_IN, height_in), dpi=dpi)
    ChartCanvas(fig)
    return fig


def chart_axes(kind: str, height_in: float, dpi: int, columns: int) -> tuple[Figure, list[Axes]]:
    """A figure with one row of ``columns`` empty axes for the chart ``kind``: this thread's
    kept one when it fits, else a new one (then kept)."""
    import matplotlib

    key = (dpi, columns, tuple(matplotlib.rcParams["font.family"]))
    kept: dict[tuple[str, tuple[object, ...]], _Kept] = _store.__dict__.setdefault("figures", {})
    old = kept.pop((kind, key), None)
    if old is not None:
        kept[(kind, key)] = old  # the most recently used last
        fig = old.figure
        if fig.get_size_inches()[1] != height_in:
            fig.set_size_inches(COLUMN_WIDTH_IN, height_in)
        for ax in fig.axes:
            _empty(ax)
        rc = matplotlib.rcParams
        fig.subplots_adjust(  # where a new figure's axes start
            left=rc["figure.subplot.left"], right=rc["figure.subplot.right"],
            bottom=rc["figure.subplot.bottom"], top=rc["figure.subplot.top"],
            wspace=rc["figure.subplot.wspace"], hspace=rc["figure.subplot.hspace"])
        return fig, list(fig.axes)
    fig = new_figure(height_in, dpi)
    axes = list(fig.subplots(1, columns, squeeze=False)[0])
    same_kind = [k for k in kept if k[0] == kind]
    for gone in same_kind[:max(0, len(same_kind) - KEPT_PER_KIND + 1)]:
        del kept[gone]
    kept[(kind, key)] = _Kept(key, fig)
    return fig, axes


def forget() -> None:
    """Drop this thread's kept figures (the next charts are drawn on new ones)."""
    _store.__dict__.pop("figures", None)


def _empty(ax: Any) -> None:
    """Take away what a chart added to ``ax`` and undo the state it changed that the next chart
    may leave as is (see the module's docstring)."""
    for container in list(ax.containers):
        container.remove()  # its bars with it
    for artist in [*ax.patches, *ax.texts, *ax.lines, *ax.collections]:
        artist.remove()
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    ax.relim()
    ax.set_autoscale_on(True)
    ax.xaxis.set_inverted(False)
    ax.yaxis.set_inverted(False)
