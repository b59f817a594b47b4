"""Property tests of reporting periods: week and month edges, leap days, year ends, DST."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.errors import PeriodError
from reports.report.periods import (
    MAX_CUSTOM_DAYS,
    Period,
    PeriodKind,
    custom,
    for_kind,
    local_date,
    monthly,
    today,
    weekly,
)

days = st.dates(min_value=date(1901, 1, 1), max_value=date(2999, 12, 31))


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@given(days)
def test_weekly_is_the_monday_to_sunday_week_before_as_ofs_week(as_of: date) -> None:
    period = weekly(as_of)
    this_monday = as_of - timedelta(days=as_of.weekday())
    assert period.start.weekday() == 0 and period.end.weekday() == 6
    assert period.days == 7 == len(period.dates())
    assert period.end + timedelta(days=1) == this_monday
    assert as_of not in period
    assert 1 <= (as_of - period.end).days <= 7
    assert period.kind is PeriodKind.WEEKLY


@given(days)
def test_monthly_is_the_calendar_month_before(as_of: date) -> None:
    period = monthly(as_of)
    year, month = (as_of.year, as_of.month - 1) if as_of.month > 1 else (as_of.year - 1, 12)
    assert period.start == date(year, month, 1)
    assert period.end == date(year, month, _last_day(year, month))
    assert period.end + timedelta(days=1) == as_of.replace(day=1)
    assert period.days == _last_day(year, month)


@given(days)
def test_previous_period_ends_the_day_before(as_of: date) -> None:
    for period in (weekly(as_of), monthly(as_of)):
        previous = period.previous()
        assert previous.end + timedelta(days=1) == period.start
        assert previous.kind is period.kind
    week_before = weekly(as_of).previous()
    assert week_before == weekly(as_of - timedelta(days=7))
    month_before = monthly(as_of).previous()
    assert month_before.start.day == 1
    assert month_before == monthly(monthly(as_of).start)


@given(days, st.integers(0, 400))
def test_custom_previous_has_the_same_length_and_touches(start: date, length: int) -> None:
    period = custom(start, start + timedelta(days=length))
    previous = period.previous()
    assert previous.days == period.days == length + 1
    assert previous.end + timedelta(days=1) == period.start
    assert period.dates()[0] == period.start and period.dates()[-1] == period.end


@pytest.mark.parametrize(
    ("as_of", "kind", "start", "end"),
    [
        pytest.param(date(2024, 3, 1), "monthly", date(2024, 2, 1), date(2024, 2, 29),
                     id="leap-february"),
        pytest.param(date(2023, 3, 31), "monthly", date(2023, 2, 1), date(2023, 2, 28),
                     id="common-february"),
        pytest.param(date(2027, 1, 1), "monthly", date(2026, 12, 1), date(2026, 12, 31),
                     id="year-end-month"),
        pytest.param(date(2027, 1, 4), "weekly", date(2026, 12, 28), date(2027, 1, 3),
                     id="week-across-new-year"),
        pytest.param(date(2026, 11, 15), "weekly", date(2026, 11, 2), date(2026, 11, 8),
                     id="sunday-as-of"),
        pytest.param(date(2026, 11, 16), "weekly", date(2026, 11, 9), date(2026, 11, 15),
                     id="monday-as-of"),
        pytest.param(date(2024, 3, 4), "weekly", date(2024, 2, 26), date(2024, 3, 3),
                     id="week-over-leap-day"),
    ],
)
def test_edges(as_of: date, kind: str, start: date, end: date) -> None:
    assert for_kind(kind, as_of) == Period(start, end, PeriodKind(kind))


def test_march_compared_with_february_in_a_leap_year() -> None:
    previous = monthly(date(2024, 4, 10)).previous()
    assert (previous.start, previous.end, previous.days) == (date(2024, 2, 1),
                                                             date(2024, 2, 29), 29)


@pytest.mark.parametrize(
    ("instant", "zone", "local", "week_start"),
    [
        # Europe/Berlin springs forward on Sun 29 Mar 2026 at 02:00 local (01:00 UTC).
        pytest.param(datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "Europe/Berlin",
                     date(2026, 3, 30), date(2026, 3, 23), id="berlin-after-spring-forward"),
        pytest.param(datetime(2026, 3, 29, 21, 59, tzinfo=UTC), "Europe/Berlin",
                     date(2026, 3, 29), date(2026, 3, 16), id="berlin-sunday-night"),
        # America/New_York falls back on Sun 1 Nov 2026 at 02:00 local (06:00 UTC).
        pytest.param(datetime(2026, 11, 2, 4, 59, tzinfo=UTC), "America/New_York",
                     date(2026, 11, 1), date(2026, 10, 19), id="new-york-fall-back-sunday"),
        pytest.param(datetime(2026, 11, 2, 5, 0, tzinfo=UTC), "America/New_York",
                     date(2026, 11, 2), date(2026, 10, 26), id="new-york-monday-midnight"),
        pytest.param(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Pacific/Kiritimati",
                     date(2027, 1, 1), date(2026, 12, 21), id="utc+14-new-year"),
    ],
)
def test_today_in_the_reports_zone_around_dst(
    instant: datetime, zone: str, local: date, week_start: date
) -> None:
    assert today(lambda: instant, zone) == local
    assert weekly(local).start == week_start


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)),
       st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]))
def test_week_of_a_local_date_always_has_seven_calendar_days(instant: datetime, zone: str) -> None:
    # A DST week has 167 or 169 hours, but a period counts calendar days.
    period = weekly(local_date(instant, zone))
    assert period.days == 7 and len(set(period.dates())) == 7


def test_errors_are_period_errors() -> None:
    with pytest.raises(PeriodError, match="naive"):
        local_date(datetime(2026, 1, 1), "UTC")
    with pytest.raises(PeriodError, match="before it starts"):
        custom(date(2026, 1, 2), date(2026, 1, 1))
    with pytest.raises(PeriodError, match=str(MAX_CUSTOM_DAYS)):
        custom(date(2000, 1, 1), date(2000, 1, 1) + timedelta(days=MAX_CUSTOM_DAYS))
    with pytest.raises(PeriodError, match="custom"):
        for_kind("custom", date(2026, 1, 1))
    assert weekly(date(2026, 11, 18)).key == "2026-11-09_2026-11-15"
