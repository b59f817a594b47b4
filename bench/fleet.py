"""Benchmark the fleet: N demo orgs through 1 and 2 Celery worker processes.

    IBL_TEST_PG_URL=... uv run python bench/fleet.py [--orgs 200] [--workers 1,2]

For each worker count: a fresh PostgreSQL schema and Redis queue, the demo API served by
``ibl-reports mock-api`` in its own process, the file outbox as the mail backend, ``W``
``ibl-reports worker --concurrency 1`` processes started and pinged ready (their start-up is not
timed), then ``ibl-reports send --all`` timed from enqueue to the last answer. Prints JSON:
reports/minute per worker count and the scaling of each added worker (rpm(W) / (W * rpm(1)),
1.0 = linear). Needs redis-server and a PostgreSQL URL (``IBL_TEST_PG_URL``, e.g.
``$(bash .ci/pg-up)``). On 2 cores, 2 workers can at best double the rate when nothing else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

AS_OF = "2026-11-18"
CONFIG = """
[api]
base_url = "http://127.0.0.1:{api_port}"
api_key_env = "IBL_BENCH_KEY"

[email]
backend = "file"
outbox_dir = "outbox"
from = "ibl.ai reports <reports@example.org>"

[state]
url_env = "IBL_BENCH_STATE_URL"
stuck_after_s = 600

[executor]
kind = "celery"
broker_url_env = "IBL_BENCH_BROKER_URL"
queue = "bench-{tag}"

[[reports]]
name = "{{org}}-weekly"
orgs_file = "orgs.csv"
period = "weekly"
schedule = "0 7 * * 1"
timezone = "Europe/Berlin"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reports.cli", *args]


def one_round(folder: Path, orgs: int, workers: int, base_url: str, redis_port: int,
              api_port: int) -> dict[str, float]:
    from reports.config import load_config
    from reports.execute.celery_app import make_app

    folder.mkdir()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in base_url else "?"
    env = {**os.environ, "IBL_BENCH_KEY": "bench",
           "IBL_BENCH_STATE_URL": f"{base_url}{joiner}options="
                                  f"{quote(f'-csearch_path={schema}')}",
           "IBL_BENCH_BROKER_URL": f"redis://127.0.0.1:{redis_port}/{workers}"}
    rows = ["org,recipients"] + [f"org-{i:04d},dean@org-{i}.example" for i in range(orgs)]
    (folder / "orgs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config_path = folder / "config.toml"
    config_path.write_text(CONFIG.format(api_port=api_port, tag=uuid.uuid4().hex[:6]))
    config = load_config(config_path, env=env)
    subprocess.run(cli("--config", str(config_path), "db", "upgrade"), env=env, check=True,
                   capture_output=True)
    procs = [subprocess.Popen(cli("--config", str(config_path), "worker", "--concurrency", "1"),
                              env=env, cwd=folder, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
             for _ in range(workers)]
    try:
        app = make_app(config, env)
        deadline = time.monotonic() + 120
        while len(app.control.inspect(timeout=0.5).ping() or {}) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not come up")
        t0 = time.perf_counter()
        done = subprocess.run(cli("--config", str(config_path), "send", "--all", "--as-of",
                                  AS_OF), env=env, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"send --all failed: {done.stderr[-2000:]}")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
    return {"wall_s": round(wall, 2), "reports_per_min": round(orgs / wall * 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    base_url = os.environ.get("IBL_TEST_PG_URL")
    redis_bin = shutil.which("redis-server")
    if not base_url or not redis_bin:
        sys.exit("needs redis-server and IBL_TEST_PG_URL (export IBL_TEST_PG_URL=$(bash "
                 ".ci/pg-up))")
    counts = [int(w) for w in args.workers.split(",")]
    redis_port, api_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        redis = subprocess.Popen([redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", tmp],
                                 stdout=subprocess.DEVNULL)
        api = subprocess.Popen(cli("mock-api", "--port", str(api_port)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(redis_port)
            wait_port(api_port)
            load_before = os.getloadavg()[0]
            rounds = {w: one_round(Path(tmp) / f"w{w}", args.orgs, w, base_url, redis_port,
                                   api_port) for w in counts}
        finally:
            api.kill()
            redis.kill()
    base = rounds[counts[0]]["reports_per_min"] / counts[0]
    print(json.dumps({
        "orgs": args.orgs,
        "rounds": {str(w): r for w, r in rounds.items()},
        "scaling_vs_linear": {str(w): round(r["reports_per_min"] / (w * base), 3)
                              for w, r in rounds.items()},
        "cores": os.cpu_count(),
        "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
