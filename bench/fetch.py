"""Benchmark the collection: how close to ideal is one weekly report against a slow API?

Serves the demo API with uvicorn in a separate process (so server work does not steal the
client's event loop), with a fixed latency per request, and collects one weekly report. The ideal
wall time with ``c`` requests in flight is ``ceil(requests / c) * latency``; ``ratio`` is the
measured wall time over that. Prints one JSON object.

    uv run python bench/fetch.py [--courses 300] [--users 20000] [--latency-ms 50]
                                 [--concurrency 16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from datetime import date

from reports.report.periods import weekly
from reports.source.client import IblClient
from reports.source.collect import collect

ORG = "bench-university"
AS_OF = date(2026, 3, 11)


def _serve(latency_s: float, courses: int, users: int) -> None:
    """Child process: serve the demo API on a free loopback port and print the port."""
    import socket

    import uvicorn

    from reports.source.mock import MockKnobs, create_app

    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (proto 0 skips it,
    # and Nagle + delayed ACK then add 40 ms to every keep-alive answer).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    app = create_app(MockKnobs(latency_s=latency_s, courses=courses, users=users,
                               page_cap=100))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="none",
                            access_log=False, backlog=2048)
    server = uvicorn.Server(config)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


async def _run_once(url: str, concurrency: int) -> tuple[int, float]:
    async with IblClient(url, "bench-token", max_concurrency=concurrency) as client:
        started = time.perf_counter()
        data = await collect(client, ORG, weekly(AS_OF), page_size=500)
        wall = time.perf_counter() - started
    return data.requests, wall


async def _warm_up(url: str) -> None:
    # Build the org's dataset in the server before timing (a cold numpy start is not the point).
    async with IblClient(url, "bench-token") as client:
        await client.per_course(ORG, date(2020, 1, 1), date(2020, 1, 7))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=300)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000
    if args.serve:
        _serve(latency, args.courses, args.users)
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--courses", str(args.courses), "--users",
         str(args.users), "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise SystemExit("the demo API process did not start")
        url = f"http://127.0.0.1:{line[1]}"
        _wait_ready(url)
        asyncio.run(_warm_up(url))
        runs = [asyncio.run(_run_once(url, args.concurrency)) for _ in range(args.repeat)]
    finally:
        child.terminate()
        child.wait(timeout=10)
    requests = runs[0][0]
    walls = [wall for _, wall in runs]
    wall = statistics.median(walls)
    ideal = math.ceil(requests / args.concurrency) * latency
    print(json.dumps({
        "courses": args.courses, "users": args.users, "latency_ms": args.latency_ms,
        "concurrency": args.concurrency, "requests": requests,
        "wall_s": round(wall, 3), "wall_runs_s": [round(w, 3) for w in walls],
        "ideal_s": round(ideal, 3), "ratio": round(wall / ideal, 3) if ideal else None,
    }))


def _wait_ready(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit("the demo API process is not answering") from None
            time.sleep(0.05)


if __name__ == "__main__":
    main()
