"""The org catalogue: one ``[[reports]]`` table, one CSV row per org, one report per row.

A table that names ``orgs_file = "orgs.csv"`` (relative to the config file) instead of ``org``
is a template: its ``name`` holds ``{org}``, and every row of the CSV becomes a report with that
row's ``org`` and, where the row has them, its own ``display_name``, ``recipients`` (addresses
separated by ``;``), ``timezone`` and ``locale``. An empty or missing column falls back to the
table's value. Every mistake names the file and the line, e.g.
``orgs.csv:12: recipients: 'bad@' is not a valid address``.

The template is validated once by pydantic; each row is checked by the same rules, then copied
from the template without a second validation (10,000 rows load in well under a second:
``bench/catalogue.py``). Time zones and locales repeat, so their checks are cached.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports.errors import ConfigError

if TYPE_CHECKING:
    from reports.config import Config, ReportConfig

# A plain dot-atom address: a subset of what mail.parse_address accepts, checked without building
# an email.headerregistry.Address (most of the cost of loading 10,000 rows). Anything else takes
# the full strict parse.
_PLAIN_ADDRESS_RE = re.compile(
    r"^[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
COLUMNS = ("org", "display_name", "recipients", "timezone", "locale")
PLACEHOLDER = "{org}"


def template_table(table: dict[str, Any], *, label: str, where: str) -> dict[str, Any]:
    """The table as pydantic should see it: a valid stand-in org where the rows will go.

    A table that mixes ``org`` with ``orgs_file``, or whose name has no ``{org}``, is a
    ConfigError naming ``where`` (``reports[3]``).
    """
    if "org" in table:
        raise ConfigError("write either org or orgs_file, not both", file=label,
                          key=f"{where}.org")
    name = table.get("name")
    if not isinstance(name, str) or PLACEHOLDER not in name:
        raise ConfigError(f"must contain {PLACEHOLDER} when orgs_file is given (one report per "
                          "org)", file=label, key=f"{where}.name")
    return {**table, "org": "org", "name": name.replace(PLACEHOLDER, "org")}





def template_tables(
    raw: dict[str, Any], label: str
) -> tuple[dict[str, Any], dict[int, str]]:
    """Tables with ``orgs_file`` as templates pydantic can check; {index: name pattern}."""
    tables = raw.get("reports")
    if not isinstance(tables, list):
        return raw, {}
    patterns: dict[int, str] = {}
    out: list[Any] = []
    for index, table in enumerate(tables):
        if isinstance(table, dict) and "orgs_file" in table:
            out.append(template_table(table, label=label, where=f"reports[{index + 1}]"))
            patterns[index] = table["name"]
        else:
            out.append(table)
    return ({**raw, "reports": out}, patterns) if patterns else (raw, {})


def expand_catalogues(
    config: Config, patterns: dict[int, str], base: Path, label: str
) -> Config:
    """Each template table replaced by one report per row of its CSV."""
    reports: list[ReportConfig] = []
    names: dict[str, str] = {}
    for index, report in enumerate(config.reports):
        if index not in patterns or report.orgs_file is None:
            expanded = [report]
            where = f"reports[{index + 1}]"
        else:
            file = report.orgs_file if report.orgs_file.is_absolute() else base / report.orgs_file
            expanded = expand(report.model_copy(update={"orgs_file": file}), patterns[index], file)
            where = f"{file}"
        for item in expanded:
            if item.name in names:
                raise ConfigError(
                    f"two reports are named {item.name!r} ({names[item.name]} and {where})",
                    file=label,
                )
            names[item.name] = where
        reports.extend(expanded)
    return config.model_copy(update={"reports": reports})


def expand(template: ReportConfig, name_pattern: str, file: Path) -> list[ReportConfig]:
    """One report per row of ``file``, copied from ``template`` (already validated)."""
    label = str(file)
    checks = _RowChecks()
    reports: list[ReportConfig] = []
    seen: dict[str, int] = {}
    for line, row in _rows(file, label):
        org = row.get("org") or ""
        try:
            if not org:
                raise _Bad("org", "required column is empty")
            if org in seen:
                raise _Bad("org", f"{org!r} is listed twice (first on line {seen[org]})")
            update = checks.row(org, row, name_pattern)
        except _Bad as exc:
            raise ConfigError(f"{exc.key}: {exc.message}", file=f"{label}:{line}") from None
        seen[org] = line
        reports.append(template.model_copy(update=update))
    if not reports:
        raise ConfigError("no orgs in the file (expected a header line and one row per org)",
                          file=label)
    return reports


class _Bad(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _rows(file: Path, label: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for every non-empty row; the header is checked first."""
    try:
        handle = file.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise ConfigError("file not found (orgs_file is relative to the config file)",
                          file=label) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=label) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise ConfigError("the file is empty (expected a header line: "
                                  f"{','.join(COLUMNS)})", file=label)
            columns = [h.strip() for h in header]
            for column in columns:
                if column not in COLUMNS:
                    raise ConfigError(
                        f"unknown column {column!r} (known: {', '.join(COLUMNS)})",
                        file=f"{label}:1",
                    )
            if "org" not in columns:
                raise ConfigError("the header has no org column", file=f"{label}:1")
            if len(set(columns)) != len(columns):
                raise ConfigError("a column is named twice in the header", file=f"{label}:1")
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(columns):
                    raise ConfigError(
                        f"{len(cells)} cells but the header has {len(columns)} columns",
                        file=f"{label}:{reader.line_num}",
                    )
                yield reader.line_num, {
                    k: v.strip() for k, v in zip(columns, cells, strict=False) if v.strip()
                }
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"not a valid UTF-8 CSV file: {exc}",
                              file=f"{label}:{reader.line_num}") from None


