"""The README's config reference, generated from the config models (a test keeps them equal).

Every key's table, name, default and help text come from the pydantic models in
``reports.config``; print it with
``uv run python -c 'from reports.config.reference import reference_markdown as r; print(r())'``.
"""

from __future__ import annotations

from pydantic import BaseModel

from reports.config import Config, ReportConfig
from reports.config.web import WebUser


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
