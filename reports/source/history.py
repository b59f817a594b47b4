"""The figures of earlier periods that the freshness gate's ratio rule compares with.

Asked for only when the gate needs them (``reports.report.freshness.needs_history``): one
per-course answer per period (its ``total`` is the period's distinct active users) and one
enrollment series per course over all the periods together. The answers are kept in a
``HistoryCache`` for the rest of the run: a past period's figures do not change while it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from reports.report.freshness import (
    GateSettings,
    PeriodFigures,
    Verdict,
    history_periods,
    judge,
    needs_history,
)
from reports.report.model import ReportData
from reports.report.periods import Period
from reports.source.client import IblClient


@dataclass
class HistoryCache:
    """Figures already fetched in this run, per (org, period)."""

    figures: dict[tuple[str, Period], PeriodFigures] = field(default_factory=dict)
    requests: int = 0


async def period_figures(
    client: IblClient,
    org: str,
    periods: Sequence[Period],
    *,
    known_courses: Sequence[str] = (),
    cache: HistoryCache | None = None,
) -> list[PeriodFigures]:
    """Active users and enrollments of each of ``periods`` (in the order given).

    ``known_courses``: course ids already seen in the report (their series are fetched even when
    they had no activity in these periods; enrollments without activity still count).
    """
    cache = cache if cache is not None else HistoryCache()
    wanted = [p for p in periods if (org, p) not in cache.figures]
    if wanted:
        before = client.requests
        answers = await asyncio.gather(*(client.per_course(org, p.start, p.end) for p in wanted))
        courses = sorted({c.course_id for a in answers for c in a.data} | set(known_courses))
        first, last = min(p.start for p in wanted), max(p.end for p in wanted)
        series = await asyncio.gather(
            *(client.over_time(org, course, first, last, True) for course in courses)
        )
        for period, answer in zip(wanted, answers, strict=True):
            enrolled = sum(
                v for one in series for day, v in one.data.items() if v and day in period
            )
            cache.figures[org, period] = PeriodFigures(period, answer.total, enrolled)
        cache.requests += client.requests - before
    return [cache.figures[org, p] for p in periods]


async def judge_collected(
    client: IblClient,
    data: ReportData,
    settings: GateSettings,
    *,
    today: date | None,
    cache: HistoryCache | None = None,
) -> Verdict:
    """The gate's verdict on collected data, fetching earlier periods only when it needs them."""
    history: list[PeriodFigures] = []
    if needs_history(data, settings):
        history = await period_figures(
            client, data.org, history_periods(data.period),
            known_courses=[c.course_id for c in data.enrollments], cache=cache,
        )
    return judge(data, settings, today=today, history=history)
