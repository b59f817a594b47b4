"""Benchmark the CLI's start-up: ``ibl-reports --help``, ``ibl-reports jobs`` and the one-shot
``generate``'s ``startup_s``.

    uv run python bench/startup.py [--runs N] [--src DIR] [--generate-runs M]

Runs ``--help`` and ``jobs`` ``N`` times each as fresh processes (``python -c "from reports.cli
import main; main()"``, the console script's body) in a temp folder holding the demo config.toml
and a state database with one finished run per report, and ``generate --report no-such-report``
as often (it fails right after the imports and the config); then ``generate --report acme-weekly
--json`` ``M`` times (a fresh archive and state database each run), keeping the ``startup_s`` its
JSON reports: the interpreter, the imports and the config before the run begins, on the critical
path of one on-demand report. Prints JSON per copy of the sources: the median and min wall time
and the median CPU time (user + sys) of each command, the median ``startup_s``, and the heaviest
top-level imports of one ``python -X importtime`` run of ``--help`` and of ``jobs``.

``--src DIR`` also runs another copy of the sources (a folder holding ``reports/`` and
``templates/``), e.g. the previous commit's (``git archive HEAD reports templates | tar -x -C
/tmp/before``), alternated run by run with this one, to compare before and after in the same run.
Each copy's sources are compiled first (``compileall``, into its ``__pycache__``), as an installed
wheel's are: with ``PYTHONDONTWRITEBYTECODE=1`` (set on the development machine) an editable
checkout would otherwise compile every module of ours in every process (~40 ms of ``jobs``). The
target is < 0.5 s for ``--help`` and ``jobs``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"help": ["--help"], "jobs": ["jobs"],
            "generate_prelude": ["generate", "--report", "no-such-report"]}
"""``generate_prelude`` fails (exit 2) right after the imports and the config that the one-shot's
``startup_s`` counts: the same start, measured as often as ``--runs`` without a whole report."""
EXIT = {"help": 0, "jobs": 0, "generate_prelude": 2}
GENERATE = ["generate", "--report", "acme-weekly", "--json"]
ENTRY = "import sys; from reports.cli import main; sys.argv[0] = 'ibl-reports'; main()"


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    env.pop("IBL_REPORTS_LOG_FORMAT", None)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def time_command(args: list[str], folder: Path, src: Path, code: int = 0
                 ) -> tuple[float, float]:
    """One fresh process (exiting with ``code``): wall and CPU seconds."""
    cpu0, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *args], cwd=folder, env=_env(src),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if proc.returncode != code:
        raise SystemExit(f"{args}: exit {proc.returncode}, not {code}: {proc.stderr.strip()}")
    return time.perf_counter() - start, _children_cpu() - cpu0


def generate_startup(folder: Path, src: Path) -> float:
    """One cold one-shot ``generate``: the ``startup_s`` of its ``--json`` timings."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *GENERATE], cwd=folder, env=_env(src), check=True,
        capture_output=True, text=True,
    )
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["timings"]["startup_s"])


def top_imports(args: list[str], folder: Path, src: Path, count: int = 8) -> list[dict[str, Any]]:
    """The heaviest top-level imports (cumulative ms) of one run, from ``-X importtime``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, *args], cwd=folder, env=_env(src),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    rows: list[dict[str, Any]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith(" ") and not name.startswith("  ") and cumulative.strip().isdigit():
            rows.append({"module": name.strip(), "ms": round(int(cumulative) / 1000, 1)})
    return sorted(rows, key=lambda r: -r["ms"])[:count]


def _summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    walls = [w for w, _ in samples]
    return {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
            "cpu_s": round(statistics.median(c for _, c in samples), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--src", type=Path, help="another copy of the sources to compare")
    parser.add_argument("--generate-runs", type=int, default=3,
                        help="cold generate runs for startup_s (0: skip)")
    args = parser.parse_args(argv)
    if args.src and not (args.src / "reports" / "__init__.py").is_file():
        parser.error(f"--src {args.src}: no reports/ package there (the run would measure this "
                     "checkout on both sides)")
    sources = {"after": ROOT} | ({"before": args.src.resolve()} if args.src else {})
    for src in sources.values():
        compileall.compile_dir(src / "reports", quiet=1)
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {cmd: [] for cmd in COMMANDS} for name in sources
    }
    startups: dict[str, list[float]] = {name: [] for name in sources}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = Path(tmp) / "jobs"
        folder.mkdir()
        prepare(folder)
        for _ in range(args.runs):
            for name, src in sources.items():
                for cmd, cmd_args in COMMANDS.items():
                    samples[name][cmd].append(time_command(cmd_args, folder, src, EXIT[cmd]))
            loads.append(os.getloadavg()[0])
        for _ in range(args.generate_runs):
            for name, src in sources.items():
                startups[name].append(generate_startup(Path(tmp) / "generate", src))
            loads.append(os.getloadavg()[0])
        result: dict[str, Any] = {
            "runs": args.runs, "generate_runs": args.generate_runs,
            "load_1min": [round(x, 2) for x in loads], "cores": os.cpu_count(),
        }
        for name, src in sources.items():
            result[name] = {"src": str(src)} | {
                cmd: _summary(samples[name][cmd]) | {
                    "top_imports_ms": top_imports(cmd_args, folder, src)}
                for cmd, cmd_args in COMMANDS.items()
            }
            if startups[name]:
                result[name]["generate_startup_s"] = {
                    "median_s": round(statistics.median(startups[name]), 3),
                    "min_s": round(min(startups[name]), 3),
                }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
