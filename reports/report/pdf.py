"""The PDF stage: turn the report's HTML into a tagged, reproducible PDF with CSV attachments.

Decisions:

- **Variant: PDF/UA-1.** WeasyPrint 70 can write a tagged PDF/UA-1 file *and* embed file
  attachments in it (PDF/UA does not forbid embedded files), so we get both accessibility
  (structure tree with H2/Table/TH/Figure+Alt, ``/Lang``, ``/MarkInfo``, outline) and the CSV
  data without falling back to PDF/A-3b. Measured on the demo weekly report (5 pages, 3 PNG
  charts, 4 tables, 43 rows), median render+write: no variant 312 ms, PDF/A-3b 340 ms,
  PDF/UA-1 365 ms, PDF/A-3a (tagged + attachments) 394 ms. Tagging costs ~15%; worth it.
  (Not checked with veraPDF, which is not packaged here.)
- **Where the time goes** (demo weekly report, GC paused, per-phase timers, ~230 ms in all):
  HTML parse 17 ms, style cascade 22, box building 16, layout ~89 (tables about half), painting
  31, re-encoding the chart PNGs 35 (WeasyPrint decodes every PNG and compresses it again: now
  the inline ones are written as they are, ``pngpass``), tagging 6, serialisation 13. RGB
  charts rather than RGBA save one soft-mask encode each. Data URIs vs files, sharing a
  ``FontConfiguration`` and the PDF variant change the total by less than the run-to-run noise.
- **No cyclic GC during a render** (``reports.report.gcpause``):
  the collector kept walking WeasyPrint's
  growing box graph (and every imported module) again and again; pausing it took the PDF stage
  of bench/render.py from 364 to ~260 ms, with steadier timings. Long-lived callers collect when
  idle (the render worker does, after answering).
- **One FontConfiguration per process.** A fresh one per render leaks its native font map
  (~0.25 MB a render), so we share one: RSS of a worker stays flat over hundreds of reports.
- **Reproducible bytes.** The document metadata (title, author, subject, keywords, dates, language)
  is set from ``PdfMetadata`` and never from the wall clock: WeasyPrint would otherwise date each
  attachment with ``datetime.now()``. The file identifier (``/ID``) is derived from the metadata's
  ``identifier`` so the same HTML and metadata give byte-identical files; its second half is
  the MD5 of the file, stamped in afterwards (``fileid.py``: pydyf would serialise every object
  twice for it).
- **The report's ``<style>`` is parsed once per process** (``stylecache.py``), not per render,
  and its ``data:`` images reach WeasyPrint decoded, not as base64 to tokenize
  (``lift_inline_images``); those that are PNGs go into its image cache as images written
  without decoding and compressing them again (``pngpass``; only when all of the document's
  styles are in its ``<style>`` elements and none says ``image-orientation``, which an image
  from the cache would not follow).
- **Images can come late** (``lateimages.py``): the one-shot lays the report out around
  stand-ins of its charts' planned size while another process draws them, draws the pages
  and subsets the fonts, and puts their pixels in when WeasyPrint first needs them
  (``inlineimages``); the same file as with the charts inline.
- **Only local, allowed resources.** The URL fetcher serves ``data:`` URIs and files under
  ``allowed_roots`` (after resolving symlinks and ``..``); every other URL is refused. WeasyPrint
  logs a refused resource and renders without it; the refusal is recorded in
  ``PdfResult.refused_urls`` so callers can report or fail on it.
- Attachments declared in the HTML (``<link rel=attachment>``) are dropped: only the
  attachments passed in are embedded.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from reports.errors import RenderError
from reports.report import fileid, gcpause, pngpass, stylecache
from reports.report.inlineimages import INLINE_SCHEME, InlineImage, LateArrival, lift_inline_images
from reports.report.lateimages import LateImages

PDF_VARIANT = "pdf/ua-1"
"""The PDF variant written (see the module docstring for why)."""

GENERATOR = "ibl-reports"


@dataclass(frozen=True)
class Attachment:
    """A file embedded in the PDF (e.g. one CSV table)."""

    name: str
    data: bytes
    mime: str
    description: str


@dataclass(frozen=True)
class PdfMetadata:
    """Document information written into the PDF; ``created`` must not be the wall clock."""

    title: str
    author: str
    subject: str
    created: datetime
    keywords: tuple[str, ...] = ()
    modified: datetime | None = None
    lang: str = "en"
    identifier: str = ""
    """Stable document id (e.g. ``org/weekly/2026-11-09_2026-11-15``); derived if empty."""


@dataclass(frozen=True)
class PdfResult:
    """The rendered PDF, its page count and the resources the fetcher refused."""

    data: bytes
    pages: int
    refused_urls: tuple[str, ...] = ()


class ResourceRefused(RenderError):
    """A URL the report asked for is outside the allowed folders (logged, then skipped)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused to fetch {_short(url)}: {reason}")
        self.url = url
        self.reason = reason


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


