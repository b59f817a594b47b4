"""``[freshness]`` and ``[reports.freshness]``: the freshness gate's rules, thresholds and holds.

``[freshness]`` holds the defaults of every report; a report's own ``[reports.freshness]`` table
overrides any of the same keys for that report (the keys it leaves out are inherited).
``effective`` merges the two (``reports.report.freshness.settings_from`` turns the result into
the gate's settings).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
HOLD_FOR_DEFAULT = {"weekly": "6h", "monthly": "24h"}


def parse_duration(value: str) -> timedelta:
    """``"90s"``, ``"30m"``, ``"1h"``, ``"2d"``; ValueError names the value."""
    match = _DURATION_RE.match(value)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a duration; write e.g. 30m, 1h, 6h or 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class FreshnessConfig(BaseModel):
    """[freshness]: the gate that holds a report while its period's data has not arrived."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Judge the data before sending (false: no gate).")
    day_coverage: bool = Field(
        True, description="Rule day_coverage: every day of the period, the last one included, "
        "has values for enough courses.")
    min_day_coverage: float = Field(
        0.5, ge=0, le=1, description="Share of the courses with values in the period that "
        "every day needs.")
    ratio: bool = Field(
        True, description="Rule ratio: active users and enrollments are not below min_ratio of "
        "both the previous period and the median of the last four.")
    min_ratio: float = Field(0.5, ge=0, le=1, description="The ratio rule's threshold.")
    min_baseline: int = Field(
        20, ge=0, description="A reference figure below this is too small to judge a ratio by.")
    last_day: bool = Field(
        True, description="Rule last_day: the last day is not all zeros when that weekday "
        "usually has enrollments.")
    last_day_min_usual: int = Field(
        5, ge=1, description="The last_day rule applies when that weekday usually has this many.")
    hold_retry_every: str = Field(
        "1h", description="The scheduler checks a held period again this often (s, m, h, d).")
    hold_for: str | None = Field(
        None, description="How long the scheduler holds before on_stale (default: 6h weekly, "
        "24h monthly).")
    on_stale: Literal["provisional", "skip", "alert"] = Field(
        "provisional", description="After hold_for: send marked provisional, skip the period, "
        "or alert and keep waiting.")

    @field_validator("hold_retry_every", "hold_for")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return _duration(value)

    def retry_every(self) -> timedelta:
        """``hold_retry_every`` as a timedelta."""
        return parse_duration(self.hold_retry_every)

    def hold_duration(self, period: str) -> timedelta:
        """``hold_for``, or the default of a ``weekly``/``monthly`` report."""
        return parse_duration(self.hold_for or HOLD_FOR_DEFAULT.get(period, "6h"))


class FreshnessOverride(BaseModel):
    """[reports.freshness]: any [freshness] key, for this report only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    day_coverage: bool | None = None
    min_day_coverage: float | None = Field(None, ge=0, le=1)
    ratio: bool | None = None
    min_ratio: float | None = Field(None, ge=0, le=1)
    min_baseline: int | None = Field(None, ge=0)
    last_day: bool | None = None
    last_day_min_usual: int | None = Field(None, ge=1)
    hold_retry_every: str | None = None
    hold_for: str | None = None
    on_stale: Literal["provisional", "skip", "alert"] | None = None

    @field_validator("hold_retry_every", "hold_for")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return _duration(value)


def effective(defaults: FreshnessConfig, override: FreshnessOverride | None) -> FreshnessConfig:
    """The report's freshness settings: its own keys over the ``[freshness]`` defaults."""
    if override is None:
        return defaults
    changes: dict[str, Any] = override.model_dump(exclude_none=True)
    return defaults.model_copy(update=changes)
