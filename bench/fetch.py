"""Benchmark the collection against its floor: what a bare client needs for the same requests.

    uv run python bench/fetch.py [--courses 300] [--users 20000] [--page-cap 100]
                                 [--latency-ms 50] [--concurrency 16] [--repeat 3]
                                 [--big] [--server-src DIR] [--timeline FILE]

Serves the demo API the way ``ibl-reports mock-api`` does (``reports.source.mock.serve``) in its
own process, with a fixed latency per request and pages capped at ``--page-cap`` users (the
server decides the page length, like the real API capping at 100; we ask for 500). Then, in one
run, alternates ``--repeat`` times:

- **fetch**: ``collect`` of one weekly report with ``max_concurrency = C``, through a transport
  that records every request it sends (path and query, start and end);
- **floor**: the very same list of requests replayed by a bare ``httpx.AsyncClient`` keeping C
  in flight (C workers taking the next request as soon as they are free; no parsing, no retries,
  no dependencies between requests).

Both run after an untimed warm-up of each (the server's dataset built, its connections open).
Prints JSON: the medians ``fetch_s`` and ``floor_s``, their ``ratio`` (target <= 1.15; <= 1.25
for ``--big``), the theoretical ``bound_s`` = ceil(requests / C) x latency, the request count, the
demo server's CPU per request during each kind of run (from /proc, its process alone), the load
average, and where the fetch's requests sat in time (when the first series request started, how
many user pages were sent after it). ``--big`` is the big org: 2,000 courses and 100,000 users.
``--server-src DIR`` serves the demo API from another copy of the sources (a folder holding
``reports/``), to compare the server before and after. ``--timeline FILE`` writes the last fetch's
requests (kind, start, end in seconds from the fetch's start) as CSV.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reports.report.periods import weekly  # noqa: E402
from reports.source.client import IblClient  # noqa: E402
from reports.source.collect import collect  # noqa: E402

ORG = "bench-university"
AS_OF = date(2026, 3, 11)
TOKEN = "bench-token"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the server process -----------------------------------------------------------------------

def _serve(args: argparse.Namespace) -> None:
    """Child process: the demo API as ``mock-api`` serves it, on a free loopback port."""
    if args.server_src:
        sys.path.insert(0, str(Path(args.server_src).resolve()))
        for name in [m for m in sys.modules if m == "reports" or m.startswith("reports.")]:
            del sys.modules[name]
    from reports.source.mock import MockKnobs, serve

    knobs = MockKnobs(latency_s=args.latency_ms / 1000, courses=args.courses, users=args.users,
                      page_cap=args.page_cap)
    try:
        from reports.source.mock import listening_socket
    except ImportError:  # an older copy of the sources: its serve() binds the port itself
        import socket

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        print(f"PORT {port}", flush=True)
        serve("127.0.0.1", port, knobs)
        return
    sock = listening_socket("127.0.0.1", 0)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    serve("127.0.0.1", 0, knobs, sock=sock)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# -- recording our requests and replaying them ------------------------------------------------

@dataclass
class Sent:
    """One request our client sent: its target and when it was in flight."""

    target: str
    start: float
    end: float = 0.0


@dataclass
class Recording(httpx.AsyncBaseTransport):
    """A transport that keeps the list of requests going through it (in the order sent)."""

    inner: httpx.AsyncBaseTransport
    sent: list[Sent] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        one = Sent(request.url.raw_path.decode("ascii"), time.perf_counter())
        self.sent.append(one)
        response = await self.inner.handle_async_request(request)
        one.end = time.perf_counter()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


async def fetch_once(url: str, concurrency: int) -> tuple[float, list[Sent], int]:
    """One collection: its wall time, the requests it sent, and how many it counted."""
    recording = Recording(httpx.AsyncHTTPTransport(limits=_limits(concurrency)))
    async with IblClient(url, TOKEN, max_concurrency=concurrency,
                         transport=recording) as client:
        started = time.perf_counter()
        data = await collect(client, ORG, weekly(AS_OF), page_size=500)
        wall = time.perf_counter() - started
    for one in recording.sent:
        one.start -= started
        one.end -= started
    return wall, recording.sent, data.requests


async def replay_once(url: str, targets: list[str], concurrency: int) -> float:
    """The same requests from a bare client with ``concurrency`` in flight: its wall time."""
    headers = {"Authorization": f"Api-Token {TOKEN}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=_limits(concurrency),
                                 timeout=30) as client:
        todo = iter(targets)

        async def worker() -> None:
            for target in todo:
                response = await client.get(target)
                if response.status_code != 200:
                    raise SystemExit(f"replay: HTTP {response.status_code} for {target}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def _kind(target: str) -> str:
    if "/over-time" in target:
        return "series"
    if "/active-users/users" in target:
        return "users"
    return "per-course"


def _shape(sent: list[Sent]) -> dict[str, Any]:
    """Where the kinds of request sat in the fetch's time line."""
    first_series = min((s.start for s in sent if _kind(s.target) == "series"), default=None)
    pages = [s for s in sent if _kind(s.target) == "users"]
    last_page_end = max((s.end for s in pages), default=0.0)
    return {
        "first_series_start_s": None if first_series is None else round(first_series, 3),
        "user_pages": len(pages),
        "user_pages_started_after_first_series": (
            0 if first_series is None else sum(s.start > first_series for s in pages)),
        "last_user_page_end_s": round(last_page_end, 3),
        "last_request_end_s": round(max(s.end for s in sent), 3),
    }