def _w3c(moment: datetime) -> str:
    """A W3C date-time string (what WeasyPrint's metadata expects), in UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _naive_utc(moment: datetime) -> datetime:
    """WeasyPrint formats attachment dates with a literal ``Z``: give it UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


class UrlGuard:
    """Decides which URLs the renderer may read; records the refused ones."""

    def __init__(
        self, allowed_roots: Sequence[Path], spy: Callable[[str], None] | None = None
    ) -> None:
        self.roots = tuple(Path(root).resolve() for root in allowed_roots)
        self.spy = spy
        self.refused: list[str] = []

    def seen(self, url: str) -> None:
        """Tell the spy (if any) that ``url`` is fetched."""
        if self.spy is not None:
            self.spy(url)

    def local_path(self, url: str) -> Path | None:
        """The allowed file ``url`` names, ``None`` for a ``data:`` URI; raises if refused."""
        self.seen(url)
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return None
        if scheme != "file":
            raise self._refuse(url, f"the {scheme or 'relative'} scheme is not allowed")
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise self._refuse(url, "remote file hosts are not allowed")
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise self._refuse(url, "the file does not exist") from exc
        if not any(path.is_relative_to(root) for root in self.roots):
            raise self._refuse(url, "the file is outside the template and asset folders")
        if not path.is_file():
            raise self._refuse(url, "not a regular file")
        return path

    def _refuse(self, url: str, reason: str) -> ResourceRefused:
        self.refused.append(url)
        return ResourceRefused(url, reason)


@functools.cache
def _fetcher_classes() -> tuple[type[Any], type[Any]]:
    """A WeasyPrint ``URLFetcher`` subclass built on first use (keeps the import lazy)."""
    from reports.report import weasy

    assert weasy.weasyprint  # imported the quick way (see weasy.py) before the names below
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class GuardedFetcher(URLFetcher):  # type: ignore[misc]
        def __init__(self, guard: UrlGuard, inline: Sequence[InlineImage] = ()) -> None:
            # No redirects, only data: through urllib (files are read below, never fetched).
            super().__init__(allowed_protocols=("data",), allow_redirects=False)
            self.guard = guard
            self.inline = inline

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith(INLINE_SCHEME):
                image = self.inline[int(url.removeprefix(INLINE_SCHEME))]
                _guard_inline(self.guard, image)
                return URLFetcherResponse(url, image.data, {"Content-Type": image.mime}, 200)
            path = self.guard.local_path(url)
            if path is None:
                return super().fetch(url, headers)
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(
                path.as_uri(), path.read_bytes(), {"Content-Type": mime}, 200
            )

    class MemoryFetcher(URLFetcher):  # type: ignore[misc]
        """Serves our in-memory attachments (with their MIME type) and nothing else."""

        def __init__(self, items: Sequence[Attachment]) -> None:
            super().__init__(allowed_protocols=())
            self.items = items

        def fetch(self, url: str, headers: Any = None) -> Any:
            item = self.items[int(url.removeprefix(_MEMORY_SCHEME))]
            return URLFetcherResponse(url, item.data, {"Content-Type": item.mime}, 200)

    return GuardedFetcher, MemoryFetcher


_MEMORY_SCHEME = "ibl-attachment:"
def _guard_inline(guard: UrlGuard, image: InlineImage) -> None:
    """What the HTML said goes past the guard (and its spy) when WeasyPrint gets the image."""
    if image.late is None:
        guard.local_path(image.uri)
    else:  # laid out now from a stand-in, its pixels put in before writing
        guard.seen(image.uri)


def _seed_inline(images: dict[str, Any], inline: Sequence[InlineImage], guard: UrlGuard,
                 options: dict[str, Any]) -> None:
    """Put the inline PNGs in WeasyPrint's image cache as images it writes without decoding
    and compressing them again (``pngpass``); not if a style may turn images."""
    for index, image in enumerate(inline):
        if pngpass.seed(images, f"{INLINE_SCHEME}{index}", image.data, options):
            _guard_inline(guard, image)


