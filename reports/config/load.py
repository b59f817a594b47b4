"""Reading config.toml: the file found, parsed, validated and resolved, or one ``ConfigError``."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reports.config.executor import with_state_url
from reports.config.file import first_error, refuse_inline_secrets, resolve_paths
from reports.config.models import DEFAULT_CONFIG, Config
from reports.errors import ConfigError

CONFIG_ENV = "IBL_REPORTS_CONFIG"


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """--config, else $IBL_REPORTS_CONFIG, else ./config.toml."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read, validate and resolve a config file (``env``: where url_env is read; os.environ)."""
    file = config_path(path)
    label = str(file)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "file not found (pass --config PATH or set IBL_REPORTS_CONFIG)", file=label
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc.__class__.__name__}", file=label) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=label) from None
    return parse_config(raw, source=file, env=env)


def parse_config(
    raw: dict[str, Any], *, source: Path, env: Mapping[str, str] | None = None
) -> Config:
    """Validate an already parsed TOML document."""
    label = str(source)
    refuse_inline_secrets(raw, label)
    from reports.config.catalogue import expand_catalogues, template_tables

    raw, catalogues = template_tables(raw, label)
    try:
        config = Config.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise ConfigError(first_error(exc), file=label) from None
    if catalogues:
        config = expand_catalogues(config, catalogues, source.parent, label)
    config = with_state_url(config, raw, os.environ if env is None else env, label)
    config = resolve_paths(config, source.parent)
    _check_templates_dir(config, label)
    return config


def _check_templates_dir(config: Config, label: str) -> None:
    """A ``[templates] dir`` that is not a folder fails now, not after fetching the data."""
    folder = config.templates.dir
    if folder is not None and not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"the templates folder {folder} {what}", file=label,
                          key="templates.dir")
