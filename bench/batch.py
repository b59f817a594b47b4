"""Benchmark a batch: ONE ``ibl-reports generate --all`` vs one process per report.

    uv run python bench/batch.py [--reports 12] [--repeat 3]

Writes a temp config.toml with ``--reports`` weekly reports of as many demo orgs on the embedded
demo API (``base_url = "embedded"``), then times, alternately and ``--repeat`` times:

- ``batch``: ``ibl-reports generate --all --as-of 2026-11-18 --json`` (one process), and
- ``separate``: ``ibl-reports generate --report X ...`` for each report, one after another,

each in a fresh archive and state DB (``--src DIR``: another copy of the sources, e.g. the
previous commit's, to compare before/after), and prints JSON with the medians and their ratio
(target >= 3x, aim 5x), plus the per-stage timings the batch reported (median over reports).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AS_OF = "2026-11-18"
ENTRY = "import sys; from reports.cli import main; sys.argv[0] = 'ibl-reports'; main()"


def write_config(folder: Path, count: int) -> list[str]:
    """A config with ``count`` weekly reports of distinct demo orgs; returns the report names."""
    names = [f"org{i:02d}-weekly" for i in range(count)]
    lines = [
        "[api]", 'base_url = "embedded"', "",
        "[email]", 'backend = "file"', 'outbox_dir = "outbox"',
        'from = "reports <reports@example.org>"', "",
        "[archive]", 'dir = "archive"', "",
        "[state]", 'url = "sqlite:///state.db"', "",
    ]
    for i, name in enumerate(names):
        lines += [
            "[[reports]]", f'name = "{name}"', f'org = "demo-org-{i:02d}"', 'period = "weekly"',
            'schedule = "0 7 * * 1"', 'timezone = "Europe/Berlin"', "",
        ]
    (folder / "config.toml").write_text("\n".join(lines), encoding="utf-8")
    return names


def _fresh(folder: Path) -> None:
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (folder / name).unlink(missing_ok=True)
    archive = folder / "archive"
    if archive.exists():
        subprocess.run(["rm", "-rf", str(archive)], check=True)


SRC: list[Path] = []  # --src: run another copy of the sources (PYTHONPATH)


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IBL_API_KEY": "bench"}
    if SRC:
        env["PYTHONPATH"] = str(SRC[0])
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args], cwd=folder, check=True, capture_output=True,
        text=True, env=env,
    )


def run_batch(folder: Path) -> tuple[float, list[dict[str, Any]]]:
    _fresh(folder)
    start = time.perf_counter()
    proc = cli(folder, "generate", "--all", "--as-of", AS_OF, "--json")
    elapsed = time.perf_counter() - start
    payload = json.loads(proc.stdout)
    items = payload if isinstance(payload, list) else payload.get("reports", [payload])
    return elapsed, items


def run_separate(folder: Path, names: list[str]) -> float:
    _fresh(folder)
    start = time.perf_counter()
    for name in names:
        cli(folder, "generate", "--report", name, "--as-of", AS_OF, "--json")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", type=Path, help="folder holding another copy of reports/")
    args = parser.parse_args(argv)
    if args.src and not (args.src / "reports" / "__init__.py").is_file():
        parser.error(f"--src {args.src}: no reports/ package there (the run would measure this "
                     "checkout on both sides)")
    if args.src:
        SRC.append(args.src.resolve())
    batch: list[float] = []
    separate: list[float] = []
    stages: dict[str, list[float]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_config(folder, args.reports)
        for _ in range(args.repeat):
            elapsed, items = run_batch(folder)
            batch.append(elapsed)
            for item in items:
                for key, value in item.get("timings", {}).items():
                    stages.setdefault(key, []).append(value)
            separate.append(run_separate(folder, names))
    b, s = statistics.median(batch), statistics.median(separate)
    print(json.dumps({
        "src": str(SRC[0]) if SRC else "this checkout",
        "reports": args.reports, "repeat": args.repeat, "cores": os.cpu_count(),
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "batch_s": [round(x, 2) for x in batch], "separate_s": [round(x, 2) for x in separate],
        "batch_median_s": round(b, 2), "separate_median_s": round(s, 2),
        "ratio_separate_over_batch": round(s / b, 2),
        "batch_stage_median_s": {k: round(statistics.median(v), 3) for k, v in stages.items()},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