@functools.cache
def font_config() -> Any:
    """One ``FontConfiguration`` per process: each new one leaks its native font map
    (~0.25 MB per render, measured over 80 renders by bench/longrun.py's method), so a
    long-lived worker rendering hundreds of reports grew without bound."""
    from reports.report.weasy import weasyprint

    return weasyprint.text.fonts.FontConfiguration()


def _identifier(html: str, metadata: PdfMetadata) -> bytes:
    seed = metadata.identifier or "\x1f".join(
        (metadata.title, _w3c(metadata.created), hashlib.sha256(html.encode()).hexdigest())
    )
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest().encode()


def html_to_pdf(
    html: str,
    *,
    base_dir: Path,
    allowed_roots: Sequence[Path],
    metadata: PdfMetadata,
    attachments: Sequence[Attachment] = (),
    url_fetcher_spy: Callable[[str], None] | None = None,
    late: LateImages | None = None,
) -> PdfResult:
    """Render ``html`` to a PDF/UA-1 file with ``attachments`` embedded; see the module doc.

    ``late``: images ``html`` names that are still being made (``lateimages``): laid out from
    their planned size, waited for (``late.arrive()``) when the write needs their pixels
    (``inlineimages.LateArrival``); the file is the one ``late.arrive().html`` gives, or
    ``LateImageMismatch`` is raised."""
    from reports.report.weasy import weasyprint  # lazy: importing it costs ~0.5 s of start-up

    guard = UrlGuard(allowed_roots, url_fetcher_spy)
    guarded_class, memory_class = _fetcher_classes()
    source_html, inline = lift_inline_images(html, late)
    fetcher = guarded_class(guard, inline)
    memory = memory_class(attachments)
    created = metadata.created
    modified = metadata.modified or created
    try:
        with gcpause.paused():
            source = weasyprint.HTML(
                string=source_html, base_url=str(base_dir) + os.sep, url_fetcher=fetcher
            )
            images: dict[str, Any] = {}  # WeasyPrint's image cache, by URL
            styles = stylecache.take_styles(source)
            if styles is not None and "image-orientation" not in source_html:
                _seed_inline(images, inline, guard,
                             {**weasyprint.DEFAULT_OPTIONS, "pdf_variant": PDF_VARIANT})
            document = source.render(
                pdf_variant=PDF_VARIANT, font_config=font_config(),
                stylesheets=styles, cache=images,
            )
            arrival = None
            if late is not None:
                arrival = LateArrival(late, source_html, inline, images)
                if late.wait_before_write or not arrival.arm():
                    arrival.wait()  # before the write (or an image cannot say when it is needed)
            info = document.metadata
            info.title = metadata.title
            info.authors = [metadata.author] if metadata.author else []
            info.description = metadata.subject
            info.keywords = list(metadata.keywords)
            info.generator = GENERATOR
            info.created = _w3c(created)
            info.modified = _w3c(modified)
            info.lang = metadata.lang
            info.attachments = []  # only ours, never <link rel=attachment> from the HTML
            pdf_attachments = [
                weasyprint.Attachment(
                    url=f"{_MEMORY_SCHEME}{index}",
                    url_fetcher=memory,
                    name=item.name,
                    description=item.description,
                    created=_naive_utc(created),
                    modified=_naive_utc(modified),
                    relationship="Data",
                )
                for index, item in enumerate(attachments)
            ]
            options: dict[str, Any] = {
                "pdf_variant": PDF_VARIANT, "attachments": pdf_attachments,
                "optimize_images": False, "uncompressed_pdf": False,
            }
            written = document.write_pdf(pdf_identifier=False, **options)
            if arrival is not None:  # waited for during the write, or now (none was drawn)
                html = arrival.wait()
            identifier = _identifier(html, metadata)
            # The /ID is added to the written file (fileid.py): pydyf would serialise every
            # object twice to compute it. Not the layout expected? Then pydyf does it.
            data = fileid.with_file_id(written, identifier) or document.write_pdf(
                pdf_identifier=identifier, **options)
    except RenderError:
        raise
    except Exception as exc:  # WeasyPrint raises many kinds; keep the first line for the user
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RenderError(f"the PDF could not be rendered: {first}") from exc
    return PdfResult(data=data, pages=len(document.pages), refused_urls=tuple(guard.refused))
