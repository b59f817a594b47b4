"""Benchmark the CLI's start-up: ``ibl-reports --help`` and ``ibl-reports jobs``.

    uv run python bench/startup.py [--runs N] [--src DIR]

Runs each command ``N`` times as a fresh process (``python -c "from reports.cli import main;
main()"``, the console script's body) in a temp folder holding the demo config.toml and a state
database with one finished run per report, and prints JSON: the median and min wall time of each
command, and the heaviest top-level imports of one ``python -X importtime`` run of it.

``--src DIR`` runs another copy of the sources (a folder holding ``reports/``), e.g. the previous
commit's (``git archive HEAD reports templates | tar -x -C /tmp/before``), to compare before and
after in the same run. The target is < 0.5 s for both commands.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"help": ["--help"], "jobs": ["jobs"]}
ENTRY = "import sys; from reports.cli import main; sys.argv[0] = 'ibl-reports'; main()"


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    env.pop("IBL_REPORTS_LOG_FORMAT", None)
    return env


def prepare(folder: Path) -> None:
    """The demo config and a state DB where every report has one finished run."""
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    code = (
        "from datetime import date\n"
        "from reports.config import load_config\n"
        "from reports.state.ledger import Ledger\n"
        "from reports.state.runs import RunState\n"
        "from reports.report.periods import for_kind\n"
        "config = load_config('config.toml')\n"
        "with Ledger(config.state.url) as ledger:\n"
        "    for r in config.reports:\n"
        "        run = ledger.start_run(r.name, r.org, for_kind(r.period, date(2026, 11, 18)))\n"
        "        ledger.transition(run, RunState.RENDERING)\n"
        "        ledger.transition(run, RunState.ARCHIVED)\n"
        "        ledger.transition(run, RunState.DONE)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=folder, env=_env(ROOT), check=True)


def time_command(args: list[str], folder: Path, src: Path, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", ENTRY, *args], cwd=folder, env=_env(src), check=True,
            stdout=subprocess.DEVNULL,
        )
        samples.append(time.perf_counter() - start)
    return samples


def top_imports(args: list[str], folder: Path, src: Path, count: int = 8) -> list[dict[str, Any]]:
    """The heaviest top-level imports (cumulative ms) of one run, from ``-X importtime``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, *args], cwd=folder, env=_env(src),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    rows: list[dict[str, Any]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():
            rows.append({"module": name.strip(), "ms": round(int(cumulative) / 1000, 1)})
    return sorted(rows, key=lambda r: -r["ms"])[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--src", type=Path, default=ROOT, help="folder holding reports/")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"src": str(args.src), "runs": args.runs,
                              "loadavg_1m": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder)
        for name, cmd in COMMANDS.items():
            samples = time_command(cmd, folder, args.src, args.runs)
            result[name] = {
                "median_s": round(statistics.median(samples), 3),
                "min_s": round(min(samples), 3),
                "top_imports_ms": top_imports(cmd, folder, args.src),
            }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
