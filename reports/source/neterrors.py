"""Why a request got no HTTP answer, in words an operator can act on, naming the host.

httpx wraps the cause (``httpx.ConnectError`` from ``httpcore.ConnectError`` from a
``socket.gaierror``, a ``ConnectionRefusedError``, an ``ssl.SSLError`` ...); its own text is
often just "All connection attempts failed". ``explain`` walks the chain of causes and says
which it was: a DNS failure, a refused connection, an unreachable network, a timeout, TLS.
``is_final`` tells the failures that another try cannot cure (a name that does not exist, a
certificate that does not verify), so the client stops at once instead of retrying them.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

import httpx

_NO_SUCH_NAME = {getattr(socket, "EAI_NONAME", -2), getattr(socket, "EAI_NODATA", -5)}
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _where(exc: BaseException, fallback: str) -> str:
    try:
        url = exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return fallback
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.host}:{port}"


def explain(exc: BaseException, *, fallback_host: str, timeout_s: float) -> str:
    """One phrase naming the host and the cause of a failed request without an HTTP answer."""
    where = _where(exc, fallback_host)
    host = where.rsplit(":", 1)[0]
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting to {where} timed out after {timeout_s:g} s"
    if isinstance(exc, httpx.PoolTimeout):
        return f"no free connection to {where} within {timeout_s:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"{where} sent no answer within {timeout_s:g} s"
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            detail = cause.strerror or str(cause)
            if cause.errno in _NO_SUCH_NAME:
                return f"DNS: the name {host} could not be resolved ({detail})"
            return f"DNS: the name {host} could not be looked up ({detail}; is there a network?)"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (f"TLS: the certificate of {where} is not trusted "
                    f"({cause.verify_message or cause.reason})")
        if isinstance(cause, ssl.SSLError):
            return f"TLS with {where} failed ({cause.reason or type(cause).__name__})"
        if isinstance(cause, ConnectionRefusedError):
            return f"{where} refused the connection (nothing listens on that port?)"
        if isinstance(cause, ConnectionResetError):
            return f"{where} reset the connection"
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
            return f"{where} is unreachable ({cause.strerror}; is there a network?)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where} closed the connection without a complete answer"
    return f"the connection to {where} failed ({type(exc).__name__}: {exc or 'no detail'})"


def is_final(exc: BaseException) -> bool:
    """A failure no retry can cure: a name that does not exist, a certificate not trusted."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return cause.errno in _NO_SUCH_NAME
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
    return False
