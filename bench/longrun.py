"""Benchmark a long run: many reports rendered in ONE process, watching its memory.

    uv run python bench/longrun.py [--reports 1000] [--every 100]

Renders the demo org's weekly report (small demo data from the embedded demo API, collected
once) ``--reports`` times with the in-process render function
(``reports.report.build.render_report(RenderJob(...))``, what a warm pool worker runs, with
the GC handled as a pool worker does: paused during a job, one collection after it) and prints
JSON with the resident set size every ``--every`` reports. The target: RSS grows < 10% from
report 100 to the last one (no figure, font or cache leak). Takes ~0.6 s per report on an idle core.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.config import load_config  # noqa: E402
from reports.report import gcpause  # noqa: E402
from reports.report.build import RenderJob, render_report  # noqa: E402
from reports.report.periods import for_kind  # noqa: E402
from reports.run import collect_data  # noqa: E402

AS_OF = date(2026, 11, 18)


def rss_mb() -> float:
    """The current resident set size of this process, in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args(argv)
    config = load_config(ROOT / "config.toml")
    report = next(r for r in config.reports if r.period == "weekly")
    period = for_kind(report.period, AS_OF)
    data = asyncio.run(collect_data(config, report, period, env=dict(os.environ)))
    job = RenderJob(report, data, None, AS_OF)
    samples: dict[int, float] = {}
    times: list[float] = []
    start = time.perf_counter()
    for n in range(1, args.reports + 1):
        t0 = time.perf_counter()
        with gcpause.paused():  # what a pool worker does: the job with the GC paused, ...
            rendered = render_report(job)
        times.append(time.perf_counter() - t0)
        gcpause.settle()  # ... then a collection while idle
        if n % args.every == 0 or n == 1:
            gc.collect()
            samples[n] = round(rss_mb(), 1)
            print(f"report {n}: rss {samples[n]} MiB, {rendered.pages} pages", file=sys.stderr)
    base = samples.get(100) or samples[min(samples)]
    last = samples[max(samples)]
    print(json.dumps({
        "reports": args.reports, "loadavg_1m": round(os.getloadavg()[0], 2),
        "rss_mb": samples, "growth_from_100_pct": round((last - base) / base * 100, 2),
        "render_median_s": round(statistics.median(times), 3),
        "wall_s": round(time.perf_counter() - start, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
