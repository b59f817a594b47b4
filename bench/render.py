"""Benchmark the render stages in one warm process against a warm Chromium printing the same HTML.

    uv run python bench/render.py --json [--html-out FILE] [--runs N] [--no-chromium]

Renders the demo org's weekly report (config.toml's first weekly report, data from the embedded
demo API, a fixed as-of date) ``N`` times after one warm-up run and prints the median time of
each stage. Each run is handled like a job of a pool worker: the cyclic GC is paused during it and
one collection follows (``gc_settle``, not part of any stage). ``pdf_without_charts`` is the PDF
stage of the same HTML with its ``<img>`` elements removed (the floor without the charts). If
``reports.report.render`` is not available it falls back to a representative HTML of its
own (same charts, tables of 15-50 rows).

The comparison prints the SAME HTML to PDF with a warm headless Chromium (one browser, one page,
``set_content`` + ``pdf`` per run), tagged with an outline like ours (``chromium_pdf_median_ms``,
the ratio's denominator) and plain (``chromium_untagged_pdf_median_ms``). The two are
**interleaved run by run** (our render of run i, then Chromium's tagged and plain prints of that
run's HTML, both warmed by an unmeasured first run), so a change of the machine's load hits both
sides alike: ``ratio_pdf_vs_chromium`` is the ratio of the medians, ``ratio_pairs_median`` the
median of the per-run ratios. Beside wall time the JSON has CPU time: this process's
(``time.process_time``) for our PDF stage, and for Chromium the CPU of the browser's whole process
tree (browser, renderer, GPU and utility processes, from ``/proc``; the Playwright driver is not
counted), so a busy machine shows as wall time well above CPU time. It needs Debian's
``chromium`` package (``apt-get install -y chromium``) and the ``playwright`` dev dependency;
without them the Chromium numbers are ``null``. CI does not run benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import html as html_lib
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.config import ReportConfig, load_config  # noqa: E402
from reports.report import gcpause  # noqa: E402
from reports.report.analysis import Analysis, analyse  # noqa: E402
from reports.report.charts import Chart, make_charts  # noqa: E402
from reports.report.csvdata import csv_attachments  # noqa: E402
from reports.report.model import ReportData  # noqa: E402
from reports.report.pdf import PdfMetadata, html_to_pdf  # noqa: E402
from reports.report.periods import for_kind  # noqa: E402

AS_OF = date(2026, 11, 18)
TEMPLATES = ROOT / "templates"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def demo_data() -> tuple[ReportConfig, ReportData]:
    """The demo org's weekly report data, collected once from the embedded demo API."""
    from reports.run import collect_data

    config = load_config(ROOT / "config.toml")
    report = next(r for r in config.reports if r.period == "weekly")
    period = for_kind(report.period, AS_OF)
    data = asyncio.run(collect_data(config, report, period, env=dict(os.environ)))
    return report, data


def render_html(report: ReportConfig, analysis: Analysis, charts: list[Chart]) -> str:
    """The report HTML: the real template when present, else a representative one."""
    try:
        from reports.report.render import Branding
        from reports.report.render import render_html as real_render
    except ImportError:
        return fallback_html(report, analysis, charts)
    branding = Branding(
        org_name=report.display_name or report.org, logo=report.logo,
        accent_color=report.accent_color,
    )
    return real_render(
        analysis, charts, branding, templates_dir=None, generated_on=AS_OF,
        locale=report.locale,
    )


_CSS = """
@page { size: A4; margin: 18mm 16mm 20mm;
        @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 8pt } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9.5pt; color: #222 }
h1 { bookmark-level: none; font-size: 18pt }
h2 { bookmark-level: 1; font-size: 13pt; border-bottom: 2px solid #0072B2; break-after: avoid }
table { width: 100%; border-collapse: collapse; table-layout: fixed; margin-bottom: 8mm }
th, td { padding: 2px 4px; border-bottom: 1px solid #ddd; text-align: left;
         overflow-wrap: anywhere }
td.n, th.n { text-align: right } tr { break-inside: avoid }
img { width: 100%; height: auto }
"""


