"""The rules a config value must satisfy, one function per kind of value.

Each returns the (possibly normalised) value or raises ValueError with a sentence naming the
value; the config models call them from their field validators, and pydantic puts the key in
front (``reports[1].timezone: unknown time zone 'Europe/Berln'``). Address and header text
follow the same rules delivery applies to every message (``reports.addresses``).
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reports.addresses import check_header_text, parse_address
from reports.errors import MailAddressError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
"""A report or org name: safe as a path component."""
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def header_text(value: str, what: str) -> str:
    """``value`` has no line break or control character, not even in an RFC 2047 word."""
    try:
        return check_header_text(value, what=what)
    except MailAddressError as exc:
        raise ValueError(str(exc)) from None


def addresses(values: list[str]) -> list[str]:
    """Each address parsed strictly (one plain address, no CR/LF); ValueError names the bad one."""
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


def base_url(value: str) -> str:
    """``embedded`` or an http(s) URL, without a trailing slash."""
    if value != "embedded" and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f'{value!r} is neither "embedded" nor an http(s) URL')
    return value.rstrip("/")


def env_name(value: str, *, hint: str = "") -> str:
    """The name of an environment variable (``hint`` follows the error, e.g. not the key)."""
    if not _ENV_RE.match(value):
        raise ValueError(f"{value!r} is not an environment variable name{hint}")
    return value


def safe_name(value: str) -> str:
    """A report or org name, safe as a path component."""
    if not NAME_RE.match(value):
        raise ValueError(
            f"{value!r} must be 1-100 letters, digits, '.', '_' or '-' and not start with "
            "'.' or '-'"
        )
    return value


def time_zone(value: str) -> str:
    """An IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def cron(value: str) -> str:
    """A 5-field cron expression."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{value!r} is not a 5-field cron expression (minute hour day "
                         "month weekday)")
    # Import lazily: APScheduler is not needed to read a config file otherwise.
    from reports.cron import NeverFiresError, trigger

    try:
        trigger(value, "UTC")
    except NeverFiresError:
        raise
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
    return value


def locale(value: str) -> str:
    """A locale Babel knows, BCP 47 (``de-DE``) or POSIX (``de_DE``), stored in the POSIX form
    Babel's formatting functions take."""
    from reports.lang import posix

    return posix(value)


def color(value: str) -> str:
    """A colour of the form #RRGGBB."""
    if not _COLOR_RE.match(value):
        raise ValueError(f"{value!r} is not a colour of the form #RRGGBB")
    return value
