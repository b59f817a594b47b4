"""The machine misbehaves: unwritable archive, read-only HOME, names that try to leave the
archive folder. Every case fails loudly (or works), never half-done."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi
from tests._e2e import API_KEY
from tests.hostile import ARCHIVED, assert_failed_cleanly, generate, hostile_config, send

Start = Callable[..., RunningApi]

@pytest.fixture
def api(api_server: Start) -> RunningApi:
    return api_server(MockKnobs(courses=5, users=50, token=API_KEY))


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    changed: list[Path] = []

    def make(path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
        changed.append(path)

    yield make
    for path in changed:
        path.chmod(stat.S_IRWXU)


def _permissions_bind() -> bool:
    return os.geteuid() != 0


@pytest.fixture
def read_only_fs(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """A really read-only folder: permission bits for a user, a read-only tmpfs for root."""
    mounted: list[Path] = []

    def make(path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if _permissions_bind():
            path.chmod(stat.S_IRUSR | stat.S_IXUSR)
            return
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                              capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"root cannot mount a read-only tmpfs here: {done.stderr!r}")
        mounted.append(path)

    yield make
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)
    if _permissions_bind():
        for path in tmp_path.rglob("*"):
            if path.is_dir():
                path.chmod(stat.S_IRWXU)


def test_a_read_only_archive_fails_clearly_and_mails_nothing(
    tmp_path: Path, api: RunningApi, read_only_fs: Callable[[Path], None]
) -> None:
    read_only_fs(tmp_path / "archive")
    proc = send(hostile_config(tmp_path, api_url=api.url))
    line = assert_failed_cleanly(proc, tmp_path, "cannot write", "read-only")
    assert str(tmp_path / "archive") in line


def test_a_full_disk_leaves_no_half_written_pdf(tmp_path: Path, api: RunningApi) -> None:
    # A file where the report folder belongs makes every write into it fail (as ENOSPC would)
    # after collect and render succeeded; no tmpfs or /dev/full tricks are needed.
    (tmp_path / "archive" / "acme-university").mkdir(parents=True)
    (tmp_path / "archive" / "acme-university" / "acme-weekly").write_bytes(b"not a folder")
    proc = send(hostile_config(tmp_path, api_url=api.url))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0], proc.stderr
    leftovers = [p for p in (tmp_path / "archive").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").iterdir())


def test_generate_works_with_an_unwritable_home(
    tmp_path: Path, api: RunningApi, read_only: Callable[[Path], None]
) -> None:
    home = tmp_path / "home"
    if _permissions_bind():
        read_only(home)
    else:  # root writes anywhere: a HOME that is a file cannot hold a cache either
        home.write_bytes(b"")
    env = {"HOME": str(home), "XDG_CACHE_HOME": "", "MPLCONFIGDIR": ""}
    # A process of its own: the HOME it starts with decides where its fork server's caches go.
    proc = generate(hostile_config(tmp_path, api_url=api.url), env=env, process=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no "Matplotlib created a temporary cache directory" warning
    assert (tmp_path / ARCHIVED).is_file()
    assert home.is_file() or list(home.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("org", "../../etc", id="org-dotdot"),
        pytest.param("org", "/etc", id="org-absolute"),
        pytest.param("name", "..", id="name-dotdot"),
        pytest.param("name", "a/../../b", id="name-slash"),
        pytest.param("org", "acme\x00x", id="org-nul"),
    ],
)
def test_a_name_that_escapes_the_archive_is_refused_by_the_config(
    tmp_path: Path, api: RunningApi, field: str, value: str
) -> None:
    config = hostile_config(tmp_path, api_url=api.url, **{field: value})  # type: ignore[arg-type]
    proc = send(config)
    assert_failed_cleanly(proc, tmp_path, "config.toml", code=2)
    assert api.app.stats.requests == 0
