"""The error tree of ibl-reports.

Every error the tool raises on purpose derives from ``ReportsError`` and carries the context a
user needs to act on it (config key, endpoint, org, course, recipient, path). Library errors are
translated at the seam where they happen, with ``raise ... from exc``.

    ReportsError
    ├── ConfigError            config file, key            (exit 2)
    ├── UsageError             bad CLI combination         (exit 2)
    ├── PeriodError            impossible date range       (exit 2)
    ├── ApiError               endpoint, org, course       (exit 1)
    │   ├── ApiAuthError           401/403, missing key
    │   ├── ApiStatusError         other 4xx, or 5xx after retries
    │   ├── ApiPayloadError        not the JSON we expect (HTML page, wrong types)
    │   ├── ApiPaginationError     a paginator that repeats or invents pages
    │   └── ApiUnavailableError    timeouts / connect errors / deadline exceeded
    ├── RenderError            report, stage               (exit 1)
    │   ├── RenderTimeoutError     the render worker ran past its time limit
    │   └── RenderMemoryError      the render worker ran past its memory limit
    ├── ArchiveError           path                        (exit 1)
    │   ├── ArchivePathError       a name that would escape the archive folder
    │   ├── ArchiveChangedError    a file no longer has the SHA-256 recorded when archived
    │   └── ArchiveAccessError     S3: the bucket is missing or the credentials refused (exit 2)
    ├── MailError              recipient                   (exit 1)
    │   ├── MailAddressError       an address or header we refuse to send
    │   ├── MailTransientError     4xx, dropped connection: retry later
    │   ├── MailPermanentError     5xx, over the size limit: do not retry
    │   └── MailSecurityError      TLS missing or unverifiable with credentials set
    │       └── MailConfigError        the server lacks what [email] asks for (exit 2)
    ├── StateError             state database problems
    │   ├── RunBusyError           another live attempt holds the period's run (its lease)
    │   └── SchemaOutdatedError    PostgreSQL at an older schema: run db upgrade (exit 2)
    ├── BrokerError            the Celery broker: unreachable, lost mid-wait (exit 1)
    └── SchedulerLockError     another scheduler holds the lock (pid)

Messages are whole sentences that never contain a secret.
"""

from __future__ import annotations


class ReportsError(Exception):
    """Root of every error ibl-reports raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ReportsError):
    """The config file is missing, unreadable or invalid."""

    exit_code = 2

    def __init__(self, message: str, *, file: str = "", key: str = "") -> None:
        prefix = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file = file
        self.key = key


class UsageError(ReportsError):
    """The command line asks for something impossible."""

    exit_code = 2


class PeriodError(ReportsError):
    """A reporting period cannot be built from the dates given."""

    exit_code = 2


class ApiError(ReportsError):
    """A Data Manager request failed; names the endpoint, org and course."""

    def __init__(
        self, message: str, *, endpoint: str, org: str, course: str | None = None
    ) -> None:
        where = f"{endpoint} (org {org!r}" + (f", course {course!r})" if course else ")")
        super().__init__(f"{where}: {message}")
        self.endpoint = endpoint
        self.org = org
        self.course = course


class ApiAuthError(ApiError):
    """The API refused our credentials (401/403) or no key is configured."""


class ApiStatusError(ApiError):
    """The API answered with an error status we do not retry, or kept failing."""

    def __init__(
        self, message: str, *, endpoint: str, org: str, course: str | None = None,
        status: int = 0,
    ) -> None:
        super().__init__(message, endpoint=endpoint, org=org, course=course)
        self.status = status


class ApiPayloadError(ApiError):
    """The API answered with something that is not the JSON we expect."""


class ApiPaginationError(ApiError):
    """The paginated user list is inconsistent (repeated or phantom pages)."""


class ApiUnavailableError(ApiError):
    """The API could not be reached in time (timeouts, connect errors, deadline)."""


class RenderError(ReportsError):
    """Turning the data into charts, HTML or PDF failed."""


class RenderTimeoutError(RenderError):
    """The render worker ran past its time limit and was stopped."""


class RenderMemoryError(RenderError):
    """The render worker ran past its memory limit and was stopped."""


class ArchiveError(ReportsError):
    """The archive folder could not be written or read."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ArchivePathError(ArchiveError):
    """An org or report name would place a file outside the archive folder."""


class ArchiveChangedError(ArchiveError):
    """An archived file's bytes no longer have the SHA-256 the archive index recorded."""


class ArchiveAccessError(ArchiveError):
    """The S3 archive's bucket does not exist or its credentials were refused (configuration)."""

    exit_code = 2


class MailError(ReportsError):
    """A message could not be built or delivered to one recipient."""

    def __init__(self, message: str, *, recipient: str = "") -> None:
        super().__init__(f"{recipient}: {message}" if recipient else message)
        self.recipient = recipient


class MailAddressError(MailError):
    """An address or header value is refused (CR/LF, ambiguous syntax)."""


class MailTransientError(MailError):
    """A temporary delivery failure (4xx, dropped connection): try again later."""


class MailPermanentError(MailError):
    """A permanent delivery failure (5xx, message too large): do not retry."""


class MailSecurityError(MailError):
    """TLS could not be established or verified while credentials are set."""


class MailConfigError(MailSecurityError):
    """The SMTP server does not offer what ``[email]`` asks for (STARTTLS, AUTH).

    A configuration mismatch, the same for every recipient and for every later try: the send
    stops at once (exit 2) naming the key to change, instead of being retried as transient.
    """

    exit_code = 2

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class StateError(ReportsError):
    """The state database could not be opened or written."""


class RunBusyError(StateError):
    """Another attempt that is still alive (its lease is renewed) runs the same period."""


class SchemaOutdatedError(StateError):
    """A shared (PostgreSQL) state database at an older schema: ``ibl-reports db upgrade``."""

    exit_code = 2


class BrokerError(ReportsError):
    """The Celery broker could not be reached or was lost (never names its URL's password)."""


class SchedulerLockError(ReportsError):
    """Another scheduler already runs on the same state."""

    def __init__(self, pid: int | None) -> None:
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"another scheduler is already running{who}")
        self.pid = pid
