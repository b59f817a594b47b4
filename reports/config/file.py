"""What reading a config file adds to the models: inline secrets refused, the first validation
error as one line naming the key, relative paths resolved against the file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from reports.errors import ConfigError

if TYPE_CHECKING:
    from reports.config import Config

# Keys whose presence means a secret was written inline.
_SECRET_KEYS = {"api_key", "apikey", "key", "token", "password", "smtp_password", "secret"}


def refuse_inline_secrets(raw: dict[str, Any], label: str) -> None:
    """A ConfigError naming the key if a secret is written in the file itself."""
    for table_name, table in raw.items():
        tables = table if isinstance(table, list) else [table]
        for index, item in enumerate(tables, start=1):
            if not isinstance(item, dict):
                continue
            for key in item:
                if key.lower() in _SECRET_KEYS:
                    where = f"{table_name}[{index}]" if isinstance(table, list) else table_name
                    hint = {"api": "api_key_env", "web": "session_secret_env",
                            "privacy": "pseudonym_key_env"}.get(
                        table_name, "password_env"
                    )
                    raise ConfigError(
                        f"secrets must not be written in the config file; put it in an "
                        f"environment variable and name that variable with {hint}",
                        file=label, key=f"{where}.{key}",
                    )


def first_error(exc: ValidationError) -> str:
    """The first validation error as ``key: message`` (arrays of tables counted from 1)."""
    error = exc.errors()[0]
    parts: list[str] = []
    for item in error["loc"]:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item + 1}]" if parts else f"[{item + 1}]"
        else:
            parts.append(str(item))
    if not parts and error["type"] == "value_error":  # a check across tables names its key
        return str(error["msg"]).removeprefix("Value error, ")
    key = ".".join(parts) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key (check the spelling; see the config reference in the README)"
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        if "input" in error and kind not in ("value_error",) and not isinstance(
            error["input"], dict | list
        ):
            message += f" (got {error['input']!r})"
    return f"{key}: {message}"


def resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths made relative to ``base``, the folder that holds the config file."""
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    email = config.email.model_copy(update={
        "outbox_dir": resolve(config.email.outbox_dir),
        "ca_file": resolve(config.email.ca_file) if config.email.ca_file else None,
    })
    archive = config.archive.model_copy(update={"dir": resolve(config.archive.dir)})
    templates = config.templates.model_copy(
        update={"dir": resolve(config.templates.dir) if config.templates.dir else None}
    )
    scheduler = config.scheduler.model_copy(
        update={"health_file": resolve(config.scheduler.health_file)}
    )
    reports = [
        r.model_copy(update={"logo": resolve(r.logo)}) if r.logo else r for r in config.reports
    ]
    state = config.state
    prefix = "sqlite:///"
    if state.url.startswith(prefix) and not state.url.startswith("sqlite:////"):
        rel = state.url[len(prefix):]
        if rel and rel != ":memory:":
            state = state.model_copy(update={"url": prefix + str(resolve(Path(rel)))})
    return config.model_copy(update={
        "email": email, "archive": archive, "templates": templates, "scheduler": scheduler,
        "reports": reports, "state": state,
    })
