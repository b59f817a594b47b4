"""The archive on S3-compatible storage (``[archive] url = "s3://bucket/prefix"``), via boto3.

- Write-once: every put carries ``If-None-Match: *``, so the server refuses to replace an object
  (412). A 412 is then checked: the same bytes already there is success (a retried upload),
  different bytes is an ArchiveError naming the key.
- Integrity: the put carries the PDF's SHA-256 (``x-amz-checksum-sha256``), which the server
  checks against the body before storing it and returns on HEAD; ``stat`` (used by ``verify``)
  reads it from a HEAD instead of downloading the object. An object without that checksum (put
  by something else) is downloaded and hashed. The metadata (report, org, period, edition,
  sha256) is for people browsing the bucket, never trusted by ``verify``.
- Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
  a profile, an instance role), never from config.toml; no error message carries them.
- A missing bucket or refused credentials is an ArchiveAccessError (exit 2) and an unreachable
  endpoint an ArchiveError (exit 1), each one line naming the bucket and endpoint. The bucket is
  checked once per process, on first use, with a one-key listing of the prefix.
- One boto3 client per process (``process_client``: per endpoint, region and credentials), made
  anew in a forked child, so a worker builds it (and its connection pool) once, not once per run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reports.delivery.store import Stat
from reports.errors import ArchiveAccessError, ArchiveError, ArchivePathError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client

    from reports.config.archive import ArchiveConfig

_DENIED = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403",
           "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed"}
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}


_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_clients: dict[tuple[str | None, str | None, str], tuple[int, S3Client]] = {}
_checked: set[tuple[int, int, str, str]] = set()
_clients_lock = threading.Lock()


def process_client(endpoint_url: str | None, region: str | None) -> S3Client:
    """This process's boto3 client for the endpoint, region and the credentials in the
    environment: made on first use and again in a forked child (clients are not fork-safe)."""
    import boto3
    from botocore.config import Config as BotoConfig

    # The credentials only as a digest: a changed key gets a new client, nothing is kept.
    creds = hashlib.sha256("\0".join(os.environ.get(v, "") for v in _CREDENTIAL_VARS)
                           .encode()).hexdigest()
    key = (endpoint_url, region, creds)
    with _clients_lock:
        held = _clients.get(key)
        if held is not None and held[0] == os.getpid():
            return held[1]
        # A session of its own: boto3's default session keeps the first credentials it read,
        # so a changed key would get a new client that still signs with the old one.
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            config=BotoConfig(
                connect_timeout=5, read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"} if endpoint_url else None,
            ),
        )
        _clients[key] = (os.getpid(), client)
        return client


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` as (bucket, ``some/prefix/``); the prefix may be empty."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


class S3Store:
    """An S3 bucket (and key prefix) on AWS or any S3-compatible server."""

    write_once = True

    def __init__(
        self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
        region: str | None = None, client: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self._client_obj = client
        self._checked = False
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ArchiveConfig) -> S3Store:
        """The store ``[archive] url`` (with ``endpoint_url`` and ``region``) names."""
        assert config.url is not None
        bucket, prefix = split_url(config.url)
        return cls(bucket, prefix, endpoint_url=config.endpoint_url, region=config.region)

    def __repr__(self) -> str:
        return f"S3Store({self.describe()!r})"

    @property
    def _endpoint(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region or 'default region'})"

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self._endpoint}"

    # -- locations -------------------------------------------------------------------------

    def location(self, key: str) -> str:
        """The ``s3://`` URL of ``key`` (what the archive index records)."""
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _key(self, location: str) -> str:
        head = f"s3://{self.bucket}/{self.prefix}"
        if not location.startswith(head) or ".." in location.split("/"):
            raise ArchivePathError(
                f"the index lists {location}, outside the archive s3://{self.bucket}/"
                f"{self.prefix}", path=location,
            )
        return location[len("s3://") + len(self.bucket) + 1:]

    # -- the client ------------------------------------------------------------------------

    def _client(self) -> S3Client:
        with self._lock:
            client = self._client_obj or process_client(self.endpoint_url, self.region)
            checked = (os.getpid(), id(client), self.bucket, self.prefix)
            if not self._checked and checked not in _checked:
                self._call(client.list_objects_v2, "listing", f"s3://{self.bucket}/{self.prefix}",
                           Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
                _checked.add(checked)
            self._checked = True
            return client

    def _call(self, method: Any, action: str, target: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, action, target) from None

    def _translate(self, exc: Exception, action: str, target: str) -> ArchiveError:
        """One line naming the bucket and endpoint (never the credentials) for a boto error."""
        from botocore.exceptions import (
            ClientError,
            ConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        if isinstance(exc, ClientError):
            return self._client_error(exc, action, target)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ArchiveAccessError(
                f"no S3 credentials for the archive bucket '{self.bucket}' at {self._endpoint}: "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (archive.url)", path=target,
            )
        if isinstance(exc, ConnectionError):
            return ArchiveError(
                f"cannot reach the S3 endpoint {self._endpoint} (bucket '{self.bucket}'): "
                f"{type(exc).__name__}", path=target,
            )
        return ArchiveError(
            f"S3 {action} {target} at {self._endpoint} failed: {type(exc).__name__}",
            path=target,
        )

    def _client_error(self, exc: ClientError, action: str, target: str) -> ArchiveError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING_BUCKET:
            return ArchiveAccessError(
                f"the S3 bucket '{self.bucket}' does not exist at {self._endpoint} (archive.url)",
                path=target,
            )
        if code in _DENIED or status == 403:
            return ArchiveAccessError(
                f"the S3 endpoint {self._endpoint} refused access to the bucket '{self.bucket}' "
                f"({code or status}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and the "
                "key's permissions", path=target,
            )
        return ArchiveError(
            f"S3 {action} {target} at {self._endpoint} failed: {code or status} "
            f"{str(error.get('Message', ''))[:200]}".rstrip(), path=target,
        )

    # -- the protocol ----------------------------------------------------------------------

    def check(self) -> None:
        self._client()

    def put(self, key: str, data: bytes, *, sha256: str, meta: Mapping[str, str],
            content_type: str = "application/pdf") -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        location = self.location(key)
        self._key(location)
        client = self._client()
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, IfNoneMatch="*",
                ChecksumSHA256=checksum, ContentType=content_type,
                Metadata={**meta, "sha256": sha256},
            )
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status != 412 and exc.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise self._client_error(exc, "writing", location) from None
            existing = self.stat(location)
            if existing != Stat(sha256, len(data)):
                found = existing.sha256[:12] if existing else "?"
                raise ArchiveError(
                    f"{location} already exists with different content (sha256 {found}..., "
                    f"this file {sha256[:12]}...); the archive is write-once, so it is not "
                    "replaced", path=location,
                ) from None
        except BotoCoreError as exc:
            raise self._translate(exc, "writing", location) from None
        return location

    def get(self, location: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(location)
        client = self._client()
        try:
            response = client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_KEY:
                raise ArchiveError(f"{location} is missing from the archive bucket",
                                   path=location) from None
            raise self._client_error(exc, "reading", location) from None
        except BotoCoreError as exc:
            raise self._translate(exc, "reading", location) from None
        return body

    def stat(self, location: str) -> Stat | None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(location)
        client = self._client()
        try:
            head = client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_KEY:
                return None
            raise self._client_error(exc, "checking", location) from None
        except BotoCoreError as exc:
            raise self._translate(exc, "checking", location) from None
        checksum = head.get("ChecksumSHA256")
        size = int(head["ContentLength"])
        if checksum and "-" not in checksum:  # "-N": a multipart composite, not the file's hash
            return Stat(base64.b64decode(checksum).hex(), size)
        data = self.get(location)
        return Stat(hashlib.sha256(data).hexdigest(), len(data))

    def delete(self, location: str) -> None:
        key = self._key(location)
        client = self._client()
        self._call(client.delete_object, "deleting", location, Bucket=self.bucket, Key=key)

    def locations(self, key_prefix: str) -> list[str]:
        client = self._client()
        found: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(client.list_objects_v2, "listing", self.location(key_prefix),
                              Bucket=self.bucket, Prefix=self.prefix + key_prefix, **token)
            found += [f"s3://{self.bucket}/{item['Key']}" for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(found)
            token = {"ContinuationToken": page["NextContinuationToken"]}
