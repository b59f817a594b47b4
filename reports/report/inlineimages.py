"""The report's ``data:`` images, lifted out of the HTML WeasyPrint parses, and late ones.

``lift_inline_images`` shortens each ``src="data:image/...;base64,..."`` to ``ibl-inline:N`` in the
copy of the HTML WeasyPrint is given (the fetcher serves the decoded bytes), and names a late
image (``lateimages``: a chart still being drawn elsewhere) the same way, so a document whose
images come late and the same one with them inline give WeasyPrint the very same HTML.

``LateArrival`` waits for the late images once and puts their pixels in the laid-out document.
It waits when WeasyPrint first needs a late image's pixels (``arm``): once it has drawn every
page, embedded the attachments and subset the fonts, which then happen while the charts are
drawn; for an image not drawn, after the write at the latest. Where the image in WeasyPrint's
cache cannot say when it is needed (not a ``pngpass`` image), it waits before the write.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reports.report.lateimages import LateImage, LateImageMismatch, LateImages, fill, stand_in

INLINE_SCHEME = "ibl-inline:"
_DATA_URI = r"data:(image/[a-z0-9.+-]+);base64,([A-Za-z0-9+/]+=*)"
_DATA_SRC = re.compile(rf'(?<=\ssrc="){_DATA_URI}(?=")')


@dataclass(frozen=True)
class InlineImage:
    """A ``data:`` image of the HTML, decoded, served to WeasyPrint from memory (or a late
    image's stand-in)."""

    uri: str
    mime: str
    data: bytes
    late: LateImage | None = None


def lift_inline_images(html: str, late: LateImages | None = None
                       ) -> tuple[str, list[InlineImage]]:
    """``html`` with each ``src="data:image/...;base64,..."`` shortened to ``ibl-inline:N``.

    The charts are ~110 kB of base64 in ``src`` attributes; WeasyPrint's pure-Python HTML
    tokenizer reads them character by character (~15 ms a report) and then decodes them through
    urllib. The HTML kept (archive, preview, mail) keeps its data URIs: only the copy handed to
    WeasyPrint is shortened, and the fetcher serves the decoded bytes (same image, same PDF).
    ``late`` images are lifted in the same count (as their stand-ins), so that a document whose
    images come late and the same document with them as ``data:`` URIs give WeasyPrint the very
    same HTML (and images the same names).
    """
    images: list[InlineImage] = []

    def lift(found: re.Match[str]) -> str:
        image = late.find(found.group(0)) if late is not None else None
        if image is not None:
            images.append(InlineImage(image.url, "image/png", stand_in(image), image))
            return f"{INLINE_SCHEME}{len(images) - 1}"
        try:
            data = base64.b64decode(found.group(2), validate=True)
        except binascii.Error:
            return found.group(0)  # left to WeasyPrint as it was
        images.append(InlineImage(found.group(0), found.group(1), data))
        return f"{INLINE_SCHEME}{len(images) - 1}"

    pattern = _DATA_SRC if late is None else _late_src(late)
    return pattern.sub(lift, html), images


def _late_src(late: LateImages) -> re.Pattern[str]:
    """``_DATA_SRC`` that also finds ``late``'s URLs."""
    urls = "".join(f"|{re.escape(image.url)}" for image in late.images)
    return re.compile(rf'(?<=\ssrc=")(?:{_DATA_URI}{urls})(?=")')


class LateArrival:
    """The late images' arrival in the document laid out from ``source_html`` (whose inline
    images are ``inline``, WeasyPrint's image cache ``images``), waited for once."""

    def __init__(self, late: LateImages, source_html: str, inline: Sequence[InlineImage],
                 images: dict[str, Any]) -> None:
        self.late, self.source_html = late, source_html
        self.laid_out: list[tuple[Any, LateImage, str]] = [
            (images.get(f"{INLINE_SCHEME}{index}"), image.late, image.uri)
            for index, image in enumerate(inline) if image.late is not None]
        """Each late image's ``RasterImage`` in the cache (None: never fetched), what was laid
        out, and its URL."""
        self._html: str | None = None

    def wait(self) -> str:
        """Wait for the late images (once) and put them in the laid-out document; the HTML they
        make. Raises the error of whatever was making them, or ``LateImageMismatch`` if
        WeasyPrint would not have been given the same HTML."""
        if self._html is None:
            arrival = self.late.arrive()
            if lift_inline_images(arrival.html)[0] != self.source_html:
                raise LateImageMismatch("the document that arrived is not the one laid out")
            for raster, image, url in self.laid_out:
                fill(raster, image, arrival.pngs[url])
            self._html = arrival.html
        return self._html

    def arm(self) -> bool:
        """Have every late image wait for the arrival when its pixels are first needed; False
        (nothing changed) if one of them cannot (``wait`` before the write, then)."""
        if not all(hasattr(raster, "waits_for") for raster, _, _ in self.laid_out):
            return False
        for raster, _, _ in self.laid_out:
            raster.waits_for = self.wait
        return True
