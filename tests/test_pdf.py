"""The PDF stage: resource guard, reproducible metadata, tagging, bookmarks, attachments."""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import os
import re
import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pdfplumber
import pypdf
import pytest

from reports.report.pdf import Attachment, PdfMetadata, PdfResult, html_to_pdf

META = PdfMetadata(
    title="Weekly report: Acme",
    author="ibl.ai",
    subject="Learning activity 2026-11-09 to 2026-11-15",
    created=datetime(2026, 11, 15, 23, 59, 59, tzinfo=UTC),
    keywords=("acme", "weekly"),
    identifier="acme/weekly/2026-11-09_2026-11-15",
)


def png(width: int = 4, height: int = 3) -> bytes:
    """A small valid grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def page(body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ignored</title>'
        "<style>h2 { bookmark-level: 1 } img { width: 2cm }</style></head>"
        f"<body>{body}</body></html>"
    )


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "chart.png").write_bytes(png())
    (folder / "style.css").write_text("p { color: #333 }")
    return folder


def render(html: str, assets: Path, **kwargs: object) -> PdfResult:
    return html_to_pdf(
        html, base_dir=assets, allowed_roots=[assets], metadata=META, **kwargs  # type: ignore[arg-type]
    )


def image_count(result: PdfResult) -> int:
    with pdfplumber.open(io.BytesIO(result.data)) as pdf:
        return sum(len(p.images) for p in pdf.pages)


def test_allowed_files_and_data_uris_are_served(assets: Path) -> None:
    data_uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    seen: list[str] = []
    result = render(
        page(
            '<link rel="stylesheet" href="style.css">'
            f'<img src="chart.png"><img src="{data_uri}">'
        ),
        assets,
        url_fetcher_spy=seen.append,
    )
    assert result.refused_urls == ()
    assert image_count(result) == 2
    assert (assets / "chart.png").as_uri() in seen
    assert (assets / "style.css").as_uri() in seen
    assert data_uri in seen  # handed to WeasyPrint decoded (lift_inline_images), still guarded


def test_refused_urls_are_skipped_and_recorded(assets: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(png())
    (tmp_path / "other.png").write_bytes(png())
    (assets / "link.png").symlink_to(outside)
    urls = [
        "http://127.0.0.1:9/chart.png",
        "https://example.invalid/chart.png",
        "ftp://example.invalid/chart.png",
        outside.as_uri(),
        "link.png",  # a symlink inside the folder that points outside it
        "../other.png",
        f"{assets.as_uri()}/../secret.png",
        "file://otherhost/etc/hosts",
        "missing.png",
    ]
    seen: list[str] = []
    body = "".join(f'<img src="{url}">' for url in urls) + "<p>still rendered</p>"
    result = render(page(body), assets, url_fetcher_spy=seen.append)
    assert result.pages == 1
    assert image_count(result) == 0
    assert len(result.refused_urls) == len(urls)
    assert "http://127.0.0.1:9/chart.png" in result.refused_urls
    assert outside.as_uri() in result.refused_urls
    assert seen == list(result.refused_urls)
    text = pypdf.PdfReader(io.BytesIO(result.data)).pages[0].extract_text()
    assert "still rendered" in text


def test_render_runs_without_cyclic_gc_and_gives_it_back(assets: Path) -> None:
    """The collector is paused inside a render (speed) and never left off for the caller."""
    states: list[bool] = []
    render(page('<img src="chart.png">'), assets, url_fetcher_spy=lambda _: states.append(
        gc.isenabled()))
    assert states == [False]
    assert gc.isenabled()

    def interrupt(_url: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(page('<img src="chart.png">'), assets, url_fetcher_spy=interrupt)
    assert gc.isenabled()

    gc.disable()  # a caller that turned it off keeps it off
    try:
        render(page("<p>x</p>"), assets)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_same_input_gives_identical_bytes(assets: Path) -> None:
    html = page('<h2>Summary</h2><img src="chart.png"><table><tr><td>1</td></tr></table>')
    csv = [Attachment("courses.csv", b"a,b\r\n1,2\r\n", "text/csv", "Courses")]
    first = render(html, assets, attachments=csv)
    second = render(html, assets, attachments=csv)
    assert first.data == second.data
    other = html_to_pdf(
        html,
        base_dir=assets,
        allowed_roots=[assets],
        metadata=PdfMetadata(
            title=META.title, author=META.author, subject=META.subject,
            created=datetime(2026, 11, 22, tzinfo=UTC), identifier="acme/weekly/next",
        ),
        attachments=csv,
    )
    assert other.data != first.data


def test_metadata_comes_from_the_input_not_the_clock(assets: Path) -> None:
    result = render(page("<p>x</p>"), assets)
    reader = pypdf.PdfReader(io.BytesIO(result.data))
    info = reader.metadata
    assert info is not None
    assert info.title == "Weekly report: Acme"
    assert info.author == "ibl.ai"
    assert info.subject == "Learning activity 2026-11-09 to 2026-11-15"
    assert info["/Keywords"] == "acme, weekly"
    assert info["/CreationDate"] == "D:20261115235959Z"
    assert info["/ModDate"] == "D:20261115235959Z"
    assert reader.trailer["/ID"][0] == reader.trailer["/ID"][0]  # present


def test_pdf_is_tagged_with_bookmarks_and_language(assets: Path) -> None:
    html = page(
        "<h2>Summary</h2><p>a</p>"
        '<h2 style="break-before: page">Courses</h2><table><tr><th>Course</th></tr>'
        "<tr><td>Intro</td></tr></table>"
    )
    result = render(html, assets)
    reader = pypdf.PdfReader(io.BytesIO(result.data))
    root = reader.trailer["/Root"]
    assert "/StructTreeRoot" in root
    assert bool(root["/MarkInfo"]["/Marked"])
    assert root["/Lang"] == "en"
    assert [item.title for item in reader.outline] == ["Summary", "Courses"]  # type: ignore[union-attr]
    assert result.pages == 2 == len(reader.pages)
    assert b"pdfuaid:part" in root["/Metadata"].get_object().get_data()


def test_attachments_read_back_and_nothing_else_is_attached(assets: Path) -> None:
    html = page(
        '<link rel="attachment" href="style.css" title="sneaky">'
        '<link rel="attachment" href="data:text/plain,hello">'
        "<p>Report</p>"
    )
    files = [
        Attachment("courses.csv", "\ufeffid,name\r\nc1,Café\r\n".encode(), "text/csv", "Courses"),
        Attachment("active_users.csv", b"username\r\nada\r\n", "text/csv", "All users"),
    ]
    result = render(html, assets, attachments=files)
    reader = pypdf.PdfReader(io.BytesIO(result.data))
    assert dict(reader.attachments) == {
        "courses.csv": [files[0].data],
        "active_users.csv": [files[1].data],
    }
    described = {item.name: item for item in reader.attachment_list}
    assert described["courses.csv"].subtype == "/text/csv"
    assert described["active_users.csv"].description == "All users"


def test_no_attachments_means_none_embedded(assets: Path) -> None:
    result = render(page("<p>x</p>"), assets)
    assert dict(pypdf.PdfReader(io.BytesIO(result.data)).attachments) == {}


_RENDER_IN_CHILD = """
import hashlib, sys
from datetime import UTC, datetime
from pathlib import Path
from reports.report.pdf import Attachment, PdfMetadata, html_to_pdf
folder = Path(sys.argv[1])
html = ('<html lang="en"><body><h2 style="bookmark-level: 1">Summary</h2>'
        '<img src="chart.png"><table><tr><td>Zoë</td><td>42</td></tr></table></body></html>')
