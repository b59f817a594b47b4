"""Benchmark one on-demand report as a fresh process against a fresh Chromium printing it.

    uv run python bench/oneshot.py [--runs N] [--src DIR]

Alternates, ``N`` times: a cold ``ibl-reports generate --report acme-weekly --out r.pdf --html
r.html --json`` (``python -c "from reports.cli import main; main()"``, the console script's body,
in a temp folder holding the demo config.toml, a fresh archive and state database each run), then
a cold ``chromium --headless --print-to-pdf`` of the HTML that run wrote (Debian
``/usr/bin/chromium``). Prints JSON: the median wall time of each, the ratio (target <= 1.5x), the
median of every ``--json`` timing of the report (and of its ``overlapped`` work: the charts
child's, which ran beside the PDF child's stages), and the CPU time (user + sys) of the report
process and the children it waited for, and of Chromium's (on a busy machine the wall times
follow the CPU times: the kernel shares the cores between sessions, then between a session's
processes). ``--src DIR`` also runs another copy of the sources (a folder holding ``reports/``
and ``templates/``), alternated with this one, to compare before and after in the same run.

Python's bytecode cache matters here: with ``PYTHONDONTWRITEBYTECODE=1`` and a virtualenv
installed without ``--compile-bytecode``, every process compiles WeasyPrint, matplotlib, NumPy and
httpx from source (seconds). The JSON says whether the cache was present for this run. Our own
sources are compiled first (``compileall``, into each copy's ``__pycache__``), as an installed
wheel's are: with ``PYTHONDONTWRITEBYTECODE=1`` an editable checkout would otherwise compile its
~150 modules in every process (~0.25 s of CPU in the parent alone).
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
ENTRY = "import sys; from reports.cli import main; sys.argv[0] = 'ibl-reports'; main()"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--no-pdf-header-footer",
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def generate(src: Path, folder: Path) -> dict[str, Any]:
    """One cold ``generate`` in ``folder``: wall, CPU and its ``--json`` timings."""
    for name in ("archive", "state.db", "r.pdf", "r.html"):
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
    config = folder / "config.toml"
    own = src / "config.toml"  # the config that copy of the sources reads
    text = (own if own.is_file() else ROOT / "config.toml").read_text(encoding="utf-8")
    config.write_text(text.replace('"templates"', json.dumps(str(src / "templates"))), "utf-8")
    env = dict(os.environ, PYTHONPATH=str(src))
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "--config", str(config), "generate", "--report",
         "acme-weekly", "--out", "r.pdf", "--html", "r.html", "--json"],
        cwd=folder, env=env, capture_output=True, text=True, check=True,
    )
    wall = time.perf_counter() - t0
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": _children_cpu() - cpu0, "timings": summary["timings"],
            "overlapped": summary.get("overlapped", {}), "stderr": proc.stderr.strip()}


def chromium(html: Path, out: Path, profile: Path) -> tuple[float, float]:
    """One cold Chromium printing ``html`` to ``out`` (fresh profile): wall and CPU seconds."""
    shutil.rmtree(profile, ignore_errors=True)
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={out}",
         html.as_uri()],
        check=True, capture_output=True,
    )
    return time.perf_counter() - t0, _children_cpu() - cpu0


def _bytecode_cached() -> bool:
    import weasyprint

    return (Path(weasyprint.__file__).parent / "__pycache__").is_dir()


def _summary(runs: list[dict[str, Any]], browser: list[tuple[float, float]]) -> dict[str, Any]:
    keys = sorted({k for r in runs for k in r["timings"]})
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "generate_wall_s": round(wall, 3),
        "generate_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "chromium_wall_s": round(statistics.median(w for w, _ in browser), 3),
        "chromium_cpu_s": round(statistics.median(c for _, c in browser), 3),
        "ratio": round(wall / statistics.median(w for w, _ in browser), 2),
        "timings": {k: round(statistics.median(r["timings"].get(k, 0.0) for r in runs), 3)
                    for k in keys},
        "overlapped": {k: round(statistics.median(r["overlapped"].get(k, 0.0) for r in runs), 3)
                       for k in sorted({k for r in runs for k in r["overlapped"]})},
        "stderr_lines": sorted({line for r in runs for line in r["stderr"].splitlines()}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", type=Path, help="another copy of the sources to compare")
    args = parser.parse_args()
    if args.src and not (args.src / "reports" / "__init__.py").is_file():
        parser.error(f"--src {args.src}: no reports/ package there (the run would measure this "
                     "checkout on both sides)")
    sources = {"after": ROOT} | ({"before": args.src.resolve()} if args.src else {})
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    browser: dict[str, list[tuple[float, float]]] = {name: [] for name in sources}
    for src in sources.values():
        compileall.compile_dir(src / "reports", quiet=1)
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-oneshot-") as tmp:
        for _ in range(args.runs):
            for name, src in sources.items():
                folder = Path(tmp) / name
                folder.mkdir(exist_ok=True)
                runs[name].append(generate(src, folder))
                browser[name].append(chromium(folder / "r.html", Path(tmp) / "c.pdf",
                                              Path(tmp) / "profile"))
                loads.append(os.getloadavg()[0])
    result = {
        "runs": args.runs,
        "load_1min": [round(x, 2) for x in loads],
        "cores": os.cpu_count(),
        "bytecode_cached": _bytecode_cached(),
        "target_ratio": 1.5,
    } | {name: _summary(runs[name], browser[name]) for name in sources}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
