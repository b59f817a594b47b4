"""Images laid out before they exist: the one-shot's charts, drawn in another process.

WeasyPrint needs an image's size to lay a page out, and its pixels only to write the PDF. It
fetches every ``<img>`` while it builds the boxes (``html.handle_img`` ->
``images.get_image_from_uri``), in document order, before any layout: a fetcher that waited for
a chart there would stop after parsing and the cascade, at the first chart, before the tables
that make up most of the boxes (and WeasyPrint turns a fetcher's exception into a logged
warning and a missing image). So a late image is served at once as a stand-in: a PNG header of
the planned size and colour type, which is all ``RasterImage`` reads (Pillow opens lazily).
The whole layout runs while the charts are drawn. (A stand-in is put in WeasyPrint's image cache
before the render, like every inline PNG, ``pngpass``: the same ``RasterImage``, read the same
way.) ``pdf.html_to_pdf`` lifts a late image's URL as it lifts a ``data:`` image
(``inlineimages.lift_inline_images``: same ``ibl-inline:N`` name, so the same image name in the
PDF); when WeasyPrint first needs a late image's pixels (the pages drawn, the fonts subset:
``inlineimages.LateArrival``) it checks that the document that arrived lifts to the very HTML it
laid out, then ``fill`` gives each stand-in its real PNG: the file is the one the
self-contained HTML makes.

``fill`` sets one attribute of WeasyPrint's ``RasterImage`` (``image_data``, through its own
``cache_image_data``): a WeasyPrint upgrade could change that; a test compares the bytes with a
one-process render, and a PNG that is not what was planned (size, colour type) raises
``LateImageMismatch`` so that the caller renders the usual way instead.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reports.errors import RenderError
from reports.report.pngpass import SIGNATURE

SCHEME = "ibl-chart:"
"""The URL scheme of a late image (with a random part per render, so no text can name one)."""


@dataclass(frozen=True)
class LateImage:
    """An image the HTML names by ``url``, laid out at ``width`` x ``height`` px (RGB PNG)."""

    url: str
    width: int
    height: int


@dataclass(frozen=True)
class Arrival:
    """What arrived for the late images: each one's PNG (by its late URL), and the document
    with them as ``data:`` URIs (what the PDF is made from)."""

    pngs: Mapping[str, bytes]
    html: str


@dataclass(frozen=True)
class LateImages:
    """The late images of one render and how to wait for them (``arrive`` raises the error of
    whatever was making them, or ``LateImageMismatch``)."""

    images: Sequence[LateImage]
    arrive: Callable[[], Arrival]
    wait_before_write: bool = False
    """Wait for them as soon as the layout is done, not when their pixels are first needed (a
    warm-up report, which stops there when the job is waiting)."""

    def find(self, url: str) -> LateImage | None:
        """The late image ``url`` names, if any."""
        return next((image for image in self.images if image.url == url), None)


class LateImageMismatch(RenderError):
    """What arrived cannot take a stand-in's place (another size or colour type, another
    document): the caller renders from the self-contained HTML instead."""


def stand_in(image: LateImage) -> bytes:
    """A PNG signature and header (8-bit RGB, ``image``'s size) and its end: what WeasyPrint
    reads to lay an image out. It has no pixels (nothing reads them before ``fill``)."""
    header = struct.pack(">IIBBBBB", image.width, image.height, 8, 2, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def fill(raster: Any, image: LateImage, png: bytes) -> None:
    """Give a laid-out stand-in (WeasyPrint's ``RasterImage``; None: never fetched, e.g. not
    displayed) its real PNG, which must be what was planned."""
    from PIL import Image

    if raster is None:
        return
    with Image.open(io.BytesIO(png)) as real:
        same = (real.format == "PNG" and real.mode == getattr(raster, "mode", None)
                and real.size == (image.width, image.height)
                and "transparency" not in real.info)
    if not same or not callable(getattr(raster, "cache_image_data", None)):
        raise LateImageMismatch(f"the image {image.url} is not the one laid out")
    raster.image_data = raster.cache_image_data(png)
