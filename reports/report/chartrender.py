"""The Agg canvas the charts are drawn on: matplotlib's, with glyph bitmaps and layouts kept.

Decisions:

- matplotlib 3.11 draws text glyph by glyph: for each one it sets the font's size and a
  transform that holds the glyph's position, and asks FreeType to load, hint and rasterise it
  (~60 µs a glyph, ~600 glyphs a report: about a sixth of drawing the charts). The bitmap
  depends on the glyph, font, size, resolution, rotation, hinting, anti-aliasing and the
  position's fraction of a pixel (FreeType works in 1/64 px), not on the whole pixels: moving an
  outline by whole pixels moves its bitmap by as many. So a glyph is rendered once at its
  fraction of a pixel and drawn at its place by adding the whole pixels to the bitmap's corner:
  the same bitmaps at the same places, the same PNG bytes (tests compare them with matplotlib's
  own canvas, in Latin and Arabic script).
- Each text's glyph layout (which glyph of which font where, from libraqm: ~0.3-0.5 ms a text,
  mostly a fixed cost, ~75 texts a report) is kept too, per font, size, resolution, text,
  hinting, features and language: tick labels, axis labels and legends come back report after
  report in a warm process. A text is measured as before (matplotlib keeps its metrics per
  renderer).
- The kept bitmaps and layouts are few (digits, letters of axis labels and tick labels repeat
  within a chart and from report to report) and bounded (``GLYPHS_KEPT``, ``LAYOUTS_KEPT``;
  all dropped past it). A key holds its font object, so a font matplotlib's cache let go cannot
  lend its identity to another.
- Which font files a text's properties choose is looked up once per properties and
  ``rcParams`` (``_font_paths``: what matplotlib's own lookup cache is keyed on; dropped when
  its list of fonts changes), and so is the font's line height at a size
  (``_get_font_height_metrics``, the hook ``Text`` asks a renderer for: the same tables and
  arithmetic as ``Text``'s own; the renderer's resolution is the figure's, as this canvas makes
  it). Text was measured and drawn ~200 times a report, each
  asking matplotlib's font manager again (~a tenth of the charts' time).
- Text measurement, boxes (mathtext, TeX, which the charts do not use) and everything else are
  matplotlib's, unchanged.
- matplotlib is imported when this module is (import it where matplotlib is wanted).
"""

from __future__ import annotations

import math
import os
from typing import Any

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.ft2font import RenderMode

GLYPHS_KEPT = 4_000
"""At most this many glyph bitmaps are kept (~1 KB each with its key, ~70 new ones a report of
another org); past it they are all dropped."""

FONTS_KEPT = 1_000
"""At most this many font lookups and line heights are kept; past it they are all dropped."""

LAYOUTS_KEPT = 1_000
"""At most this many texts' glyph layouts are kept; past it they are all dropped."""

_glyphs: dict[tuple[Any, ...], tuple[Any, int, int]] = {}
_layouts: dict[tuple[Any, ...], tuple[tuple[Any, int, float, float], ...]] = {}
_paths: dict[tuple[Any, ...], Any] = {}
_heights: dict[tuple[Any, ...], tuple[float | None, float | None, float | None]] = {}
_RC_FONT = ("family", "style", "variant", "weight", "stretch", "size", "serif", "sans-serif",
            "cursive", "fantasy", "monospace")


def _keep(store: dict[Any, Any], key: Any, value: Any, limit: int) -> Any:
    """``store[key] = value``, all of ``store`` dropped first once it holds ``limit``."""
    if len(store) >= limit:
        store.clear()
    store[key] = value
    return value


_fonts_seen: list[Any] = [None, -1]
"""The font list (and its length) the kept lookups were made among."""


def _font_key(prop: Any) -> tuple[Any, ...] | None:
    """What matplotlib's font lookup depends on for ``prop`` (None: not to be kept). The kept
    lookups are dropped when matplotlib's font list is another (``fonts.chain_fonts_only``)
    or has grown (``addfont``)."""
    manager = font_manager.fontManager
    if manager.ttflist is not _fonts_seen[0] or len(manager.ttflist) != _fonts_seen[1]:
        _paths.clear()
        _heights.clear()
        _fonts_seen[:] = [manager.ttflist, len(manager.ttflist)]
    try:
        fields = tuple(prop.__dict__.values())
        hash(fields)
    except TypeError:
        return None
    rc: Any = matplotlib.rcParams
    return (fields, *(tuple(v) if isinstance(v := rc[f"font.{name}"], list) else v
                      for name in _RC_FONT),
            manager, os.environ.get("MPL_IGNORE_SYSTEM_FONTS"))


def _font_paths(prop: Any) -> Any:
    """``fontManager._find_fonts_by_props(prop)``, looked up once per key."""
    key = _font_key(prop)
    paths = None if key is None else _paths.get(key)
    if paths is None:
        paths = font_manager.fontManager._find_fonts_by_props(prop)
        if key is not None:
            _keep(_paths, key, paths, FONTS_KEPT)
    return paths