meta = PdfMetadata(title="T", author="A", subject="S", created=datetime(2026, 11, 15, tzinfo=UTC))
result = html_to_pdf(html, base_dir=folder, allowed_roots=[folder], metadata=meta,
                     attachments=[Attachment("a.csv", b"x,y\\r\\n", "text/csv", "A")])
print(hashlib.sha256(result.data).hexdigest())
print(type(sys.modules["fontTools.subset"]).__name__)
"""


def test_identical_bytes_across_processes(assets: Path) -> None:
    """Two interpreters give the same file; neither ran ``fontTools.subset`` (WeasyPrint's
    fallback subsetter, loaded on first use by ``weasy``: HarfBuzz subsets our fonts)."""
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _RENDER_IN_CHILD, str(assets)],
            env=env, capture_output=True, text=True, check=True, timeout=120,
        )
        digest, subset_module = done.stdout.split()
        digests.add(digest)
        assert subset_module == "_LazyModule"
    assert len(digests) == 1


def test_a_module_loaded_on_first_use_runs_when_first_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``weasy.load_on_first_use``: the module is importable at once and runs only when one of
    its attributes is read (so WeasyPrint's fallback subsetter still works when needed)."""
    from reports.report.weasy import load_on_first_use

    (tmp_path / "ibl_lazy_probe").mkdir()
    (tmp_path / "ibl_lazy_probe" / "__init__.py").write_text("")
    ran = tmp_path / "ran"
    (tmp_path / "ibl_lazy_probe" / "sub.py").write_text(
        f"from pathlib import Path\nPath({str(ran)!r}).write_text('yes')\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("ibl_lazy_probe.sub", "ibl_lazy_probe"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    load_on_first_use(("ibl_lazy_probe.sub", "ibl_lazy_probe.missing"))
    from ibl_lazy_probe import sub  # type: ignore[import-not-found]

    assert not ran.exists() and "ibl_lazy_probe.missing" not in sys.modules
    assert sub.VALUE == 42 and ran.read_text() == "yes"


def test_the_file_id_is_where_pydyf_puts_it_with_a_hash_of_the_file(assets: Path) -> None:
    """``fileid`` stamps the /ID into the finished file (pydyf would serialise every object
    twice for it): the result is pydyf's own file but for the /ID's second, content half."""
    from reports.report import fileid
    from reports.report.pdf import PDF_VARIANT
    from reports.report.weasy import weasyprint

    document = weasyprint.HTML(string=page("<h2>A</h2><p>x</p>")).render(pdf_variant=PDF_VARIANT)
    first = b"0123456789abcdef0123456789abcdef"
    theirs = document.write_pdf(pdf_variant=PDF_VARIANT, pdf_identifier=first)
    plain = document.write_pdf(pdf_variant=PDF_VARIANT, pdf_identifier=False)
    ours = fileid.with_file_id(plain, first)
    digest = hashlib.md5(plain).hexdigest().encode()
    assert ours == re.sub(rb"(/ID \[\(" + first + rb"\) \()[0-9a-f]{32}",
                          lambda m: m.group(1) + digest, theirs)
    reader = pypdf.PdfReader(io.BytesIO(ours), strict=True)
    assert reader.trailer["/ID"][0] == first.decode() and len(reader.pages) == 1
    # Not laid out as pydyf writes it (a classic trailer): left to pydyf.
    classic = document.write_pdf(pdf_variant=PDF_VARIANT, uncompressed_pdf=True)
    assert fileid.with_file_id(classic, first) is None
    # What html_to_pdf writes: the metadata's id, then the MD5 of the file without the /ID.
    result = render(page("<p>x</p>"), assets)
    first_id, content = (str(x) for x in pypdf.PdfReader(io.BytesIO(result.data)).trailer["/ID"])
    stamp = f"/ID [({first_id}) ({content})]".encode()
    assert result.data.count(stamp) == 1
    assert hashlib.md5(result.data.replace(stamp, b"")).hexdigest() == content


def test_a_function_imported_by_name_imports_its_module_on_first_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``weasy.imported_on_first_call``: ``from module import function`` inside the block runs
    nothing (not even the package); the first call imports the real module; after the block a
    new import gets the real module, not the stand-in."""
    from reports.report.weasy import imported_on_first_call

    (tmp_path / "ibl_call_probe").mkdir()
    (tmp_path / "ibl_call_probe" / "__init__.py").write_text("")
    ran = tmp_path / "ran"
    (tmp_path / "ibl_call_probe" / "sub.py").write_text(
        f"from pathlib import Path\nPath({str(ran)!r}).write_text('yes')\n"
        "def twice(x):\n    return 2 * x\nOTHER = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("ibl_call_probe.sub", "ibl_call_probe"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with imported_on_first_call((("ibl_call_probe.sub", "twice"),)):
        from ibl_call_probe.sub import twice  # type: ignore[import-not-found]
    assert not ran.exists() and "ibl_call_probe" not in sys.modules
    assert "ibl_call_probe.sub" not in sys.modules
    assert twice(21) == 42 and ran.read_text() == "yes"
    from ibl_call_probe.sub import OTHER

    assert OTHER == 7


def test_weasyprint_calls_the_variable_font_instancer_through_the_stand_in() -> None:
    """WeasyPrint imports ``instantiateVariableFont`` by name from the module deferred in
    ``weasy.CALLED_ON_FIRST_USE``; what it holds is fontTools' function or the stand-in that
    calls it (same result, same errors)."""
    from reports.report.weasy import CALLED_ON_FIRST_USE, weasyprint

    fonts = weasyprint.pdf.fonts
    assert CALLED_ON_FIRST_USE == (
        ("fontTools.varLib.instancer", "instantiateVariableFont"),)
    held = fonts.instantiateVariableFont
    from fontTools.ttLib import TTFont
    from fontTools.varLib import instancer

    assert held is instancer.instantiateVariableFont or (
        getattr(held, "__module__", "") == "reports.report.weasy"
        and held.__name__ == "instantiateVariableFont")
    static = TTFont("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    with pytest.raises(ValueError, match="fvar") as ours:
        held(static, {"wght": 400})
    with pytest.raises(ValueError) as theirs:
        instancer.instantiateVariableFont(static, {"wght": 400})
    assert str(ours.value) == str(theirs.value)
    assert not getattr(sys.modules["fontTools.varLib.instancer"], "__ibl_stand_in__", False)