def _write_timeline(path: Path, sent: list[Sent]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["kind", "start_s", "end_s"])
        for one in sent:
            writer.writerow([_kind(one.target), f"{one.start:.4f}", f"{one.end:.4f}"])


# -- the run ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--courses", type=int)
    parser.add_argument("--users", type=int)
    parser.add_argument("--page-cap", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true",
                        help="the big org: 2,000 courses, 100,000 users (target <= 1.25)")
    parser.add_argument("--server-src", metavar="DIR")
    parser.add_argument("--timeline", metavar="FILE", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.courses = args.courses or (2000 if args.big else 300)
    args.users = args.users or (100_000 if args.big else 20_000)
    if args.serve:
        _serve(args)
        return
    command = [sys.executable, __file__, "--serve", "--courses", str(args.courses),
               "--users", str(args.users), "--latency-ms", str(args.latency_ms),
               "--page-cap", str(args.page_cap)]
    if args.server_src:
        command += ["--server-src", args.server_src]
    load_before = os.getloadavg()[0]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise SystemExit("the demo API process did not start")
        url = f"http://127.0.0.1:{line[1]}"
        _wait_ready(url)
        result = _measure(url, child.pid, args)
    finally:
        child.terminate()
        child.wait(timeout=10)
    result["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result))


def _measure(url: str, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    c = args.concurrency
    latency = args.latency_ms / 1000
    # Untimed warm-up: the server builds the org's dataset, both clients' code paths run once.
    _, sent, _ = asyncio.run(fetch_once(url, c))
    asyncio.run(replay_once(url, [s.target for s in sent], c))
    fetches: list[float] = []
    floors: list[float] = []
    cpu: dict[str, list[float]] = {"fetch": [], "floor": []}
    counted = 0
    for _ in range(args.repeat):
        before = _cpu_s(server_pid)
        wall, sent, counted = asyncio.run(fetch_once(url, c))
        cpu["fetch"].append((_cpu_s(server_pid) - before) / len(sent))
        fetches.append(wall)
        before = _cpu_s(server_pid)
        floors.append(asyncio.run(replay_once(url, [s.target for s in sent], c)))
        cpu["floor"].append((_cpu_s(server_pid) - before) / len(sent))
    if counted != len(sent):
        raise SystemExit(f"the client counted {counted} requests but sent {len(sent)}")
    if args.timeline:
        _write_timeline(args.timeline, sent)
    fetch_s, floor_s = statistics.median(fetches), statistics.median(floors)
    bound = math.ceil(len(sent) / c) * latency
    return {
        "courses": args.courses, "users": args.users, "page_cap": args.page_cap,
        "latency_ms": args.latency_ms, "concurrency": c, "requests": len(sent),
        "fetch_s": round(fetch_s, 3), "floor_s": round(floor_s, 3),
        "ratio": round(fetch_s / floor_s, 3),
        "target": 1.25 if args.big else 1.15,
        "bound_s": round(bound, 3),
        "fetch_over_bound": round(fetch_s / bound, 3) if bound else None,
        "floor_over_bound": round(floor_s / bound, 3) if bound else None,
        "fetch_runs_s": [round(w, 3) for w in fetches],
        "floor_runs_s": [round(w, 3) for w in floors],
        "server_cpu_ms_per_request": {
            kind: round(1000 * statistics.median(values), 3) for kind, values in cpu.items()},
        "server": args.server_src or "this copy",
        "last_fetch": _shape(sent),
    }


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
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