class ChartRenderer(RendererAgg):
    """``RendererAgg`` drawing each glyph from a kept bitmap, its font lookups kept."""

    def _prepare_font(self, font_prop: Any) -> Any:
        font = font_manager.get_font(_font_paths(font_prop))
        font.clear()
        font.set_size(font_prop.get_size_in_points(), self.dpi)
        return font

    def draw_text(self, gc: Any, x: float, y: float, s: str, prop: Any, angle: float,
                  ismath: Any = False, mtext: Any = None) -> None:
        """``RendererAgg.draw_text`` with each text's glyph layout kept (``_layouts``)."""
        if ismath:
            super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)  # type: ignore[no-untyped-call]
            return
        size = prop.get_size_in_points()
        flags = get_hinting_flag()  # type: ignore[no-untyped-call]
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        font = font_manager.get_font(_font_paths(prop))
        key = (font, size, self.dpi, s, flags, features, language)
        try:
            items, keep = _layouts.get(key), True
        except TypeError:  # a language given as a list of spans
            items, keep = None, False
        if items is None:
            font = self._prepare_font(prop)
            items = tuple((item.ft_object, item.glyph_index, item.x, item.y)
                          for item in font._layout(s, flags=flags, features=features,
                                                   language=language))
            if keep:
                _keep(_layouts, key, items, LAYOUTS_KEPT)
        self._draw_text_glyphs_and_boxes(
            gc, x, y, angle,
            ((ft_object, size, glyph_index, 0, 1, item_x, item_y)
             for ft_object, glyph_index, item_x, item_y in items),
            [])

    def _get_font_height_metrics(self, prop: Any
                                 ) -> tuple[float | None, float | None, float | None]:
        """(ascent, descent, line gap) of ``prop``'s font at its size, in pixels: what
        ``Text._get_layout`` computes from the font's tables when a renderer has no answer."""
        key = _font_key(prop)
        kept = None if key is None else _heights.get((key, self.dpi))
        if kept is not None:
            return kept
        font: Any = font_manager.get_font(_font_paths(prop))
        metrics: tuple[float | None, float | None, float | None] = (None, None, None)
        possible = [("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
                    ("hhea", "lineGap", "ascent", "descent")]
        for table_name, linegap_key, ascent_key, descent_key in possible:
            table = font.get_sfnt_table(table_name)
            if table is None:
                continue
            fontsize = prop.get_size_in_points()
            units_per_em = font.get_sfnt_table("head")["unitsPerEm"]
            scale = 1 / units_per_em * fontsize * self.dpi / 72
            metrics = (table[ascent_key] * scale, -table[descent_key] * scale,
                       table[linegap_key] * scale)
            break
        if key is not None:
            _keep(_heights, (key, self.dpi), metrics, FONTS_KEPT)
        return metrics

    def _draw_text_glyphs_and_boxes(self, gc: Any, x: float, y: float, angle: float,
                                    glyphs: Any, boxes: Any) -> None:
        boxes = list(boxes)
        if boxes:  # mathtext and TeX rules: matplotlib's own way
            super()._draw_text_glyphs_and_boxes(  # type: ignore[no-untyped-call]
                gc, x, y, angle, glyphs, boxes)
            return
        cos = math.cos(math.radians(angle))
        sin = math.sin(math.radians(angle))
        load_flags = get_hinting_flag()  # type: ignore[no-untyped-call]
        mode = RenderMode.NORMAL if gc.get_antialiased() else RenderMode.MONO
        height = self.height
        matrices: dict[tuple[float, float], tuple[Any, tuple[int, ...]]] = {}
        for font, size, glyph_index, slant, extend, dx, dy in glyphs:  # dy is upwards.
            # FreeType's y is upwards; positions in 1/64 px, as matplotlib computes them.
            px = round(0x40 * (x + dx * cos - dy * sin))
            py = round(0x40 * (height - y + dx * sin + dy * cos))
            shape = matrices.get((slant, extend))
            if shape is None:
                matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]])
                          @ [[extend, extend * slant], [0, 1]]).round().astype(int)
                shape = matrices[(slant, extend)] = (matrix, tuple(matrix.flat))
            key = (font, size, self.dpi, glyph_index, shape[1], px & 0x3F, py & 0x3F,
                   load_flags, mode)
            kept = _glyphs.get(key)
            if kept is None:
                font.set_size(size, self.dpi)
                font._set_transform(shape[0], [px & 0x3F, py & 0x3F])
                bitmap = font._render_glyph(glyph_index, load_flags, mode)
                buffer = bitmap.buffer
                if mode is RenderMode.MONO:
                    buffer *= 0xFF
                kept = _keep(_glyphs, key, (buffer, bitmap.left, bitmap.top), GLYPHS_KEPT)
            buffer, left, top = kept
            # draw_text_image's y is downwards & the bitmap bottom side.
            self._renderer.draw_text_image(
                buffer, left + (px >> 6), int(height) - (top + (py >> 6)) + buffer.shape[0],
                0, gc)


class ChartCanvas(FigureCanvasAgg):
    """``FigureCanvasAgg`` whose renderer is a ``ChartRenderer``."""

    def get_renderer(self) -> ChartRenderer:
        width, height = self.get_width_height(physical=True)
        key = width, height, self.figure.dpi
        if self._lastKey != key:
            self.renderer = ChartRenderer(  # type: ignore[no-untyped-call]
                width, height, self.figure.dpi)
            self._lastKey = key
        renderer: ChartRenderer = self.renderer
        return renderer
