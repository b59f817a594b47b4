"""Reading one API answer: the JSON body into its pydantic model, or an ApiPayloadError that
says what came instead (an HTML page, invalid JSON, the wrong shape) without the API key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from reports.errors import ApiPayloadError

_M = TypeVar("_M", bound=BaseModel)


def parse_answer(
    model: type[_M], response: httpx.Response, where: dict[str, Any],
    redact: Callable[[str], str],
) -> _M:
    """The answer as ``model``; ``redact`` hides the key in anything shown from the body."""
    try:  # one pass in pydantic-core: half the CPU of json.loads + model_validate on a page
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        if exc.errors()[0]["type"] != "json_invalid":
            raise _shape_error(exc, where, redact) from None
    # pydantic's parser refused the bytes; json.loads has the last word (it also reads a BOM
    # and UTF-16/32), and otherwise says what came instead.
    content_type = response.headers.get("content-type", "")
    try:
        raw = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        kind = "an HTML page" if "html" in content_type or _looks_html(response) else (
            "invalid JSON"
        )
        raise ApiPayloadError(
            f"the API answered {kind} instead of JSON (content-type "
            f"{content_type or 'none'!r}, starts with {_snippet(response, redact)!r}); "
            "is api.base_url right, or is a proxy in the way?",
            **where,
        ) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _shape_error(exc, where, redact) from None


def _shape_error(exc: ValidationError, where: dict[str, Any], redact: Callable[[str], str]
                 ) -> ApiPayloadError:
    return ApiPayloadError(
        f"the answer is not the expected JSON: {redact(_first_error(exc))}", **where
    )


def status_phrase(status: int) -> str:
    """The reason phrase of an HTTP status ("Service Unavailable")."""
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


def _snippet(response: httpx.Response, redact: Callable[[str], str]) -> str:
    text = response.content[:60].decode("utf-8", "replace")
    return redact(" ".join(text.split()))


def _looks_html(response: httpx.Response) -> bool:
    head = response.content[:200].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<"))


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    error = errors[0]
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {str(got)[:40]!r})"
    more = f" and {len(errors) - 1} more problem(s)" if len(errors) > 1 else ""
    return f"{loc}: {error['msg']}{shown}{more}"
