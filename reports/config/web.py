"""config.toml's ``[web]`` table and its ``[[web.users]]``: who may use the web UI, and how.

Password hashes are argon2 strings made by ``ibl-reports web hash-password``; the session secret
lives in the environment variable ``session_secret_env`` names, never in the file. Neither is ever
repeated in an error message.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Role = Literal["viewer", "operator"]


class WebUser(BaseModel):
    """[[web.users]]: one person who may sign in to the web UI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Login name (letters, digits, . _ @ -).")
    password_hash: str = Field(
        description="argon2 hash from `ibl-reports web hash-password` (never the password)."
    )
    role: Role = Field(
        "viewer", description='"viewer" (reads, downloads) or "operator" (also acts).'
    )
    orgs: list[str] | None = Field(
        None, description="Only these orgs' reports, runs and PDFs (unset: every org)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _USER_RE.match(value):
            raise ValueError(f"{value!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
        return value

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, value: str) -> str:
        # The value is a secret-ish string: the message never repeats it.
        if not value.startswith("$argon2"):
            raise ValueError(
                "not an argon2 hash; make one with `ibl-reports web hash-password`"
            )
        return value

    @field_validator("orgs")
    @classmethod
    def _orgs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for org in value:
            if not _NAME_RE.match(org):
                raise ValueError(f"{org!r} is not an org name")
        return value


class WebConfig(BaseModel):
    """[web]: the web UI (``ibl-reports web``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_secret_env: str = Field(
        "IBL_WEB_SESSION_SECRET",
        description="Env var with the session signing secret (unset: a new one per start, so "
        "sessions end on restart).",
    )
    session_hours: float = Field(8.0, gt=0, le=24 * 7, description="How long a login lasts (h).")
    login_max_failures: int = Field(
        5, ge=1, le=100,
        description="Failed logins of one name before a lockout (one address: five times as many).",
    )
    login_lockout_s: float = Field(
        300.0, ge=1, le=86400,
        description="How long logins are refused after too many failures (s).",
    )
    users: list[WebUser] = Field(
        default_factory=list, description="Who may sign in (see [[web.users]])."
    )

    @field_validator("session_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (write the name, "
                             "not the secret)")
        return value

    @model_validator(mode="after")
    def _unique_users(self) -> WebConfig:
        seen: set[str] = set()
        for user in self.users:
            if user.name in seen:
                raise ValueError(f"two web users are named {user.name!r}")
            seen.add(user.name)
        return self

    def user(self, name: str) -> WebUser | None:
        """The configured user called ``name``."""
        for user in self.users:
            if user.name == name:
                return user
        return None
