"""Images laid out before they exist: the one-shot's charts, drawn in another process.

WeasyPrint needs an image's size to lay a page out, and its pixels only to write the PDF. It
fetches every ``<img>`` while it builds the boxes (``html.handle_img`` ->
``images.get_image_from_uri``), in document order, before any layout: a fetcher that waited for
a chart there would stop after parsing and the cascade, at the first chart, before the tables
that make up most of the boxes (and WeasyPrint turns a fetcher's exception into a logged
warning and a missing image). So a late image is served at once as a stand-in: a PNG header of
the planned size and colour type, which is all ``RasterImage`` reads (Pillow opens lazily).
The whole layout runs while the charts are drawn. Before the PDF is written, ``put_in`` gives
each stand-in the real PNG and the name it would have had from the ``data:`` URI (WeasyPrint
names an image ``md5(url)`` in the PDF), so the file is the one the data-URI HTML makes.

This sets two attributes of WeasyPrint's ``RasterImage`` (``id``, ``image_data``): a
WeasyPrint upgrade could change them; a test compares the bytes with a one-process render, and
a PNG that is not what was planned (size, colour type) raises ``LateImageMismatch`` so that the
caller renders the usual way instead.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reports.errors import RenderError

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
    """What arrived for the late images: each one's PNG and the URL the same document names it
    by when it is self-contained (its ``data:`` URI), and that document (the PDF's identity)."""

    pngs: Mapping[str, bytes]
    urls: Mapping[str, str]
    html: str


@dataclass(frozen=True)
class LateImages:
    """The late images of one render and how to wait for them (``arrive`` raises the error of
    whatever was making them, or ``LateImageMismatch``)."""

    images: Sequence[LateImage]
    arrive: Callable[[], Arrival]

    def find(self, url: str) -> LateImage | None:
        """The late image ``url`` names, if any."""
        return next((image for image in self.images if image.url == url), None)


class LateImageMismatch(RenderError):
    """What arrived cannot take a stand-in's place (another size or colour type, another
    document): the caller renders from the self-contained HTML instead."""


def stand_in(image: LateImage) -> bytes:
    """A PNG signature and header (8-bit RGB, ``image``'s size) and its end: what WeasyPrint
    reads to lay an image out. It has no pixels (nothing reads them before ``put_in``)."""
    header = struct.pack(">IIBBBBB", image.width, image.height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def image_id(url: str) -> str:
    """WeasyPrint's name of the image fetched from ``url`` (``images.get_image_from_uri``)."""
    return hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()


def put_in(cache: Mapping[str, Any], late: LateImages, arrival: Arrival) -> None:
    """Give each laid-out stand-in (WeasyPrint's image cache, by URL) its real PNG and name."""
    from PIL import Image

    for image in late.images:
        raster = cache.get(image.url)
        if raster is None:  # the template did not show it after all
            continue
        png = arrival.pngs[image.url]
        with Image.open(io.BytesIO(png)) as real:
            same = (real.format == "PNG" and real.mode == getattr(raster, "mode", None)
                    and real.size == (image.width, image.height)
                    and "transparency" not in real.info)
        if not same or getattr(raster, "id", None) != image_id(image.url) or not callable(
                getattr(raster, "cache_image_data", None)):
            raise LateImageMismatch(f"the chart {image.url} is not the one laid out")
        raster.id = image_id(arrival.urls[image.url])
        raster.image_data = raster.cache_image_data(png)
