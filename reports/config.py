"""config.toml: one pydantic model per table, every key with its default and help text.

``load_config`` turns every mistake into a one-line ``ConfigError`` that names the file and the
key, e.g. ``config.toml: reports[1].timezone: unknown time zone 'Europe/Berln'``. Arrays of tables
are counted from 1 (the first ``[[reports]]`` is ``reports[1]``). Unknown keys are errors.
Secrets are never written in the file: the file names the environment variable that holds them.
Relative paths are resolved against the folder that holds the config file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reports.errors import ConfigError
from reports.executorconfig import ExecutorConfig, check_timeouts, with_state_url
from reports.freshness_config import FreshnessConfig, FreshnessOverride, effective
from reports.privacyconfig import Learners, PrivacyConfig, check_group_size
from reports.webconfig import WebConfig, WebUser

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "IBL_REPORTS_CONFIG"

# Keys whose presence means a secret was written inline.
_SECRET_KEYS = {"api_key", "apikey", "key", "token", "password", "smtp_password", "secret"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def _check_header(value: str, what: str) -> str:
    """``value`` has no line break or control character, not even in an RFC 2047 word."""
    from reports.delivery.mail import check_header_text
    from reports.errors import MailAddressError

    try:
        return check_header_text(value, what=what)
    except MailAddressError as exc:
        raise ValueError(str(exc)) from None


def _check_addresses(values: list[str]) -> list[str]:
    """Each address parsed strictly (one plain address, no CR/LF); ValueError names the bad one."""
    from reports.delivery.mail import parse_address
    from reports.errors import MailAddressError

    seen: set[str] = set()
    for value in values:
        try:
            parse_address(value, what="address")
        except MailAddressError as exc:
            raise ValueError(str(exc)) from None
        if value.lower() in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value.lower())
    return values


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(_Table):
    """[api]: where the data comes from."""

    base_url: str = Field(
        "embedded",
        description='"embedded" for the built-in demo API, or the Data Manager URL, '
        "e.g. https://base.manager.iblai.app",
    )
    api_key_env: str = Field("IBL_API_KEY", description="Env var that holds the API key.")
    max_concurrency: int = Field(8, ge=1, le=256, description="Requests in flight per run.")
    timeout_s: float = Field(30.0, gt=0, le=600, description="Timeout of one request (s).")
    page_size: int = Field(100, ge=1, le=10_000, description="Users asked for per page.")
    deadline_s: float = Field(600.0, gt=0, description="Overall time limit of one collection (s).")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of one request.")
    retry_after_cap_s: float = Field(
        60.0, ge=0, description="Longest Retry-After we honour (s); longer waits fail the run."
    )
    department_id: int | None = Field(None, description="Restrict to one department.")
    department_mode: bool = Field(False, description="Send department_mode=1 with department_id.")
    include_main_platform: bool = Field(True, description="Include the main platform's data.")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value != "embedded" and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f'{value!r} is neither "embedded" nor an http(s) URL')
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (write the name, "
                             "not the key)")
        return value


class EmailConfig(_Table):
    """[email]: how reports are delivered."""

    backend: Literal["file", "smtp"] = Field("file", description='"file" (outbox) or "smtp".')
    outbox_dir: Path = Field(Path("outbox"), description="Where the file backend writes .eml.")
    from_: str = Field(
        "ibl-reports <reports@localhost>", alias="from", description="The From address."
    )
    smtp_host: str = Field("localhost", description="SMTP server host.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description='"starttls", "ssl" (implicit TLS) or "none".'
    )
    username: str | None = Field(None, description="SMTP user name (enables AUTH).")
    password_env: str = Field("IBL_SMTP_PASSWORD", description="Env var with the SMTP password.")
    ca_file: Path | None = Field(None, description="CA bundle for a private CA.")
    timeout_s: float = Field(60.0, gt=0, description="SMTP socket timeout (s).")
    max_message_bytes: int = Field(
        20_000_000, ge=10_000, description="Largest message we send, whatever SIZE says."
    )
    attach_csv: bool = Field(False, description="Attach the CSV data files besides the PDF.")
    max_attempts: int = Field(3, ge=1, le=10, description="Tries per recipient within one run.")
    retry_backoff_s: float = Field(
        5.0, ge=0, le=600, description="First wait between tries (doubles each time)."
    )
    subject: str = Field(
        "{period_title} report, {org_name}, {period_label}",
        description="Subject template; fields: period_title, org_name, period_label, report.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _check_addresses([value])[0]

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return _check_header(value, "the subject template")


class ArchiveConfig(_Table):
    """[archive]: where every generated PDF is kept."""

    dir: Path = Field(Path("archive"), description="Archive root folder.")


class StateConfig(_Table):
    """[state]: the database of runs and deliveries."""

    url: str = Field(
        "sqlite:///state.db", repr=False,
        description="SQLAlchemy URL of the state database (SQLite; a URL with a password goes "
        "in the variable url_env names).",
    )
    url_env: str | None = Field(
        None,
        description="Env var that holds the state database URL, e.g. postgresql+psycopg://... "
        "(replaces url).",
    )
    stuck_after_s: float = Field(
        3600.0, gt=0,
        description="A run in a working state longer than this is recoverable, even if its "
        "lease is still renewed.",
    )
    lease_s: float | None = Field(
        None, gt=0,
        description="A run's lease: renewed every lease_s / 3 while it works; once expired "
        "(its process died) the run is recoverable. Default: the smaller of 15 s and "
        "stuck_after_s / 4.",
    )

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (write the name, "
                             "not the URL)")
        return value

    @property
    def lease(self) -> float:
        """The lease in seconds (the default worked out)."""
        return self.lease_s if self.lease_s is not None else min(15.0, self.stuck_after_s / 4)


class TemplatesConfig(_Table):
    """[templates]: user overrides of the report templates."""

    dir: Path | None = Field(None, description="Folder whose templates override the built-in.")


class AlertsConfig(_Table):
    """[alerts]: who hears about failed runs."""

    recipients: list[str] = Field(default_factory=list, description="Addresses for failures.")

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return _check_addresses(value)


class RenderConfig(_Table):
    """[render]: limits of the render worker."""

    timeout_s: float = Field(300.0, gt=0, description="Time limit of one render (s).")
    memory_mb: int = Field(1500, ge=100, description="Memory limit of one render (MiB).")
    workers: int = Field(0, ge=0, le=64, description="Processes for generate --all (0 = cores).")


class SchedulerConfig(_Table):
    """[scheduler]: the daemon."""

    misfire_grace_s: int = Field(
        6 * 3600, ge=1, description="How late a fire may still run (s)."
    )
    run_timeout_s: float = Field(1800.0, gt=0, description="Time limit of one scheduled run (s).")
    health_file: Path = Field(Path("scheduler.health"), description="Touched on every tick.")
    tick_s: float = Field(30.0, gt=0, description="How often the health file is written (s).")
    shutdown_grace_s: float = Field(
        30.0, ge=0, le=3600,
        description="On SIGTERM, how long running sends may finish before they are stopped (s).",
    )


class ReportConfig(_Table):
    """[[reports]]: one scheduled report."""

    name: str = Field(description="Unique report name (letters, digits, . _ -).")
    org: str = Field(description="The ibl.ai org (platform key); not with orgs_file.")
    orgs_file: Path | None = Field(
        None,
        description="CSV of orgs instead of org: one report per row, {org} in name; columns "
        "org, display_name, recipients (;-separated), timezone, locale (empty: this table's).",
    )
    period: Literal["weekly", "monthly"] = Field(description='"weekly" or "monthly".')
    schedule: str = Field(description="5-field cron expression, in the report's time zone.")
    timezone: str = Field("UTC", description="IANA time zone of the schedule and the period.")
    recipients: list[str] = Field(default_factory=list, description="Who receives the report.")
    display_name: str | None = Field(None, description="Org name printed in the report.")
    locale: str = Field("en", description="Locale for numbers and dates (Babel).")
    logo: Path | None = Field(None, description="Logo image (PNG/SVG) for the cover.")
    accent_color: str = Field("#0072B2", description="Accent colour, #RRGGBB.")
    top_n: int = Field(15, ge=1, le=200, description="Rows of each top-N table in the PDF.")
    catch_up: Literal["latest", "all", "none"] = Field(
        "latest", description="What to send on start for periods missed while down."
    )
    catch_up_max_periods: int = Field(4, ge=1, le=52, description="Bound for catch_up = all.")
    freshness: FreshnessOverride | None = Field(
        None, description="[reports.freshness]: any [freshness] key, for this report only.")
    learners: Learners | None = Field(
        None, description="This report's learners form; unset: [privacy] learners."
    )
    attach_learner_list: bool | None = Field(
        None, description="Embed the per-learner CSV; unset: [privacy] attach_learner_list."
    )
    min_group_size: int | None = Field(
        None, description="Smallest count shown per course; unset: [privacy] min_group_size."
    )

    @field_validator("min_group_size")
    @classmethod
    def _group(cls, value: int | None) -> int | None:
        return check_group_size(value)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return _check_addresses(value)

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str | None) -> str | None:
        # It goes into the mail subject: refuse line breaks here, not after the run archived.
        return None if value is None else _check_header(value, "display name")

    @field_validator("name", "org")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                f"{value!r} must be 1-100 letters, digits, '.', '_' or '-' and not start with "
                "'.' or '-'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day "
                             "month weekday)")
        # Import lazily: APScheduler is not needed to read a config file otherwise.
        from reports.cron import trigger

        try:
            trigger(value, "UTC")
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        from babel import Locale, UnknownLocaleError

        try:
            Locale.parse(value)
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"unknown locale {value!r}") from None
        return value

    @field_validator("accent_color")
    @classmethod
    def _color(cls, value: str) -> str:
        if not _COLOR_RE.match(value):
            raise ValueError(f"{value!r} is not a colour of the form #RRGGBB")
        return value

    @property
    def org_name(self) -> str:
        """The org name to print."""
        return self.display_name or self.org


class Config(_Table):
    """The whole config.toml."""

    api: ApiConfig = Field(default_factory=lambda: ApiConfig())
    email: EmailConfig = Field(default_factory=lambda: EmailConfig())
    archive: ArchiveConfig = Field(default_factory=lambda: ArchiveConfig())
    state: StateConfig = Field(default_factory=lambda: StateConfig())
    templates: TemplatesConfig = Field(default_factory=lambda: TemplatesConfig())
    alerts: AlertsConfig = Field(default_factory=lambda: AlertsConfig())
    render: RenderConfig = Field(default_factory=lambda: RenderConfig())
    scheduler: SchedulerConfig = Field(default_factory=lambda: SchedulerConfig())
    executor: ExecutorConfig = Field(default_factory=lambda: ExecutorConfig())
    freshness: FreshnessConfig = Field(default_factory=lambda: FreshnessConfig())
    web: WebConfig = Field(default_factory=lambda: WebConfig())
    privacy: PrivacyConfig = Field(default_factory=lambda: PrivacyConfig())
    reports: list[ReportConfig] = Field(default_factory=list)
    source: Annotated[Path, Field(exclude=True)] = Path(DEFAULT_CONFIG)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for report in self.reports:
            if report.name in seen:
                raise ValueError(f"two reports are named {report.name!r}")
            seen.add(report.name)
        return self

    @model_validator(mode="after")
    def _ordered_timeouts(self) -> Config:
        check_timeouts(self.state, self.render.timeout_s, self.scheduler.run_timeout_s,
                       self.executor)
        return self

    def freshness_for(self, report: ReportConfig) -> FreshnessConfig:
        """The report's freshness gate settings: its own table over ``[freshness]``."""
        return effective(self.freshness, report.freshness)

    def report(self, name: str) -> ReportConfig:
        """The report called ``name``, or a ConfigError listing the known ones."""
        for report in self.reports:
            if report.name == name:
                return report
        known = ", ".join(r.name for r in self.reports) or "none"
        raise ConfigError(
            f"no report named {name!r} (configured: {known})", file=str(self.source)
        )


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
    _refuse_inline_secrets(raw, label)
    from reports.catalogue import expand_catalogues, template_tables

    raw, catalogues = template_tables(raw, label)
    try:
        config = Config.model_validate({**raw, "source": source})
    except ValidationError as exc:
        raise ConfigError(_first_error(exc), file=label) from None
    if catalogues:
        config = expand_catalogues(config, catalogues, source.parent, label)
    config = with_state_url(config, raw, os.environ if env is None else env, label)
    return _resolve_paths(config, source.parent)


