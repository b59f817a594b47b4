"""The demo API's knobs (faults, latency, sizes, late data, drops) and its request counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

Kind = Literal["per-course", "users", "over-time"]
FaultAction = Literal[
    "status", "html", "invalid-json", "wrong-types", "null-number", "repeat-page",
    "inflate-pages", "delay",
]


@dataclass(frozen=True)
class Fault:
    """A rule that makes matching requests misbehave (None matches anything)."""

    action: FaultAction
    endpoint: Kind | None = None
    org: str | None = None
    course: str | None = None
    page: int | None = None
    status: int = 503
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 3600.0
    times: int | None = None
    """How many matching requests it affects; None = all of them."""

    def matches(self, kind: Kind, org: str, course: str | None, page: int | None) -> bool:
        """Whether a request is targeted by this rule."""
        return (
            (self.endpoint is None or self.endpoint == kind)
            and (self.org is None or self.org == org)
            and (self.course is None or self.course == course)
            and (self.page is None or self.page == page)
        )


@dataclass(frozen=True)
class MockKnobs:
    """How the demo API behaves; the defaults are a well-behaved, fast server."""

    latency_s: float = 0.0
    rate_429: float = 0.0
    retry_after: str = "1"
    rate_5xx: float = 0.0
    courses: int | None = None
    users: int | None = None
    page_cap: int = 100
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    token: str | None = None
    """When set, only this API token is accepted (401 otherwise)."""
    course_names: tuple[str, ...] = ()
    """Names given to the courses in turn (for hostile-name tests); empty = generated names."""
    user_names: tuple[str, ...] = ()
    """Names given to the users in turn (for hostile-name tests); empty = generated names."""
    launched: date | None = None
    """A new org: no activity and no (un)enrollments before this day (no previous period)."""
    small_courses: int = 0
    """The last N courses of every org have only ``small_course_size`` members (small groups,
    for the learner-privacy suppression)."""
    small_course_size: int = 3
    today: date | None = None
    """The server's "today" for ``late_days`` (None = the real date)."""
    late_days: int = 0
    """Data that has not arrived: the last N days up to ``today`` (and any later day) are null
    in every series and missing from activity (0 = every day has arrived)."""
    drop_from: date | None = None
    """A sudden real drop: from this day on, activity and enrollments are scaled by
    ``drop_factor`` (complete days with low figures)."""
    drop_factor: float = 1.0

    def arrived_until(self) -> date | None:
        """The last day whose data has arrived (None: every day has)."""
        if self.late_days <= 0:
            return None
        return (self.today or date.today()) - timedelta(days=self.late_days)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it."""

    kind: Kind
    org: str
    course: str | None
    raw_path: str
    query: str
    status: int


@dataclass
class ServerStats:
    """Counters a test reads after a run (mutable by design: the server updates them)."""

    in_flight: int = 0
    max_in_flight: int = 0
    log: list[RequestRecord] = field(default_factory=list)
    fault_hits: dict[int, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Requests answered so far."""
        return len(self.log)

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.in_flight = self.max_in_flight = 0
        self.log.clear()
        self.fault_hits.clear()
