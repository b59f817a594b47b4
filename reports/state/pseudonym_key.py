"""The pseudonym key: the secret behind learners' pseudonyms (``[privacy] pseudonym_key_env``).

The key comes from the environment variable the config names; when that is unset, a random key
is generated once and kept in ``pseudonym.key`` beside the state database (or beside the config
file for a server database), created with mode 0600 and never printed. The same key gives the
same pseudonym to the same learner in every period and every process; a new key (rotation, a
lost file) gives everyone a new pseudonym, which is the only way to break the linkage.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from reports.config import Config
from reports.errors import ConfigError

KEY_FILE = "pseudonym.key"
KEY_BYTES = 32


def key_path(config: Config) -> Path:
    """Where the generated key lives: beside a SQLite state database, else beside config.toml."""
    prefix = "sqlite:///"
    url = config.state.url
    if url.startswith(prefix):
        rest = url[len(prefix):].split("?", 1)[0]
        if rest and rest != ":memory:":
            return Path(rest).parent / KEY_FILE
    return config.source.parent / KEY_FILE


def load_key(config: Config, env: Mapping[str, str]) -> bytes:
    """The pseudonym key: from the environment, else the key file (created on first use)."""
    name = config.privacy.pseudonym_key_env
    value = env.get(name, "")
    if value:
        if len(value) < 16:
            raise ConfigError(
                f"the pseudonym key in ${name} is shorter than 16 characters; use a long random "
                "value (e.g. python -c 'import secrets; print(secrets.token_hex(32))')",
                file=str(config.source), key="privacy.pseudonym_key_env",
            )
        return value.encode("utf-8")
    return _from_file(key_path(config))


def fingerprint(key: bytes) -> str:
    """A value that changes with the key and reveals nothing of it (for the render key)."""
    return hashlib.sha256(hmac.new(key, b"ibl-reports/render-key", "sha256").digest()).hexdigest()


def _from_file(path: Path) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    _create(path)
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the pseudonym key file {path} is readable by others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); run chmod 600 on it",
                key="privacy.pseudonym_key_env",
            )
        data = path.read_bytes().strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read the pseudonym key file {path}: {exc.strerror or exc}",
                          key="privacy.pseudonym_key_env") from None
    if len(data) < 32:
        raise ConfigError(f"the pseudonym key file {path} is damaged (too short); restore it "
                          "from a backup (a new key gives every learner a new pseudonym)",
                          key="privacy.pseudonym_key_env")
    return data


def _create(path: Path) -> None:
    """Write a new key file atomically and exclusively: a concurrent process keeps the winner's."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # fails if another process made it first: keep theirs
    except OSError as exc:
        raise ConfigError(f"cannot create the pseudonym key file {path}: {exc.strerror or exc}",
                          key="privacy.pseudonym_key_env") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
