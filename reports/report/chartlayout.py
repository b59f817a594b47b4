"""Chart margins: the subplot parameters ``Figure.tight_layout`` would choose, measured once.

Decisions:

- The same result as ``fig.tight_layout(pad=..., w_pad=...)`` for the charts' figures (one row
  of axes, x axis at the bottom, y axis at the left, titles on top; a test compares the two on
  every chart kind, in three scripts). Each axes' box grows by what sticks out of it: its tick
  labels (the ticks in view), its axis labels (placed ``labelpad`` beyond the tick labels and
  tick marks; an empty one takes no room), its title (its height only), bar labels and other
  texts, its legend. The margins are ``pad`` font sizes around the union, the gap between
  panels ``w_pad`` font sizes.
- Why not ``tight_layout`` itself: it measures every tick label three or four times (the axis,
  the axis label's place, each spine's tick marks, the title's place) and it was about a fifth
  of the charts' CPU. Here each text is measured once, with the renderer that then draws the
  figure (its text metrics are cached per renderer: the draw does not measure them again).
- The axis labels are then pinned where matplotlib would put them (``set_label_coords``), so the
  draw does not measure the tick labels again to place them; the titles were placed by
  ``set_title(y=1.0)`` (the place matplotlib computes when no tick label is on top).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox


def fit(fig: Figure, *, pad: float, w_pad: float | None = None) -> None:
    """Set ``fig``'s subplot parameters as ``tight_layout(pad=pad, w_pad=w_pad)`` would.

    The axes must be one row of subplots. Leaves the parameters as they are when the
    decorations cannot fit (where ``tight_layout`` warns and does the same).
    """
    import matplotlib as mpl

    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    measured = [_measure(ax, renderer) for ax in fig.axes]
    width_px, height_px = fig.bbox.width, fig.bbox.height
    font_px = mpl.rcParams["font.size"] / 72 * fig.dpi
    pad_x, pad_y = pad * font_px / width_px, pad * font_px / height_px
    left = max(measured[0].left, 0) / width_px + pad_x
    right = max(measured[-1].right, 0) / width_px + pad_x
    bottom = max(max(m.bottom for m in measured), 0) / height_px + pad_y
    top = max(max(m.top for m in measured), 0) / height_px + pad_y
    if left + right >= 1 or bottom + top >= 1:
        return
    params = {"left": left, "right": 1 - right, "bottom": bottom, "top": 1 - top}
    if len(measured) > 1:
        between = max(a.right + b.left for a, b in itertools.pairwise(measured))
        space = between / width_px + (pad if w_pad is None else w_pad) * font_px / width_px
        axes_width = (1 - right - left - space * (len(measured) - 1)) / len(measured)
        if axes_width <= 0:
            return
        params["wspace"] = space / axes_width
    fig.subplots_adjust(**params)
    for ax, m in zip(fig.axes, measured, strict=True):
        _pin_labels(ax, m)


@dataclass(frozen=True)
class _Measured:
    """How far (display pixels) an axes' decorations reach beyond its box on each side, and
    where its axis labels go (pixels below / left of the box; None: the axis is hidden)."""

    left: float
    right: float
    bottom: float
    top: float
    x_label_gap: float | None
    y_label_gap: float | None


def _pin_labels(ax: Axes, m: _Measured) -> None:
    """Put the axis labels ``m``'s gaps away from the axes box (in axes coordinates, so the
    box's size must be final, or set again when it changes)."""
    box = ax.bbox
    if m.x_label_gap is not None:
        ax.xaxis.set_label_coords(0.5, -m.x_label_gap / box.height)
    if m.y_label_gap is not None:
        ax.yaxis.set_label_coords(-m.y_label_gap / box.width, 0.5)


def _measure(ax: Axes, renderer: RendererBase) -> _Measured:
    from matplotlib.transforms import Bbox

    box = ax.bbox.frozen()
    dpi = ax.figure.dpi
    boxes: list[Bbox] = [box]
    x_gap = y_gap = None
    if ax.xaxis.get_visible():
        ticks = _tick_label_boxes(ax.xaxis, renderer)
        lowest = min([box.y0 - _tick_reach(ax.xaxis), *(b.y0 for b in ticks)])
        x_gap = box.y0 - lowest + ax.xaxis.labelpad * dpi / 72
        boxes += ticks
    if ax.yaxis.get_visible():
        ticks = _tick_label_boxes(ax.yaxis, renderer)
        leftmost = min([box.x0 - _tick_reach(ax.yaxis), *(b.x0 for b in ticks)])
        y_gap = box.x0 - leftmost + ax.yaxis.labelpad * dpi / 72
        boxes += ticks
    gaps = _Measured(0, 0, 0, 0, x_gap, y_gap)
    _pin_labels(ax, gaps)
    if x_gap is not None and ax.xaxis.label.get_text():
        boxes.append(_collapsed(ax.xaxis.label.get_window_extent(renderer), "x"))
    if y_gap is not None and ax.yaxis.label.get_text():
        boxes.append(_collapsed(ax.yaxis.label.get_window_extent(renderer), "y"))
    if ax.title.get_text():
        boxes.append(_collapsed(ax.title.get_window_extent(renderer), "x"))
    extras = [text.get_tightbbox(renderer) for text in ax.texts if text.get_visible()]
    legend = ax.get_legend()
    if legend is not None and legend.get_visible():
        extras.append(legend.get_tightbbox(renderer))
    boxes += [b for b in extras if b is not None and b.width > 0 and b.height > 0]
    union = Bbox.union(boxes)
    return _Measured(left=box.x0 - union.x0, right=union.x1 - box.x1,
                     bottom=box.y0 - union.y0, top=union.y1 - box.y1,
                     x_label_gap=x_gap, y_label_gap=y_gap)


def _collapsed(box: Bbox, along: str) -> Bbox:
    """``box`` one pixel wide (``along="x"``) or high: a label's length does not move the
    margins (as in ``tight_layout``)."""
    from matplotlib.transforms import Bbox

    if along == "x" and box.width > 0:
        middle = (box.x0 + box.x1) / 2
        return Bbox.from_extents(middle - 0.5, box.y0, middle + 0.5, box.y1)
    if along == "y" and box.height > 0:
        middle = (box.y0 + box.y1) / 2
        return Bbox.from_extents(box.x0, middle - 0.5, box.x1, middle + 0.5)
    return box


def _ticks_in_view(axis: Axis) -> list[Any]:
    locations = axis.get_majorticklocs()
    low, high = sorted(axis.get_view_interval())
    slack = (high - low) * 1e-10
    ticks = axis.get_major_ticks(len(locations))
    return [tick for tick, loc in zip(ticks, locations, strict=True)
            if low - slack <= loc <= high + slack]


def _tick_reach(axis: Axis) -> float:
    """How far (pixels) the tick marks reach out of the axes (0 when none is drawn)."""
    drawn = any(tick.tick1line.get_visible() for tick in _ticks_in_view(axis))
    return axis.get_tick_padding() * axis.axes.figure.dpi / 72 if drawn else 0.0


def _tick_label_boxes(axis: Axis, renderer: RendererBase) -> list[Bbox]:
    axis.get_majorticklabels()  # puts each tick at its place with its text
    return [tick.label1.get_window_extent(renderer)
            for tick in _ticks_in_view(axis) if tick.label1.get_visible()]
