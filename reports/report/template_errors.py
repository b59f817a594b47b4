"""A Jinja2 error as one line naming the template file and line (a user's override or ours)."""

from __future__ import annotations

import traceback


def template_location(exc: BaseException) -> str | None:
    """``path/to/file.html.j2, line N`` of the innermost template frame of ``exc``, if any.

    Jinja2 rewrites its tracebacks so that the frames of compiled templates carry the template's
    file name and line: an error raised while rendering (an undefined variable, a failing
    filter) is found there, in the file that was really used (the override, not the built-in).
    """
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        name = frame.filename
        if name.endswith((".py", ".pyc")) or name.startswith("<"):
            continue
        return f"{name}, line {frame.lineno}"
    return None


def describe(exc: BaseException) -> str:
    """One line: where in which template, and what went wrong."""
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name}, line {exc.lineno}: {exc.message}"
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template {exc.name!r} not found"
    where = template_location(exc)
    what = f"{type(exc).__name__}: {exc}"
    return f"{where}: {what}" if where else what
