"""PNG images written into the PDF as they are, instead of decoded and compressed again.

A PDF image with ``/FlateDecode`` and ``/DecodeParms << /Predictor 15 /Colors c /Columns w >>``
is exactly the concatenated ``IDAT`` data of a PNG with 8 bits per sample, no interlacing and
``c`` colours: the same zlib stream of filtered rows. WeasyPrint writes PNGs that way, but
gets that stream by decoding every PNG with Pillow and encoding it again
(``RasterImage._get_png_data``): for the report's 3 chart PNGs ~15 ms of decoding and ~55 ms
of compressing, ~12% of a warm PDF stage, only to write the same pixels.

``seed`` puts an image of ours into the render's image cache (``render(cache=...)``, which
WeasyPrint looks up by URL before fetching) as a ``PassThroughRaster``: WeasyPrint's own
``RasterImage``, built the way ``weasyprint.images.get_image_from_uri`` builds it, whose
``_get_png_data`` hands back the source file's ``IDAT`` data when the image it is given is that
file as it is (the same size and colour type; 8-bit grey or RGB, not interlaced, no
transparency). Anything else (an alpha channel, a palette, 16 bits, interlacing, an image
WeasyPrint changed first) takes WeasyPrint's own path. Same pixels, same page; the stream is
the chart's own compression (level 1, see ``charts.py``), ~5% bigger than WeasyPrint's.

The coupling (``_get_png_data``, the constructor's arguments) is pinned by tests that check
the stream written is the source's ``IDAT`` and that the pages look the same.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
from collections.abc import Callable, Mapping
from typing import Any

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MODES = {0: "L", 2: "RGB"}
"""PNG colour types whose IDAT data is a PDF image's data as it is, and Pillow's mode name."""


def idat(png: bytes) -> tuple[str, int, int, bytes] | None:
    """``(mode, width, height, concatenated IDAT data)`` of a PNG that a PDF can take as it is
    (8-bit grey or RGB, not interlaced, no ``tRNS``); ``None`` for any other file."""
    if not png.startswith(SIGNATURE):
        return None
    at, header, parts = len(SIGNATURE), None, []
    while at + 8 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, at)
        data = png[at + 8 : at + 8 + length]
        if len(data) != length:
            return None
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data) if length == 13 else None
        elif kind == b"IDAT":
            parts.append(data)
        elif kind in (b"tRNS", b"PLTE"):
            return None
        elif kind == b"IEND":
            break
        at += 12 + length
    if header is None or not parts:
        return None
    width, height, depth, colour, compression, filtering, interlace = header
    if depth != 8 or colour not in _MODES or (compression, filtering, interlace) != (0, 0, 0):
        return None
    return _MODES[colour], width, height, b"".join(parts)


@functools.cache
def raster_class() -> type[Any]:
    """``PassThroughRaster``, made on first use (WeasyPrint is imported lazily)."""
    from reports.report import weasy

    assert weasy.weasyprint  # imported the quick way (see weasy.py) before the names below
    from weasyprint.images import RasterImage

    class PassThroughRaster(RasterImage):  # type: ignore[misc]
        """WeasyPrint's ``RasterImage`` that writes its PNG's IDAT data as it is (and, for a
        late image's stand-in, calls ``waits_for`` before its pixels are first needed:
        ``inlineimages.LateArrival``)."""

        waits_for: Callable[[], object] | None = None

        def get_x_object(self, *args: Any, **kwargs: Any) -> Any:
            # WeasyPrint reads an image's pixels here, when the pages are drawn and the fonts
            # subset, to write it as an XObject.
            if self.waits_for is not None:
                self.waits_for()
            return RasterImage.get_x_object(self, *args, **kwargs)

        def _get_png_data(self, pillow_image: Any) -> bytes:
            # WeasyPrint calls this with Image.open(self.image_data.data) (lazy: not decoded
            # yet) for an image without alpha; a converted image has no format.
            found = idat(self.image_data.data) if pillow_image.format == "PNG" else None
            if found is not None and found[:3] == (pillow_image.mode, *pillow_image.size):
                return found[3]
            data: bytes = RasterImage._get_png_data(pillow_image)
            return data

    return PassThroughRaster


def seed(cache: dict[str, Any], url: str, png: bytes, options: Mapping[str, Any]) -> bool:
    """Put ``png`` in WeasyPrint's image ``cache`` as the image at ``url`` (a
    ``PassThroughRaster``), as ``get_image_from_uri`` would have; ``False`` (nothing put) if it
    is not a PNG or carries EXIF data (an orientation WeasyPrint would apply).

    A PNG of only a header (a late image's stand-in, ``lateimages``) is fine: its pixels are
    read when the PDF is written."""
    from PIL import Image

    if not png.startswith(SIGNATURE):
        return False
    image_id = hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()  # as WeasyPrint
    try:
        image = Image.open(io.BytesIO(png), formats=("PNG",))
        if "exif" in image.info:
            return False
        raster = raster_class()(image, image_id, png, None, cache, "from-image", options)
    except Exception:  # WeasyPrint's own path then reports it, as it always did
        return False
    cache[url] = raster
    return True
