"""The retry policy of one API request: which outcomes are retried, how long to wait, and the
error when the retries run out.

429, 502, 503, 504, connect errors and timeouts are retried with exponential backoff and jitter
(stamina); ``Retry-After`` (seconds or HTTP date) replaces the backoff when the server sends it.
Retries stop at ``max_retries`` or at the run's deadline, whichever comes first; then the last
outcome becomes an ApiStatusError (an HTTP status) or ApiUnavailableError (no answer).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from reports.errors import ApiStatusError, ApiUnavailableError

RETRY_STATUSES = frozenset({429, 502, 503, 504})

# stamina logs every scheduled retry to the "stamina" logger; without a handler Python's
# last-resort handler prints "stamina.retry_scheduled" on stderr of the CLI. Logging is set up
# by the application (the scheduler's structured logs); a library only adds a NullHandler.
logging.getLogger("stamina").addHandler(logging.NullHandler())


class Retryable(Exception):
    """A retryable outcome of one attempt (internal; never escapes the client)."""

    def __init__(self, reason: str, *, status: int = 0, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait_s = wait_s


async def with_retries(
    attempt: Callable[[], Awaitable[httpx.Response]],
    *,
    max_retries: int,
    remaining_s: float,
    backoff_scale: float,
    where: dict[str, Any],
) -> httpx.Response:
    """Run ``attempt`` until it answers, retrying each ``Retryable`` it raises.

    The first attempt runs on its own: setting up stamina's retry context costs more CPU than
    the rest of our side of a request (~0.1 ms), and almost every request answers at once. Only
    after a retryable first outcome does stamina take over, with that outcome as its first
    attempt (re-raised, not sent again), so its backoff, attempt count and timeout are the same
    as if it had run from the start.
    """
    try:
        return await attempt()
    except Retryable as exc:
        first: Retryable | None = exc
    import stamina  # only now: a run whose requests all answer at once never needs it (~12 ms)

    scale = backoff_scale

    def backoff(exc: Exception) -> bool | float:
        if not isinstance(exc, Retryable):
            return False
        if exc.wait_s is None:
            return True
        return exc.wait_s * scale

    last: Retryable | None = None
    try:
        async for trial in stamina.retry_context(
            on=backoff,
            attempts=max_retries + 1,
            timeout=max(remaining_s, 0.001),
            wait_initial=0.5 * scale,
            wait_max=10.0 * scale,
            wait_jitter=1.0 * scale,
        ):
            with trial:
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await attempt()
    except Retryable as exc:
        last = exc
    assert last is not None
    attempts = max_retries + 1
    if last.status:
        raise ApiStatusError(
            f"the API answered HTTP {last.status} ({last.reason}) {_times(attempts)}; "
            "it may be deploying or overloaded, try again later",
            status=last.status,
            **where,
        ) from None
    raise ApiUnavailableError(
        f"the API could not be reached ({last.reason}) {_times(attempts)}; check api.base_url "
        "and the network",
        **where,
    ) from None


def parse_retry_after(value: str, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if garbled."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _times(attempts: int) -> str:
    return "once" if attempts == 1 else f"on all {attempts} attempts"
