"""config.toml: what the operator says, validated at load, one table a module.

``load`` finds, parses and resolves the file; ``models`` holds one pydantic model per table, every
key with its default and help text; the larger tables have a module each (``archive``,
``executor``, ``freshness``, ``privacy``, ``web``), ``catalogue`` expands an ``orgs_file`` into
one report per row, ``rules`` says what a valid value is (names, zones, cron, addresses, ...),
``file`` what reading a file adds (inline secrets refused, errors as one line, relative paths),
and ``reference`` generates the README's config reference.

A base of the pipeline: every stage may read the models; the package imports only the other
base modules (``errors``, ``addresses``, ``cron``, ``lang``).
"""

from __future__ import annotations

from reports.config.load import CONFIG_ENV, config_path, load_config, parse_config
from reports.config.models import (
    DEFAULT_CONFIG,
    AlertsConfig,
    ApiConfig,
    Config,
    EmailConfig,
    RenderConfig,
    ReportConfig,
    SchedulerConfig,
    StateConfig,
    TemplatesConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "AlertsConfig",
    "ApiConfig",
    "Config",
    "EmailConfig",
    "RenderConfig",
    "ReportConfig",
    "SchedulerConfig",
    "StateConfig",
    "TemplatesConfig",
    "config_path",
    "load_config",
    "parse_config",
]
