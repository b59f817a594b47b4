"""The earlier periods' figures for the ratio rule, over real HTTP, and their cache."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from reports.report.freshness import figures, history_periods
from reports.report.periods import weekly
from reports.source.client import IblClient
from reports.source.collect import collect
from reports.source.history import HistoryCache, period_figures
from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi, api_server

__all__ = ["api_server"]

ORG = "acme-university"
WEEK = weekly(date(2026, 3, 11))
Server = Callable[..., RunningApi]


async def test_history_figures_agree_with_collect_and_are_fetched_once(
    api_server: Server,
) -> None:
    api = api_server(MockKnobs(courses=12, users=300))
    cache = HistoryCache()
    async with IblClient(api.url, "test-key", backoff_scale=0.0) as client:
        data = await collect(client, ORG, WEEK, page_size=100)
        course_ids = [c.course_id for c in data.enrollments]
        [previous] = await period_figures(client, ORG, [WEEK.previous()],
                                          known_courses=course_ids, cache=cache)
        assert previous == figures(data, previous=True)
        assert cache.requests == 1 + 12
        periods = history_periods(WEEK)
        got = await period_figures(client, ORG, periods, known_courses=course_ids, cache=cache)
        assert [f.period for f in got] == periods
        assert all(f.active_users > 0 and f.enrollments > 0 for f in got)
        requests = client.requests
        again = await period_figures(client, ORG, periods, cache=cache)
        assert again == got and client.requests == requests


async def test_a_real_drop_is_judged_against_the_fetched_history(api_server: Server) -> None:
    from reports.report.freshness import GateSettings
    from reports.source.history import judge_collected

    week = weekly(date(2026, 11, 16))
    api = api_server(MockKnobs(courses=12, users=400, drop_from=week.start, drop_factor=0.2))
    cache = HistoryCache()
    async with IblClient(api.url, "test-key", backoff_scale=0.0) as client:
        data = await collect(client, ORG, week, page_size=100)
        verdict = await judge_collected(client, data, GateSettings(), today=None, cache=cache)
        assert cache.requests > 0  # the three older periods were fetched
        complete = await collect(client, ORG, week.previous(), page_size=100)
        before = client.requests
        assert (await judge_collected(client, complete, GateSettings(), today=None)).ok
        assert client.requests == before  # nothing low: no history asked for
    assert [f.figures["metric"] for f in verdict.failed] == ["active users", "enrollments"]
    assert verdict.failed[0].figures["periods"] == 4
