"""config.toml's ``[archive]`` table: a local folder (``dir``, the default) or an S3 bucket.

``url = "s3://bucket/prefix"`` puts the archive on S3-compatible storage (AWS, or a server at
``endpoint_url``). Credentials never go here: boto3 reads ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (or a profile, or an instance role) from the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# S3 bucket naming rules: 3-63 lower-case letters, digits, '.', '-'; starts and ends alnum.
_URL_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9._/-]*)?$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$|^[a-z0-9-]{1,40}$")


class ArchiveConfig(BaseModel):
    """[archive]: where every generated PDF is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: Path = Field(Path("archive"), description="Archive root folder.")
    url: str | None = Field(
        None,
        description='S3 archive instead of dir: "s3://bucket/prefix" (credentials from '
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never here).",
    )
    endpoint_url: str | None = Field(
        None,
        description="S3-compatible server, e.g. http://127.0.0.1:8333 (unset: AWS S3).",
    )
    region: str | None = Field(
        None, description="S3 region for request signing (unset: AWS_DEFAULT_REGION or "
        "us-east-1).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _URL_RE.match(value)
        if not match:
            raise ValueError(
                f"{value!r} is not s3://bucket/prefix (bucket: 3-63 lower-case letters, digits, "
                "'.' or '-'; prefix: letters, digits, '.', '_', '-', '/')"
            )
        if ".." in (match.group(2) or "").split("/"):
            raise ValueError(f"{value!r}: the prefix may not contain '..'")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.username or parts.password:
            # Never echo it: it holds credentials.
            raise ValueError("the URL holds credentials; put them in AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY instead")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{value!r}: give the server only (scheme, host, port)")
        return value.rstrip("/")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION_RE.match(value):
            raise ValueError(f"{value!r} is not a region name such as eu-west-1")
        return value
