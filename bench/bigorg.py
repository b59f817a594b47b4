"""Benchmark a big org: 2,000 courses and 100,000 active users, over HTTP.

    uv run python bench/bigorg.py [--courses 2000] [--users 100000]

Serves the demo API with ``MockKnobs(courses=..., users=...)`` from uvicorn in a separate process
(loopback, free port), then runs one weekly report the way ``generate`` does: start the fork
server in the background, collect in this process, render in a limited worker child
(``reports.execute.worker.run_limited``).
Prints JSON with the stage timings, the page count and the peak
RSS of this process and of the render child (their sum is the target: < 500 MB, with <= 40 pages
and the time dominated by fetching).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.config import Config, load_config  # noqa: E402
from reports.execute.worker import run_limited, start_in_background  # noqa: E402
from reports.report.build import Rendered, RenderJob, render_report  # noqa: E402
from reports.report.periods import for_kind  # noqa: E402
from reports.run import collect_data  # noqa: E402

AS_OF = date(2026, 11, 18)


def serve(sock: socket.socket, courses: int, users: int) -> None:
    """The demo API process, as ``mock-api`` serves it, on an already bound socket."""
    from reports.source.mock import MockKnobs
    from reports.source.mock import serve as serve_demo

    serve_demo("127.0.0.1", 0, MockKnobs(courses=courses, users=users), sock=sock)


def render_measured(job: RenderJob) -> tuple[Rendered, float]:
    """The render, and the child's peak RSS in MiB (runs in the worker child)."""
    rendered = render_report(job)
    return rendered, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def big_config(url: str) -> Config:
    config = load_config(ROOT / "config.toml")
    api = config.api.model_copy(update={"base_url": url})
    return config.model_copy(update={"api": api})


def wait_until_listening(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the demo API did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--courses", type=int, default=2000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args(argv)
    from reports.source.mock import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(sock, args.courses, args.users), daemon=True
    )
    server.start()
    result: dict[str, Any] = {"courses": args.courses, "users": args.users,
                              "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    try:
        wait_until_listening(port)
        config = big_config(f"http://127.0.0.1:{port}")
        report = next(r for r in config.reports if r.period == "weekly")
        period = for_kind(report.period, AS_OF)
        env = {**os.environ, config.api.api_key_env: "bench-key"}
        start_in_background()  # as generate does: the fork server warms up during the fetch
        t0 = time.perf_counter()
        data = asyncio.run(collect_data(config, report, period, env))
        fetch_s = time.perf_counter() - t0
        parent_after_fetch = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t1 = time.perf_counter()
        rendered, child_peak = run_limited(
            render_measured, RenderJob(report, data, None, AS_OF),
            timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb,
        )
        render_wall_s = time.perf_counter() - t1
        parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result.update({
            "requests": data.requests,
            "pages": rendered.pages,
            "pdf_bytes": len(rendered.pdf),
            "timings_s": {"fetch_s": round(fetch_s, 2), "render_wall_s": round(render_wall_s, 2),
                          **{k: round(v, 3) for k, v in rendered.timings.items()}},
            "peak_rss_mb": {"parent": round(parent_peak, 1),
                            "parent_after_fetch": round(parent_after_fetch, 1),
                            "render_child": round(child_peak, 1),
                            "sum": round(parent_peak + child_peak, 1)},
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        })
    finally:
        server.terminate()
        server.join(10)
        sock.close()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
