"""The archive on S3: a real SeaweedFS S3 server on loopback, the demo API, aiosmtpd."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from reports.delivery.archive import Archive
from reports.delivery.s3store import S3Store
from reports.errors import ArchiveAccessError, ArchiveError
from reports.report.periods import Period
from reports.source.mock import MockKnobs
from reports.state.archive_index import ArchiveRecord
from tests._apiserver import RunningApi, api_server  # noqa: F401  (fixture)
from tests._e2e import API_KEY, run_cli, write_config
from tests._fleet import free_port
from tests._s3 import SECRET_KEY, Seaweed, put_raw, s3_bucket, seaweed  # noqa: F401  (fixtures)
from tests._smtp import HOST, Recorder, _FreePortController

AS_OF = "2026-11-26"
WEEK = Period(date(2026, 11, 16), date(2026, 11, 22))
PDF = b"%PDF-1.7\n" + b"x" * 4000 + b"\n%%EOF\n"


@pytest.fixture
def env(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Seaweed:  # noqa: F811
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return seaweed


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    handler = Recorder()
    controller = _FreePortController(handler, hostname=HOST, port=0)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def s3_config(folder: Path, server: Seaweed, bucket: str, *, api_url: str = "embedded",
              smtp_port: int | None = None) -> Path:
    path = write_config(folder, api_url=api_url, smtp_port=smtp_port,
                        recipients=("dean@acme.example", "ops@acme.example"))
    text = path.read_text(encoding="utf-8").replace(
        '[archive]\ndir = "archive"\n',
        f'[archive]\nurl = "s3://{bucket}/reports"\nendpoint_url = "{server.endpoint}"\n',
    )
    path.write_text(text, encoding="utf-8")
    return path


def record(archive: Archive, period: Period, data: bytes) -> ArchiveRecord:
    written = archive.write("acme", "weekly", period, data)
    return ArchiveRecord("weekly", "acme", period.start, period.end, written.location,
                         written.sha256, written.size, None, datetime.now(UTC))


def test_objects_are_write_once_with_checksum_and_metadata(
    env: Seaweed, s3_bucket: str,  # noqa: F811
) -> None:
    store = S3Store(s3_bucket, "arch/", endpoint_url=env.endpoint)
    archive = Archive(store)
    written = archive.write("acme", "weekly", WEEK, PDF)
    digest = hashlib.sha256(PDF).hexdigest()
    key = f"arch/acme/weekly/2026-11-16_2026-11-22.{digest[:16]}.pdf"
    assert written.location == f"s3://{s3_bucket}/{key}"
    head = env.client().head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
    assert head["Metadata"] == {"report": "weekly", "org": "acme", "period": WEEK.key,
                                "edition": "final", "sha256": digest}
    assert head["ContentType"] == "application/pdf" and head.get("ChecksumSHA256")

    # The same bytes again (a retried upload) is fine; different bytes under the key are not.
    assert store.put(key.removeprefix("arch/"), PDF, sha256=digest, meta={}) == written.location
    other = PDF.replace(b"x", b"y")
    with pytest.raises(ArchiveError, match=r"already exists with different content.*write-once"
                       ) as refused:
        store.put(key.removeprefix("arch/"), other, sha256=hashlib.sha256(other).hexdigest(),
                  meta={})
    assert written.location in str(refused.value)
    assert store.get(written.location) == PDF

    # A regenerated period gets a new object; the one already mailed stays.
    again = archive.write("acme", "weekly", WEEK, other)
    assert again.location != written.location
    assert store.get(written.location) == PDF and store.get(again.location) == other


def test_verify_uses_the_stored_checksum_and_finds_changed_and_missing_objects(
    env: Seaweed, s3_bucket: str,  # noqa: F811
) -> None:
    archive = Archive(S3Store(s3_bucket, "", endpoint_url=env.endpoint))
    weeks = [Period(date(2026, 11, 2 + 7 * i), date(2026, 11, 8 + 7 * i)) for i in range(3)]
    entries = [record(archive, week, PDF + week.key.encode()) for week in weeks]
    assert archive.verify(entries).clean
    changed, missing = entries[0], entries[1]
    key = changed.path.removeprefix(f"s3://{s3_bucket}/")
    tampered = PDF.replace(b"x", b"z") + changed.period_start.isoformat().encode()
    put_raw(env, s3_bucket, key, tampered)  # same size, no checksum: verify downloads it
    env.client().delete_object(Bucket=s3_bucket, Key=missing.path.split("/", 3)[3])
    result = archive.verify(entries)
    assert [e.path for e in result.changed] == [changed.path]
    assert [e.path for e in result.missing] == [missing.path]
    assert [e.path for e in result.ok] == [entries[2].path]


def test_a_missing_bucket_and_an_unreachable_endpoint_are_one_line_each(
    env: Seaweed,
) -> None:
    with pytest.raises(ArchiveAccessError) as missing:
        S3Store("no-such-bucket-here", "", endpoint_url=env.endpoint).check()
    assert str(missing.value) == (
        f"the S3 bucket 'no-such-bucket-here' does not exist at {env.endpoint} (archive.url)")
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ArchiveError) as unreachable:
        S3Store("archive", "", endpoint_url=closed).check()
    message = str(unreachable.value)
    assert message.startswith(f"cannot reach the S3 endpoint {closed} (bucket 'archive')")
    assert "\n" not in message and unreachable.value.exit_code == 1


def test_a_wrong_secret_is_refused_in_one_line_without_the_secret(
    tmp_path: Path, seaweed: Seaweed, s3_bucket: str,  # noqa: F811
) -> None:
    config = s3_config(tmp_path, seaweed, s3_bucket)
    wrong = "wrong-" + SECRET_KEY[::-1]
    # The right key first, in this same process: the wrong one must still be used after it
    # (boto3's default session would keep signing with the first credentials it read).
    right = run_cli(config, "archive", "verify", env=seaweed.env())
    assert right.returncode == 0, right.stderr
    result = run_cli(config, "archive", "verify", env=seaweed.env(secret=wrong))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"refused access to the bucket '{s3_bucket}'" in lines[0]
    assert seaweed.endpoint in lines[0] and "SignatureDoesNotMatch" in lines[0]
    assert wrong not in result.stderr + result.stdout
    assert SECRET_KEY not in result.stderr + result.stdout


def test_send_archives_on_s3_and_mails_those_bytes_then_list_verify_prune(
    tmp_path: Path, seaweed: Seaweed, s3_bucket: str,  # noqa: F811
    api_server: Callable[..., RunningApi], smtp: tuple[Recorder, int],  # noqa: F811
) -> None:
    handler, port = smtp
    api = api_server(MockKnobs(token=API_KEY, courses=6, users=80))
    config = s3_config(tmp_path, seaweed, s3_bucket, api_url=api.url, smtp_port=port)
    aws = seaweed.env()
    sent = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF, env=aws)
    assert sent.returncode == 0, sent.stderr
    assert not (tmp_path / "archive").exists()  # nothing in the default folder

    listed = run_cli(config, "archive", "list", "--json", env=aws)
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    location = entry["path"]
    assert location.startswith(f"s3://{s3_bucket}/reports/acme-university/acme-weekly/"
                               f"{WEEK.key}.")
    # The HTML beside it, write-once under its own hash, as the index records it.
    html_key = entry["html"].split("/", 3)[3]
    assert html_key == f"reports/acme-university/acme-weekly/{WEEK.key}." \
        f"{entry['html_sha256'][:16]}.html"
    html = seaweed.client().get_object(Bucket=s3_bucket, Key=html_key)
    assert html["ContentType"] == "text/html; charset=utf-8"
    assert hashlib.sha256(html["Body"].read()).hexdigest() == entry["html_sha256"]
    key = location.split("/", 3)[3]
    stored = seaweed.client().get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == entry["sha256"]
    assert sorted(r for m in handler.messages for r in m.rcpt_tos) == [
        "dean@acme.example", "ops@acme.example"]
    for received in handler.messages:
        [part] = [p for p in received.message.iter_attachments()
                  if p.get_content_type() == "application/pdf"]
        assert part.get_payload(decode=True) == stored

    # --force sends again, reusing the archived object (same data, intact on S3).
    forced = run_cli(config, "send", "--report", "acme-weekly", "--as-of", AS_OF, "--force",
                     env=aws)
    assert forced.returncode == 0, forced.stderr
    assert f"reused archived PDF {location}" in forced.stdout
    [part] = [p for p in handler.messages[-1].message.iter_attachments()
              if p.get_content_type() == "application/pdf"]
    assert part.get_payload(decode=True) == stored

    clean = run_cli(config, "archive", "verify", env=aws)
    # the PDF and its HTML
    assert (clean.returncode, clean.stdout.strip()) == (0, "2 files checked, 0 problems")
    put_raw(seaweed, s3_bucket, key, stored[:-10] + b"0123456789")
    changed = run_cli(config, "archive", "verify", env=aws)
    assert changed.returncode == 1
    assert f"changed: {location}" in changed.stderr
    # (a missing object: test_verify_uses_the_stored_checksum_and_finds_changed_and_missing_objects)

    pruned = run_cli(config, "archive", "prune", "--older-than", "0d", "--yes", env=aws)
    assert pruned.returncode == 0, pruned.stderr
    assert f"removed {location}" in pruned.stdout
    assert f"removed {entry['html']} (its HTML)" in pruned.stdout
    left = seaweed.client().list_objects_v2(Bucket=s3_bucket, Prefix="reports/")
    assert left.get("KeyCount", 0) == 0


def test_the_web_ui_serves_and_verifies_pdfs_from_the_s3_archive(
    tmp_path: Path, env: Seaweed, s3_bucket: str,  # noqa: F811
) -> None:
    from reports.config import load_config
    from reports.state.ledger import Ledger
    from reports.web.auth import Principal
    from reports.web.scoped import NotFound, Scoped

    config = load_config(s3_config(tmp_path, env, s3_bucket))
    archive = Archive(S3Store.from_config(config.archive))
    data, html = PDF + b"%web", b"<!doctype html><p>the report</p>"
    written = archive.write("acme-university", "acme-weekly", WEEK, data, html=html)
    assert written.html is not None
    with Ledger(config.state.url) as ledger:
        ledger.record_archive("acme-weekly", "acme-university", WEEK, path=written.location,
                              sha256=written.sha256, size=written.size, html=written.html)
        viewer = Principal("viewer", "viewer", None)
        scoped = Scoped(config, ledger, viewer, clock=lambda: datetime.now(UTC))
        entry, served = scoped.archive_file("acme-weekly", WEEK.key)
        assert (entry.path, served) == (written.location, data)
        assert scoped.archive_html("acme-weekly", WEEK.key)[1] == html
        result, _ = scoped.verify()
        assert result.clean and result.html_checked == 1
        for location in (written.location, written.html[0]):
            env.client().delete_object(Bucket=s3_bucket, Key=location.split("/", 3)[3])
        for read in (scoped.archive_file, scoped.archive_html):
            with pytest.raises(NotFound):
                read("acme-weekly", WEEK.key)
        result, checked = scoped.verify()
        assert checked == 1 and [e.path for e in result.missing] == [written.location]
        assert result.lines()[-1] == f"missing: {written.html[0]}"


def test_prune_deletes_the_period_with_its_superseded_objects(
    tmp_path: Path, env: Seaweed, s3_bucket: str,  # noqa: F811
) -> None:
    from reports.delivery.archive import parse_duration
    from reports.state.ledger import Ledger

    archive = Archive(S3Store(s3_bucket, "p", endpoint_url=env.endpoint))
    old, kept = Period(date(2025, 11, 17), date(2025, 11, 23)), WEEK
    with Ledger(f"sqlite:///{tmp_path / 'state.db'}") as ledger:
        for period, data in ((old, PDF), (old, PDF + b"regenerated"), (kept, PDF)):
            written = archive.write("acme", "weekly", period, data, html=b"<p>" + data)
            ledger.record_archive("weekly", "acme", period, path=written.location,
                                  sha256=written.sha256, size=written.size, html=written.html)
        assert len(archive.store.locations(f"acme/weekly/{old.key}.")) == 4  # 2 PDFs, 2 HTML
        removed = archive.prune(ledger, parse_duration("180d"), today=date(2026, 11, 27))
        # The current PDF and the one it superseded (kept as history in the index) both go.
        assert [e.period_end for e in removed] == [old.end, old.end]
        assert written.html is not None
        assert archive.store.locations("acme/weekly/") == sorted(
            [written.location, written.html[0]])
        assert [e.period_end for e in ledger.archive_entries()] == [kept.end]


@pytest.mark.parametrize(("line", "message"), [
    ('url = "s3://Bad_Bucket/x"', "archive.url: 's3://Bad_Bucket/x' is not s3://bucket/prefix"),
    ('url = "s3://ok-bucket/a/../b"', "archive.url: 's3://ok-bucket/a/../b': the prefix may not"),
    ('endpoint_url = "http://AKIAEXAMPLE:hunter2secret@s3.example:9000"',
     "archive.endpoint_url: the URL holds credentials"),
    ('region = "eu west"', "archive.region: 'eu west' is not a region name"),
])
def test_a_bad_archive_key_is_one_line_naming_it(tmp_path: Path, line: str, message: str) -> None:
    from reports.config import load_config
    from reports.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_text(f"[archive]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    text = str(refused.value)
    assert message in text and "\n" not in text and "hunter2secret" not in text


def test_one_boto3_client_per_process_endpoint_and_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from reports.delivery.s3store import process_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-one")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-one")
    client = process_client("http://127.0.0.1:1", "us-east-1")
    assert process_client("http://127.0.0.1:1", "us-east-1") is client  # every run reuses it
    assert process_client("http://127.0.0.1:2", "us-east-1") is not client
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-two")  # new credentials, new client
    assert process_client("http://127.0.0.1:1", "us-east-1") is not client
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-one")
    assert process_client("http://127.0.0.1:1", "us-east-1") is client
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked child makes its own
        try:
            fresh = process_client("http://127.0.0.1:1", "us-east-1")
            os.write(write, b"1" if fresh is not client else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