def _table(header: list[str], rows: list[list[Any]], numeric: set[int]) -> str:
    def cells(tag: str, values: list[Any]) -> str:
        return "".join(
            f'<{tag}{" class=n" if i in numeric else ""}>'
            f'{html_lib.escape("" if v is None else str(v))}</{tag}>'
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def fallback_html(report: ReportConfig, a: Analysis, charts: list[Chart]) -> str:
    """A report-like page: 3 charts, courses (15), users (50) and daily (7 rows) tables."""
    figures = "".join(
        f'<h2>{html_lib.escape(c.title)}</h2><figure><img src="{c.data_uri}" '
        f'alt="{html_lib.escape(c.alt)}"></figure>'
        for c in charts
    )
    courses = _table(
        ["Course", "Active", "Previous", "Enrolled", "Unenrolled"],
        [[c.name, c.users, c.previous_users, c.enrollments, c.unenrollments]
         for c in a.top_courses],
        {1, 2, 3, 4},
    )
    users = _table(
        ["User", "Name", "Engagement", "Performance"],
        [[u.username, u.name, u.engagement_index, u.performance_index]
         for u in (a.top_users * 4)[:50]],
        {2, 3},
    )
    daily = _table(
        ["Day", "Enrollments", "Unenrollments"],
        [[p.day.isoformat(), p.enrollments, p.unenrollments] for p in a.daily],
        {1, 2},
    )
    name = html_lib.escape(report.display_name or report.org)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{name}</title>'
        f"<style>{_CSS}</style></head><body><h1>{name}: weekly report</h1>"
        f"<p>Active users: {a.active_users.current}</p>{figures}"
        f"<h2>Top courses</h2>{courses}<h2>Most engaged users</h2>{users}"
        f"<h2>Daily enrollments</h2>{daily}</body></html>"
    )


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = func()
    return value, (time.perf_counter() - start) * 1000


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 10.0


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree_cpu_ms(roots: list[int]) -> float:
    """utime + stime (+ the reaped children's) of ``roots`` and all their descendants, in ms."""
    children = _proc_children()
    total, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        todo.extend(children.get(pid, []))
    return total * _TICK_MS


def _chromium_roots() -> list[int]:
    """The browser processes among this process's descendants (the driver's children)."""
    children = _proc_children()
    roots, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = ""
        if "chrom" in Path(exe).name:
            roots.append(pid)  # its descendants are counted with it
        else:
            todo.extend(children.get(pid, []))
    return roots


class Chromium:
    """One warm headless Chromium page printing HTML to PDF; ``None`` from ``start`` if absent."""

    def __init__(self, playwright: Any) -> None:
        self._pw = playwright
        self.browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        self.page = self.browser.new_page()
        self.roots = _chromium_roots()

    @staticmethod
    def start() -> Chromium | None:
        if not CHROMIUM.exists():
            return None
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            return None
        return Chromium(sync_playwright().start())

    def print_pdf(self, html: str, *, tagged: bool) -> tuple[float, float]:
        """Wall and browser-tree CPU ms of ``set_content`` + ``pdf``."""
        cpu0 = _tree_cpu_ms(self.roots)
        start = time.perf_counter()
        self.page.set_content(html, wait_until="load")
        self.page.pdf(
            format="A4", print_background=True, prefer_css_page_size=True,
            tagged=tagged, outline=tagged,
        )
        wall = (time.perf_counter() - start) * 1000
        return wall, _tree_cpu_ms(self.roots) - cpu0

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


