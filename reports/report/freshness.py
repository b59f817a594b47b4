"""The freshness gate: is a period's data complete enough to send as the final report?

Pure: the collected data (and, when the ratio rule asks for it, the figures of earlier periods)
in, a ``Verdict`` out. The API answers 200 while a nightly load is still missing days, so the
content is judged, not the transport. Every rule is named and can be turned off:

- ``period_ended`` (always on): the period's last day is before today in the report's time zone;
- ``day_coverage``: every day of the period, the last day included, has its values in the daily
  series for at least ``min_day_coverage`` of the courses with any value in the period (when no
  course has any value in the period, every course whose series the API gave counts);
- ``ratio``: active users and enrollments are not below ``min_ratio`` of both the previous period
  and the median of the last four periods. Held only when below both: one unusual reference
  period does not hold a report. A reference under ``min_baseline`` is not a reference (small
  figures move a lot);
- ``last_day``: the last day is not all zeros (a load that writes 0 for "not loaded") while the
  same weekday usually has at least ``last_day_min_usual`` enrollments and unenrollments.

``needs_history`` says whether the ratio rule needs the earlier periods; they are fetched only
then (``reports.source.history``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from reports.config.freshness import FreshnessConfig
from reports.lang import Catalog, number, translations
from reports.report import fmt
from reports.report.model import ReportData
from reports.report.periods import Period

PERIOD_ENDED = "period_ended"
DAY_COVERAGE = "day_coverage"
RATIO = "ratio"
LAST_DAY = "last_day"
RULES = (DAY_COVERAGE, RATIO, LAST_DAY)
"""The rules that can be turned off (``period_ended`` cannot)."""
HISTORY_PERIODS = 4
"""The ratio rule's median is over this many periods before the current one."""
ACTIVE_USERS = "active users"
ENROLLMENTS = "enrollments"


@dataclass(frozen=True)
class GateSettings:
    """The gate's rules and thresholds for one report (built from ``[freshness]``)."""

    enabled: bool = True
    day_coverage: bool = True
    min_day_coverage: float = 0.5
    ratio: bool = True
    min_ratio: float = 0.5
    min_baseline: int = 20
    last_day: bool = True
    last_day_min_usual: int = 5


def settings_from(config: FreshnessConfig) -> GateSettings:
    """The gate's settings from a report's effective ``[freshness]`` table."""
    return GateSettings(**{f.name: getattr(config, f.name) for f in fields(GateSettings)})


@dataclass(frozen=True)
class PeriodFigures:
    """The figures the ratio rule compares, of one period."""

    period: Period
    active_users: int
    enrollments: int

    def get(self, metric: str) -> int:
        """The figure named ``metric`` (ACTIVE_USERS or ENROLLMENTS)."""
        return self.active_users if metric == ACTIVE_USERS else self.enrollments


@dataclass(frozen=True)
class RuleFailure:
    """One rule that failed, with the figures that made it fail (JSON-able)."""

    rule: str
    figures: dict[str, Any] = field(default_factory=dict)

    def describe(self, locale: str = "en", language: str = "en") -> str:
        """One plain sentence in ``language``, its dates and numbers in ``locale``, e.g. ``data
        for Nov 15 has not arrived for 12 of 12 courses``."""
        t = translations(language)
        _, ngettext = t.gettext, t.ngettext
        f = self.figures

        def num(value: float) -> str:
            return number(fmt.integer(round(value), locale), language)

        if self.rule == PERIOD_ENDED:
            end = date.fromisoformat(f["end"])
            return _("the period has not ended yet (its last day is %(date)s)") % {
                "date": fmt.long_date(end, locale)}
        if self.rule == DAY_COVERAGE:
            days = [date.fromisoformat(d) for d in f["days"]]
            # "for Nov 15" or "for 2 days (Nov 14 to Nov 15)": each language its preposition.
            when = t.pgettext("missing data", "for %(day)s") % {
                "day": fmt.short_day(days[0], locale)} if len(days) == 1 else ngettext(
                "for %(num)s day (%(first)s to %(last)s)",
                "for %(num)s days (%(first)s to %(last)s)",
                len(days)) % {"num": num(len(days)), "first": fmt.short_day(days[0], locale),
                              "last": fmt.short_day(days[-1], locale)}
            return ngettext(
                "data %(days)s has not arrived for %(missing)s of %(courses)s course",
                "data %(days)s has not arrived for %(missing)s of %(courses)s courses",
                f["courses"]) % {"days": when, "missing": num(f["missing"]),
                                 "courses": num(f["courses"])}
        if self.rule == RATIO:
            words = {"value": num(f["value"]), "previous": num(f["previous"]),
                     "ratio": number(fmt.percent(100 * f["min_ratio"], locale), language),
                     "median": num(f["median"] or 0), "periods": num(f["periods"])}
            return _ratio_sentence(t, f["metric"], f.get("median") is not None,
                                   f["periods"]) % words
        if self.rule == LAST_DAY:
            day = date.fromisoformat(f["day"])
            return _("%(day)s has no enrollments or unenrollments at all (usually %(usual)s)") % {
                "day": fmt.weekday_day(day, locale), "usual": num(f["usual"])}
        return self.rule

    def as_json(self) -> dict[str, Any]:
        """``{"rule": ..., <figures>, "reason": ...}``."""
        return {"rule": self.rule, **self.figures, "reason": self.describe()}


