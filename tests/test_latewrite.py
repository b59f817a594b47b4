"""The one-shot's PDF child writes all it can before the charts are in (``inlineimages``)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from reports.config import ReportConfig
from reports.execute.warmups import pdf_warm_up
from reports.report.build import RenderJob, render_charts, render_report
from reports.report.privacy import PSEUDONYMOUS, Policy
from reports.report.warmup import warm_job


def _job(**changes: object) -> RenderJob:
    report = ReportConfig(name="acme-weekly", org="acme-university", period="weekly",
                          schedule="0 6 * * 1", display_name="Acme University")
    return dataclasses.replace(
        warm_job(report, None, Policy(PSEUDONYMOUS, 10, True)), chart_dpi=50, **changes)


def _split_and_whole(job: RenderJob, **options: bool) -> tuple[list[list[str]], bytes, bytes]:
    """The PDF rendered with its charts late, and in one go; the call stack each time the
    charts were asked for."""
    charted = render_charts(job)
    stacks: list[list[str]] = []

    def later() -> tuple[object, ...]:
        stacks.append([frame.function for frame in inspect.stack()])
        return charted.charts

    return stacks, render_report(job, charts_later=later, **options).pdf, render_report(job).pdf


def test_the_charts_are_waited_for_once_the_pages_are_drawn_and_the_fonts_subset() -> None:
    """WeasyPrint asks for an image's pixels when it writes the images, after drawing every
    page and subsetting the fonts: only then does the PDF child wait for the charts."""
    stacks, split, whole = _split_and_whole(_job())
    assert len(stacks) == 1 and "get_x_object" in stacks[0] and "generate_pdf" in stacks[0]
    assert split == whole


def _charts_partial(folder: Path, markup: str) -> Path:
    partials = folder / "partials"
    partials.mkdir()
    (partials / "charts.html.j2").write_text(
        '{% for chart in charts %}' + markup + '{% endfor %}', "utf-8")
    return folder


def test_charts_in_a_document_whose_images_cannot_wait_are_waited_for_before_the_write(
        tmp_path: Path) -> None:
    """A style that says ``image-orientation`` keeps the images out of the pass-through cache
    (``pngpass``): WeasyPrint's own images cannot say when their pixels are needed, so the
    charts are waited for before the write. Same file."""
    folder = _charts_partial(tmp_path, '<img src="{{ chart.data_uri }}" alt="{{ chart.alt }}">'
                                       '<style>img { image-orientation: none }</style>')
    stacks, split, whole = _split_and_whole(_job(templates_dir=folder))
    assert len(stacks) == 1 and "generate_pdf" not in stacks[0]
    assert split == whole


def test_charts_that_are_not_drawn_are_still_waited_for_and_checked(tmp_path: Path) -> None:
    """Hidden charts: WeasyPrint never needs their pixels; the charts are waited for after the
    write all the same (their error, or a document that differs, would stop the render)."""
    folder = _charts_partial(tmp_path, '<img class=hidden src="{{ chart.data_uri }}" '
                                       'alt="{{ chart.alt }}"><style>.hidden { display: none }'
                                       '</style>')
    stacks, split, whole = _split_and_whole(_job(templates_dir=folder))
    assert len(stacks) == 1 and "generate_pdf" not in stacks[0]
    assert "html_to_pdf" in stacks[0]
    assert split == whole


def test_a_warm_up_report_waits_for_its_charts_right_after_the_layout() -> None:
    """The PDF child's warm-up report stops when the job is waiting, at its charts
    (``charts_unless_job``): it asks for them before drawing any page, or the job would wait
    for the warm-up's drawing and font subsetting too."""
    job = _job()
    stacks, split, whole = _split_and_whole(job, wait_before_write=True)
    assert len(stacks) == 1 and "generate_pdf" not in stacks[0] and split == whole
    (step,) = pdf_warm_up(job)
    assert step.keywords["wait_before_write"] is True
