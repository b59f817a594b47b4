"""PNG images go into the PDF as they are (``pngpass``): the same pixels, WeasyPrint's own path
for every PNG a PDF cannot take as it is."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pypdf
import pytest
from PIL import Image, ImageDraw

from reports.report.pdf import PdfMetadata, html_to_pdf
from reports.report.pngpass import idat

META = PdfMetadata(
    title="t", author="a", subject="s", created=datetime(2026, 11, 15, tzinfo=UTC),
    identifier="acme/weekly/png",
)


def picture(mode: str = "RGB", size: tuple[int, int] = (90, 40)) -> Image.Image:
    """A small chart-like image: a gradient, lines and text, so every PNG filter shows up."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for x in range(size[0]):
        draw.line([(x, size[1] - 1), (x, size[1] - 1 - (x * 7) % size[1])],
                  fill=(x * 3 % 256, 90, 200 - x % 100))
    draw.text((4, 4), "Logins 42", fill=(20, 20, 20))
    return image.convert(mode)


def encoded(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def render(png: bytes, folder: Path) -> pypdf.PdfReader:
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    html = ('<!doctype html><html lang="en"><head><title>t</title>'
            '<style>img { width: 6cm }</style></head>'
            f'<body><p>chart</p><img alt="a chart" src="{uri}"></body></html>')
    result = html_to_pdf(html, base_dir=folder, allowed_roots=[folder], metadata=META)
    return pypdf.PdfReader(io.BytesIO(result.data))


def only_image(reader: pypdf.PdfReader) -> pypdf.generic.StreamObject:
    xobjects = reader.pages[0]["/Resources"]["/XObject"]
    [stream] = [ref.get_object() for ref in xobjects.values()]
    return stream


def test_an_rgb_png_is_written_as_its_own_idat_data_with_the_same_pixels(
    tmp_path: Path,
) -> None:
    source = picture()
    png = encoded(source, compress_level=1)  # as the charts are saved
    stream = only_image(render(png, tmp_path))
    found = idat(png)
    assert found is not None
    assert stream._data == found[3]  # passed through, not decoded and compressed again
    assert stream["/Filter"] == "/FlateDecode"
    assert stream["/DecodeParms"]["/Predictor"] == 15
    decoded = Image.frombytes("RGB", source.size, stream.get_data())
    assert decoded.tobytes() == source.tobytes()


@pytest.mark.parametrize(
    ("label", "png"),
    [
        ("rgba", encoded(picture("RGBA"))),
        ("palette", encoded(picture("P"))),
        ("grey with alpha", encoded(picture("LA"))),
    ],
)
def test_other_pngs_take_weasyprints_own_path_with_the_same_pixels(
    label: str, png: bytes, tmp_path: Path,
) -> None:
    assert idat(png) is None, label
    stream = only_image(render(png, tmp_path))
    expected = Image.open(io.BytesIO(png))
    mode = "L" if stream["/ColorSpace"] == "/DeviceGray" else "RGB"
    decoded = Image.frombytes(mode, expected.size, stream.get_data())
    assert decoded.tobytes() == expected.convert(mode).tobytes(), label


def with_header(png: bytes, depth: int, colour: int, interlace: int) -> bytes:
    """``png`` with another IHDR (Pillow writes no interlaced or 16-bit RGB files)."""
    data = struct.pack(">IIBBBBB", 90, 40, depth, colour, 0, 0, interlace)
    chunk = struct.pack(">I", 13) + b"IHDR" + data + struct.pack(">I", zlib.crc32(b"IHDR" + data))
    return png[:8] + chunk + png[8 + 25:]


def test_idat_reads_only_pngs_a_pdf_takes_as_they_are() -> None:
    grey = encoded(picture("L"))
    found = idat(grey)
    assert found is not None and found[:3] == ("L", 90, 40)
    assert idat(with_header(grey, 8, 0, 0)) == found
    assert idat(with_header(grey, 8, 0, 1)) is None  # interlaced
    assert idat(with_header(grey, 16, 2, 0)) is None  # 16 bits a sample
    assert idat(with_header(grey, 8, 6, 0)) is None  # RGBA
    assert idat(b"GIF89a") is None
    assert idat(grey[:40]) is None  # cut short
    assert idat(encoded(picture(), transparency=(255, 255, 255))) is None
    assert idat(encoded(picture("P"))) is None


@pytest.mark.parametrize("styled_by", ["style", "link"])
def test_an_image_orientation_in_the_styles_still_turns_the_image(
    styled_by: str, tmp_path: Path,
) -> None:
    """An image from the cache is not turned by WeasyPrint: such documents take its path."""
    rule = "img { image-orientation: 90deg; width: 3cm }"
    (tmp_path / "turn.css").write_text(rule)
    head = f"<style>{rule}</style>" if styled_by == "style" else (
        '<link rel="stylesheet" href="turn.css">')
    uri = "data:image/png;base64," + base64.b64encode(encoded(picture())).decode()
    html = (f'<!doctype html><html lang="en"><head><title>t</title>{head}</head>'
            f'<body><img alt="a chart" src="{uri}"></body></html>')
    result = html_to_pdf(html, base_dir=tmp_path, allowed_roots=[tmp_path], metadata=META)
    stream = only_image(pypdf.PdfReader(io.BytesIO(result.data)))
    assert (stream["/Width"], stream["/Height"]) == (40, 90)  # turned: 90 x 40 at the source
