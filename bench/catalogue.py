"""Benchmark loading a config whose org catalogue (``orgs_file``) has many rows.

    uv run python bench/catalogue.py [--rows 10000] [--runs 5] [--state-url URL]

Writes a config.toml with one ``[[reports]]`` template table and an orgs.csv of ``--rows`` rows
(every row with its own display name and two recipients, every third a time zone, every fifth a
locale) in a temp folder, then times ``load_config`` ``--runs`` times in this process (imports
warmed by a first load of a 10-row file) and prints JSON: median and min seconds, microseconds
per row. For comparison, the same number of reports validated one by one by pydantic
(``ReportConfig.model_validate``, what hand-written ``[[reports]]`` tables cost) is timed too.

Then the planning of ``send --all`` over those reports (``sendall.plan``: which periods are done),
on a ledger (SQLite in the temp folder, or ``--state-url``, e.g. a PostgreSQL database, which is
upgraded and filled) where every other report's period was delivered to both recipients.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from reports.config import Config, ReportConfig, load_config

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


def time_plan(config: Config, url: str, runs: int) -> tuple[float, int]:
    """(median seconds of ``sendall.plan``, reports found done) on a ledger half delivered."""
    from datetime import UTC, date, datetime

    from reports.report.periods import for_kind
    from reports.sendall import plan
    from reports.state.ledger import Ledger
    from reports.state.schema import deliveries

    day = date(2026, 11, 18)
    now = datetime.now(UTC)
    with Ledger(url, upgrade=True) as ledger:
        period = for_kind("weekly", day)
        rows = [
            {"report": r.name, "period_start": period.start, "period_end": period.end,
             "recipient": to, "state": "sent", "attempts": 1, "message_id": f"<{i}.{to}>",
             "created_at": now, "updated_at": now, "sent_at": now}
            for i, r in enumerate(config.reports) if i % 2 == 0 for to in r.recipients
        ]
        with ledger._begin() as conn:
            conn.execute(deliveries.delete())
            conn.execute(deliveries.insert(), rows)
        times, found = [], 0
        for _ in range(runs):
            t0 = time.perf_counter()
            _todo, done = plan(config, config.reports, day, force=False, clock=lambda: now,
                               ledger=ledger)
            times.append(time.perf_counter() - t0)
            found = len(done)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--state-url", default="", help="ledger for the planning (default: "
                        "SQLite in the temp folder)")
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
        plan_s, found = time_plan(config, args.state_url or f"sqlite:///{folder / 'state.db'}",
                                  max(1, args.runs // 2))
    median = statistics.median(times)
    print(json.dumps({
        "rows": args.rows,
        "load_config_median_s": round(median, 3),
        "load_config_min_s": round(min(times), 3),
        "us_per_row": round(median / args.rows * 1e6, 1),
        "pydantic_per_report_s": round(per_table, 3),
        "plan_send_all_s": round(plan_s, 3),
        "plan_found_done": found,
        "load_1min": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
