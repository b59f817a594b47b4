"""Hostile names and hostile templates: names are printed literally (never interpreted), the
renderer reads nothing outside the templates, and a runaway template is stopped by the worker."""

from __future__ import annotations

import dataclasses
import io
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from html import escape as html_escape
from pathlib import Path

import pypdf
import pytest

from reports.report.analysis import analyse
from reports.report.build import TEMPLATES_DIR
from reports.report.charts import make_charts
from reports.report.csvdata import csv_attachments
from reports.report.longnames import NAME_LIMIT
from reports.report.model import ActiveUser, CourseActivity
from reports.report.pdf import PdfMetadata, html_to_pdf
from reports.report.render import Branding, render_html
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi
from tests._e2e import API_KEY
from tests._sample import realistic
from tests.hostile import (
    ARCHIVED,
    assert_failed_cleanly,
    generate,
    hostile_config,
    send,
)

HOSTILE = (
    '<img src="file:///etc/passwd">',
    '<link href="http://169.254.169.254/latest/meta-data/">',
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "$x$ and Ba$$in",
    "abc\u202edcba",
    "nul\x00byte",
    "Emoji \U0001f393\U0001f4ca",
)
LONG = "W" * 10_000
CLIPPED = "W" * 199 + "\u2026"
"""LONG as the report shows it (``longnames.NAME_LIMIT`` characters with the ellipsis)."""

Start = Callable[..., RunningApi]


def squash(text: str) -> str:
    """PDF text without whitespace (the extractor breaks long cells over lines)."""
    return re.sub(r"[\s\x00]+", "", text)


def test_hostile_names_from_the_api_are_printed_literally(
    tmp_path: Path, api_server: Start
) -> None:
    api = api_server(MockKnobs(courses=5, users=50, token=API_KEY,
                               course_names=(*HOSTILE[:4], LONG), user_names=HOSTILE))
    # Named, with the learner list: the hostile user names must be printed literally too.
    config = hostile_config(tmp_path, api_url=api.url,
                            report_extra='learners = "named"\nattach_learner_list = true')
    proc = generate(config, "--html", "report.html")
    assert proc.returncode == 0, proc.stderr

    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    # Escaped, never markup or template syntax: no tag from a name, no evaluated expression.
    assert '<img src="file:' not in html and "<link href=\"http://169" not in html
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html
    assert "{{ 7*7 }}" in html
    assert "loop" not in html.replace("{% for x in range(3) %}loop{% endfor %}", "")
    assert proc.stderr.count("Traceback") == 0

    reader = pypdf.PdfReader(tmp_path / ARCHIVED)
    text = squash("\n".join(page.extract_text() or "" for page in reader.pages))
    shown = [n for n in HOSTILE[:5] if html_escape(n) in html]
    assert len(shown) >= 3, shown  # enough of them made it into the tables to mean something
    for name in shown:
        assert squash(name) in text, name
    assert "nulbyte" in text  # the NUL is dropped, the rest of the name kept
    # The 10,000-character course name is clipped to 200 characters before layout (longnames),
    # not printed over dozens of pages (courses.csv keeps it whole: the next test).
    assert len(reader.pages) <= 5
    assert CLIPPED in text and "W" * 200 not in text
    assert CLIPPED in html and "W" * 200 not in html
    # Nothing attached that we did not attach.
    assert set(reader.attachments) == {"courses.csv", "active_users.csv",
                                       "daily_enrollments.csv"}


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # emoji in chart labels
def test_the_renderer_asks_for_nothing_outside_the_templates() -> None:
    data = realistic()
    courses = tuple(
        dataclasses.replace(c, name=HOSTILE[i % len(HOSTILE)] if i else LONG)
        for i, c in enumerate(data.courses)
    )
    users = tuple(
        dataclasses.replace(u, name=HOSTILE[i % len(HOSTILE)]) for i, u in enumerate(data.users)
    )
    data = dataclasses.replace(data, courses=courses, users=users)
    assert all(isinstance(c, CourseActivity) for c in courses)
    assert all(isinstance(u, ActiveUser) for u in users)
    analysis = analyse(data, top_n=15)
    html = render_html(
        # The charts' resolution plays no part in what the renderer fetches (dpi 40: 0.3 s, not 2).
        analysis, make_charts(analysis, accent="#0072B2", locale="en", dpi=40),
        Branding(org_name='Acme <img src="file:///etc/passwd">'),
        templates_dir=None, generated_on=date(2026, 11, 26),
    )
    asked: list[str] = []
    result = html_to_pdf(
        html, base_dir=TEMPLATES_DIR, allowed_roots=[TEMPLATES_DIR],
        metadata=PdfMetadata(title="t", author="a", subject="s",
                             created=datetime(2026, 11, 22, tzinfo=UTC)),
        attachments=csv_attachments(data), url_fetcher_spy=asked.append,
    )
    assert result.pages >= 1
    root = TEMPLATES_DIR.resolve().as_uri()
    outside = [u for u in asked if not (u.startswith("data:") or u.startswith(root + "/"))]
    assert outside == []
    reader = pypdf.PdfReader(io.BytesIO(result.data))
    assert set(reader.attachments) == {a.name for a in csv_attachments(data)}
    # Readable: the long name is clipped before layout (a few pages, not a dozen of one cell),
    # in the tables and the sentences alike; the CSV attachment keeps it whole.
    assert result.pages <= 5
    text = squash("\n".join(page.extract_text() or "" for page in reader.pages))
    assert CLIPPED in text and "W" * 200 not in text
    assert all(len(row.name) <= NAME_LIMIT for row in (*analysis.top_courses, *analysis.movers))
    assert LONG in reader.attachments["courses.csv"][0].decode("utf-8-sig")