class _RowChecks:
    """The same rules as ``ReportConfig``'s validators, with the repeating ones cached."""

    def __init__(self) -> None:
        from reports.config import ReportConfig

        self._zones = _Cached(ReportConfig._zone)
        self._locales = _Cached(ReportConfig._locale)

    def row(self, org: str, row: dict[str, str], name_pattern: str) -> dict[str, Any]:
        from reports.config.rules import NAME_RE as _NAME_RE
        from reports.config.rules import addresses as _check_addresses
        from reports.config.rules import header_text as _check_header

        if not _NAME_RE.match(org):
            raise _Bad("org", f"{org!r} must be 1-100 letters, digits, '.', '_' or '-' and not "
                       "start with '.' or '-'")
        name = name_pattern.replace(PLACEHOLDER, org)
        if not _NAME_RE.match(name):
            raise _Bad("name", f"the report name {name!r} made from this org is not a valid "
                       "name (1-100 letters, digits, '.', '_' or '-')")
        update: dict[str, Any] = {"org": org, "name": name}
        if "display_name" in row:
            update["display_name"] = _checked("display_name", _check_header,
                                              row["display_name"], "display name")
        if "recipients" in row:
            addresses = [a.strip() for a in row["recipients"].split(";") if a.strip()]
            plain = all(len(a) <= 254 and len(a.partition("@")[0]) <= 64
                        and _PLAIN_ADDRESS_RE.match(a) for a in addresses)
            if not plain or len({a.lower() for a in addresses}) != len(addresses):
                _checked("recipients", _check_addresses, addresses)
            update["recipients"] = addresses
        if "timezone" in row:
            update["timezone"] = _checked("timezone", self._zones, row["timezone"])
        if "locale" in row:
            update["locale"] = _checked("locale", self._locales, row["locale"])
        return update


def _checked(key: str, check: Callable[..., Any], *args: Any) -> Any:
    try:
        return check(*args)
    except ValueError as exc:
        raise _Bad(key, str(exc)) from None


class _Cached:
    """A check whose verdict on a value never changes: run it once per distinct value."""

    def __init__(self, check: Callable[[str], str]) -> None:
        self._check = check
        self._ok: set[str] = set()

    def __call__(self, value: str) -> str:
        if value not in self._ok:
            self._check(value)
            self._ok.add(value)
        return value