def _refuse_inline_secrets(raw: dict[str, Any], label: str) -> None:
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


def _first_error(exc: ValidationError) -> str:
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


def _resolve_paths(config: Config, base: Path) -> Config:
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


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(table, key, default, help) for every config key, for the README's config reference."""
    rows: list[tuple[str, str, str, str]] = []
    tables: list[tuple[str, type[BaseModel]]] = [
        (name, field.annotation)  # type: ignore[misc]
        for name, field in Config.model_fields.items()
        if name not in ("reports", "source")
    ]
    tables.append(("[web.users]", WebUser))
    tables.append(("[reports]", ReportConfig))
    for table, model in tables:
        for key, info in model.model_fields.items():
            if info.is_required():
                default = "required"
            elif info.default_factory is not None:
                default = repr(info.default_factory())  # type: ignore[call-arg]
            else:
                default = repr(info.default)
            default = default.replace("PosixPath(", "").replace("')", "'")
            rows.append((table, info.alias or key, default, info.description or ""))
    return rows


def reference_markdown() -> str:
    """The README's config reference, generated from the models (a test keeps them equal)."""
    lines: list[str] = []
    current = None
    for table, key, default, meaning in reference_rows():
        if table != current:
            title = {
                "[reports]": "`[[reports]]` (one table per report)",
                "[web.users]": "`[[web.users]]` (one table per web UI user)",
            }.get(table, f"`[{table}]`")
            lines += ["", f"#### {title}", "", "| key | default | meaning |", "| --- | --- | --- |"]
            current = table
        cell = meaning.replace("|", "\\|")
        lines.append(f"| `{key}` | `{default}` | {cell} |")
    return "\n".join(lines).strip() + "\n"