def _override(tmp_path: Path, body: str) -> str:
    folder = tmp_path / "my-templates"
    folder.mkdir()
    (folder / "report.html.j2").write_text(body, encoding="utf-8")
    return f'[templates]\ndir = "{folder}"\n'


def test_a_template_that_renders_forever_is_stopped_and_nothing_is_sent(
    tmp_path: Path, api_server: Start
) -> None:
    api = api_server(MockKnobs(courses=5, users=50, token=API_KEY))
    rows = "{% for i in range(50000) %}<tr><td>{{ i }}</td><td>row {{ i }}</td></tr>{% endfor %}"
    top = _override(tmp_path, f"<html><body><table>{rows}</table></body></html>")
    config = hostile_config(tmp_path, api_url=api.url, top=top)
    text = config.read_text().replace("timeout_s = 60", "timeout_s = 3")
    config.write_text(text)
    t0 = time.monotonic()
    proc = send(config)
    assert time.monotonic() - t0 < 60  # the 3 s limit plus start-up and fetch on a loaded machine
    assert_failed_cleanly(proc, tmp_path, "3 s", "stopped")


def test_a_template_that_eats_memory_is_stopped_and_nothing_is_archived(
    tmp_path: Path, api_server: Start
) -> None:
    api = api_server(MockKnobs(courses=5, users=50, token=API_KEY))
    top = _override(tmp_path, '{% set blob = "x" * 4000000000 %}<html>{{ blob|length }}</html>')
    config = hostile_config(tmp_path, api_url=api.url, top=top)
    config.write_text(config.read_text().replace("memory_mb = 1500", "memory_mb = 700"))
    proc = send(config)
    assert_failed_cleanly(proc, tmp_path, "memory", "700 MiB")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('<img src="file:///etc/passwd"><p>hi</p>', id="file-url"),
        pytest.param('<link rel="stylesheet" href="http://169.254.169.254/x.css"><p>hi</p>',
                     id="metadata-url"),
        pytest.param('<link rel="attachment" href="file:///etc/passwd"><p>hi</p>',
                     id="attachment-link"),
    ],
)
def test_a_template_override_cannot_pull_in_outside_files(
    tmp_path: Path, api_server: Start, body: str
) -> None:
    api = api_server(MockKnobs(courses=5, users=50, token=API_KEY))
    config = hostile_config(tmp_path, api_url=api.url, top=_override(tmp_path, body))
    proc = generate(config)
    if proc.returncode == 0:
        pdf = (tmp_path / ARCHIVED).read_bytes()
        assert b"root:x:0:0" not in pdf
        assert set(pypdf.PdfReader(tmp_path / ARCHIVED).attachments) <= {
            "courses.csv", "active_users.csv", "daily_enrollments.csv"}
    else:
        assert_failed_cleanly(proc, tmp_path, "refused")