def _ratio_sentence(t: Catalog, metric: str, with_median: bool, periods: int) -> str:
    """The ratio rule's sentence for ``metric``, before its figures are put in."""
    if metric == ACTIVE_USERS:
        if not with_median:
            return t.gettext("active users (%(value)s) are below %(ratio)s of the previous period "
                             "(%(previous)s)")
        return t.ngettext(
            "active users (%(value)s) are below %(ratio)s of the previous period (%(previous)s) "
            "and the median of the last %(periods)s period (%(median)s)",
            "active users (%(value)s) are below %(ratio)s of the previous period (%(previous)s) "
            "and the median of the last %(periods)s periods (%(median)s)", periods)
    if not with_median:
        return t.gettext("enrollments (%(value)s) are below %(ratio)s of the previous period "
                         "(%(previous)s)")
    return t.ngettext(
        "enrollments (%(value)s) are below %(ratio)s of the previous period (%(previous)s) "
        "and the median of the last %(periods)s period (%(median)s)",
        "enrollments (%(value)s) are below %(ratio)s of the previous period (%(previous)s) "
        "and the median of the last %(periods)s periods (%(median)s)", periods)


@dataclass(frozen=True)
class Verdict:
    """What the gate decided: ok, or the rules that failed with their figures."""

    failed: tuple[RuleFailure, ...] = ()
    checked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no rule failed."""
        return not self.failed

    def reason(self, locale: str = "en", language: str = "en") -> str:
        """One line: every failed rule's sentence in ``language`` (dates and numbers in
        ``locale``), or, in English for the command line, that the data is complete."""
        if self.ok:
            return "data complete (" + ", ".join(self.checked) + ")" if self.checked else (
                "not judged (the gate is off)")
        return "; ".join(f.describe(locale, language) for f in self.failed)

    def banner(self, locale: str = "en", language: str = "en") -> str:
        """The line printed on page 1 of a provisional report and first in its mail, in the
        report's ``language`` (dates and numbers in its ``locale``)."""
        return translations(language).gettext("Provisional: %(reason)s") % {
            "reason": self.reason(locale, language)}

    def as_json(self) -> dict[str, Any]:
        """``{"ok": bool, "failed": [...]}`` (for ``generate --json`` and the ledger)."""
        return {"ok": self.ok, "failed": [f.as_json() for f in self.failed],
                "checked": list(self.checked)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Verdict:
        """The inverse of ``as_json`` (the sentences are made again from the figures)."""
        failed = tuple(
            RuleFailure(item["rule"], {k: v for k, v in item.items()
                                       if k not in ("rule", "reason")})
            for item in value.get("failed", ())
        )
        return cls(failed, tuple(value.get("checked", ())))


def unended(period: Period, today: date) -> bool:
    """Whether ``period`` has not ended yet: its last day is ``today`` or later."""
    return period.end >= today


def figures(data: ReportData, *, previous: bool = False) -> PeriodFigures:
    """The current (or previous) period's figures from the collected data."""
    period = data.previous_period if previous else data.period
    active = data.previous_total_active if previous else data.total_active
    enrolled = sum(c.enrollments.total(period) for c in data.enrollments)
    return PeriodFigures(period, active, enrolled)


def needs_history(data: ReportData, settings: GateSettings) -> bool:
    """Whether the ratio rule needs earlier periods: a figure is low against the previous one."""
    if not (settings.enabled and settings.ratio):
        return False
    now, before = figures(data), figures(data, previous=True)
    return any(
        before.get(m) >= settings.min_baseline and now.get(m) < settings.min_ratio * before.get(m)
        for m in (ACTIVE_USERS, ENROLLMENTS)
    )


def history_periods(period: Period) -> list[Period]:
    """The periods before the previous one that the median needs (newest first)."""
    out: list[Period] = []
    current = period.previous()
    for _ in range(HISTORY_PERIODS - 1):
        current = current.previous()
        out.append(current)
    return out


def judge(
    data: ReportData,
    settings: GateSettings,
    *,
    today: date | None = None,
    history: Sequence[PeriodFigures] = (),
) -> Verdict:
    """Judge the collected data; ``history``: figures of ``history_periods`` (any order)."""
    failed: list[RuleFailure] = []
    checked: list[str] = []
    if today is not None:
        checked.append(PERIOD_ENDED)
        if unended(data.period, today):
            failed.append(RuleFailure(PERIOD_ENDED, {"end": data.period.end.isoformat(),
                                                     "today": today.isoformat()}))
    if not settings.enabled:
        return Verdict(tuple(failed), tuple(checked))
    if settings.day_coverage:
        checked.append(DAY_COVERAGE)
        failed.extend(_day_coverage(data, settings.min_day_coverage))
    if settings.ratio:
        checked.append(RATIO)
        failed.extend(_ratio(data, settings, history))
    if settings.last_day:
        checked.append(LAST_DAY)
        failed.extend(_last_day(data, settings.last_day_min_usual))
    return Verdict(tuple(failed), tuple(checked))


def _by_day(data: ReportData) -> list[tuple[dict[date, int | None], ...]]:
    """Per course, its series as day -> value maps (a day absent from a map is missing)."""
    return [(dict(c.enrollments.values), dict(c.unenrollments.values)) for c in data.enrollments]


def _day_coverage(data: ReportData, minimum: float) -> list[RuleFailure]:
    period = data.period
    series = _by_day(data)
    if not series:
        return []  # an org without courses: nothing to judge
    days = period.dates()
    with_values = [s for s in series
                   if any(one.get(d) is not None for one in s for d in days)]
    judged = with_values or series
    failing: list[tuple[date, int]] = []
    for day in days:
        missing = sum(1 for s in judged if any(one.get(day) is None for one in s))
        if len(judged) - missing < minimum * len(judged):
            failing.append((day, missing))
    if not failing:
        return []
    return [RuleFailure(DAY_COVERAGE, {
        "days": [d.isoformat() for d, _ in failing],
        "missing": max(m for _, m in failing),
        "courses": len(judged),
        "min_day_coverage": minimum,
    })]


def _ratio(data: ReportData, settings: GateSettings,
           history: Sequence[PeriodFigures]) -> list[RuleFailure]:
    now, before = figures(data), figures(data, previous=True)
    earlier = [before, *[h for h in history if h.period < before.period]]
    earlier.sort(key=lambda f: f.period, reverse=True)
    earlier = earlier[:HISTORY_PERIODS]
    out = []
    for metric in (ACTIVE_USERS, ENROLLMENTS):
        value, previous = now.get(metric), before.get(metric)
        median = statistics.median(f.get(metric) for f in earlier) if len(earlier) > 1 else None
        references = [r for r in (previous, median)
                      if r is not None and r >= settings.min_baseline]
        if references and all(value < settings.min_ratio * r for r in references):
            out.append(RuleFailure(RATIO, {
                "metric": metric, "value": value, "previous": previous, "median": median,
                "periods": len(earlier), "min_ratio": settings.min_ratio,
            }))
    return out


def _last_day(data: ReportData, min_usual: int) -> list[RuleFailure]:
    last = data.period.end
    series = _by_day(data)

    def day_total(day: date) -> int | None:
        values = [v for s in series for one in s if (v := one.get(day)) is not None]
        return sum(values) if values else None

    if day_total(last) != 0:
        return []  # values there, or nothing at all (the coverage rule's case)
    first = data.previous_period.start
    same_weekday = [
        t for offset in range(7, (last - first).days + 1, 7)
        if (t := day_total(date.fromordinal(last.toordinal() - offset))) is not None
    ]
    if not same_weekday:
        return []
    usual = statistics.median(same_weekday)
    if usual < min_usual:
        return []
    return [RuleFailure(LAST_DAY, {"day": last.isoformat(), "usual": usual})]
