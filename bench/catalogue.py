"""Benchmark loading a config whose org catalogue (``orgs_file``) has many rows.

    uv run python bench/catalogue.py [--rows 10000] [--runs 5]

Writes a config.toml with one ``[[reports]]`` template table and an orgs.csv of ``--rows`` rows
(every row with its own display name and two recipients, every third a time zone, every fifth a
locale) in a temp folder, then times ``load_config`` ``--runs`` times in this process (imports
warmed by a first load of a 10-row file) and prints JSON: median and min seconds, microseconds
per row. For comparison, the same number of reports validated one by one by pydantic
(``ReportConfig.model_validate``, what hand-written ``[[reports]]`` tables cost) is timed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from reports.config import ReportConfig, load_config

TABLE = """
[[reports]]
name = "{org}-weekly"
orgs_file = "orgs.csv"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
recipients = ["ops@example.org"]
"""
ZONES = ["America/New_York", "Asia/Tokyo", "Europe/London"]
LOCALES = ["de", "fr", "ja"]


def write(folder: Path, rows: int) -> Path:
    lines = ["org,display_name,recipients,timezone,locale"]
    for i in range(rows):
        zone = ZONES[i % 3] if i % 3 == 0 else ""
        locale = LOCALES[i % 3] if i % 5 == 0 else ""
        lines.append(
            f"org-{i:05d},Org number {i},dean@org-{i}.example;ops@org-{i}.example,{zone},{locale}"
        )
    (folder / "orgs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = folder / "config.toml"
    path.write_text(TABLE, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        load_config(write(folder, 10))  # imports and caches warmed
        path = write(folder, args.rows)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            config = load_config(path)
            times.append(time.perf_counter() - t0)
            assert len(config.reports) == args.rows
        t0 = time.perf_counter()
        for i in range(args.rows):
            ReportConfig.model_validate({
                "name": f"org-{i:05d}-weekly", "org": f"org-{i:05d}", "period": "weekly",
                "schedule": "0 7 * * 1", "timezone": "Europe/Berlin",
                "display_name": f"Org number {i}",
                "recipients": [f"dean@org-{i}.example", f"ops@org-{i}.example"],
            })
        per_table = time.perf_counter() - t0
    median = statistics.median(times)
    print(json.dumps({
        "rows": args.rows,
        "load_config_median_s": round(median, 3),
        "load_config_min_s": round(min(times), 3),
        "us_per_row": round(median / args.rows * 1e6, 1),
        "pydantic_per_report_s": round(per_table, 3),
        "load_1min": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