def bench(
    report: ReportConfig, data: ReportData, runs: int, chromium: Chromium | None
) -> tuple[dict[str, Any], str]:
    """Our stages and Chromium's prints of the same HTML, interleaved run by run."""
    metadata = PdfMetadata(
        title=f"{report.display_name or report.org}: weekly report",
        author="ibl-reports", subject="Learning activity",
        created=datetime.combine(data.period.end, dtime(23, 59, 59), tzinfo=UTC),
        identifier=f"{report.org}/{report.name}/{data.period.key}",
    )
    samples: dict[str, list[float]] = {
        "charts": [], "html": [], "pdf": [], "total": [], "gc_settle": [],
        "pdf_without_charts": [], "pdf_cpu": [], "chromium": [], "chromium_cpu": [],
        "chromium_untagged": [], "ratio": [], "cpu_ratio": [],
    }

    def pdf(html: str) -> Any:
        return html_to_pdf(
            html, base_dir=TEMPLATES, allowed_roots=[TEMPLATES], metadata=metadata,
            attachments=csv_attachments(data),
        )

    html, pages = "", 0
    for run in range(runs + 1):  # run 0 warms imports, fonts, caches and the browser
        with gcpause.paused():  # as in the render worker: the whole job runs with the GC paused
            analysis, t_analyse = timed(lambda: analyse(data, top_n=report.top_n))
            charts, t_charts = timed(
                lambda a=analysis: make_charts(a, accent=report.accent_color)  # type: ignore[misc]
            )
            html, t_html = timed(lambda a=analysis, c=charts: render_html(report, a, c))  # type: ignore[misc]
            cpu0 = time.process_time()
            result, t_pdf = timed(lambda h=html: pdf(h))  # type: ignore[misc]
            cpu_pdf = (time.process_time() - cpu0) * 1000
        # ... and, like a pool worker after answering, collect while idle (timed on its own).
        _, t_settle = timed(gcpause.settle)
        pages = result.pages
        tagged = chromium.print_pdf(html, tagged=True) if chromium else None
        plain = chromium.print_pdf(html, tagged=False) if chromium else None
        if not run:
            continue
        samples["charts"].append(t_analyse + t_charts)
        samples["html"].append(t_html)
        samples["pdf"].append(t_pdf)
        samples["pdf_cpu"].append(cpu_pdf)
        samples["total"].append(t_analyse + t_charts + t_html + t_pdf)
        samples["gc_settle"].append(t_settle)
        if tagged and plain:
            samples["chromium"].append(tagged[0])
            samples["chromium_cpu"].append(tagged[1])
            samples["chromium_untagged"].append(plain[0])
            samples["ratio"].append(t_pdf / tagged[0])
            if tagged[1] > 0:
                samples["cpu_ratio"].append(cpu_pdf / tagged[1])
    # The floor: the same HTML with its chart images taken out (how much is left without them).
    bare = re.sub(r"<img [^>]*>", "", html)
    for run in range(runs + 1):
        _, t_bare = timed(lambda: pdf(bare))
        gcpause.settle()
        if run:
            samples["pdf_without_charts"].append(t_bare)
    stages = ("charts", "html", "pdf", "total", "gc_settle", "pdf_without_charts")
    pdf_median = _median(samples["pdf"])
    chromium_median = _median(samples["chromium"])
    ratios = samples["ratio"]
    return {
        "median_ms": {k: _median(samples[k]) for k in stages},
        "pages": pages,
        "chromium_pdf_median_ms": chromium_median,
        "chromium_untagged_pdf_median_ms": _median(samples["chromium_untagged"]),
        "ratio_pdf_vs_chromium": (
            round(pdf_median / chromium_median, 2) if pdf_median and chromium_median else None
        ),
        "ratio_pairs_median": round(statistics.median(ratios), 2) if ratios else None,
        "ratio_pairs_min_max": [round(min(ratios), 2), round(max(ratios), 2)] if ratios else None,
        "pdf_min_ms": round(min(samples["pdf"]), 1),
        "pdf_cpu_median_ms": _median(samples["pdf_cpu"]),
        "pdf_cpu_min_ms": round(min(samples["pdf_cpu"]), 1),
        "chromium_cpu_median_ms": _median(samples["chromium_cpu"]),
        "cpu_ratio_pairs_median": (
            round(statistics.median(samples["cpu_ratio"]), 2) if samples["cpu_ratio"] else None
        ),
        "pairs_ms": [
            [round(v, 1) for v in row]
            for row in zip(
                samples["pdf"], samples["pdf_cpu"], samples["chromium"], samples["chromium_cpu"],
                strict=False,
            )
        ],
    }, html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--html-out", type=Path, help="write the benchmarked HTML here")
    parser.add_argument("--runs", type=int, default=5, help="measured runs (after a warm-up)")
    parser.add_argument("--no-chromium", action="store_true", help="skip the Chromium comparison")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    report, data = demo_data()
    chromium = None if args.no_chromium else Chromium.start()
    try:
        result, html = bench(report, data, args.runs, chromium)
    finally:
        if chromium:
            chromium.close()
    result["html_source"] = "reports.report.render" if _has_render() else "bench fallback"
    result["interleaved"] = True
    result["runs"] = args.runs
    result["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["cpus"] = os.cpu_count()
    if args.html_out:
        args.html_out.write_text(html, encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def _has_render() -> bool:
    try:
        import reports.report.render  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
