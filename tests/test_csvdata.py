"""The CSV attachments: content, Excel-friendly encoding, formula-injection safety, scale."""

from __future__ import annotations

import csv
import io
import time
from datetime import date

import pytest

from reports.report.csvdata import csv_attachments, safe_text, to_csv
from reports.report.model import (
    ActiveUser,
    CourseActivity,
    CourseEnrollments,
    DailySeries,
    ReportData,
)
from reports.report.periods import Period, PeriodKind

PERIOD = Period(date(2026, 11, 9), date(2026, 11, 11), PeriodKind.CUSTOM)
PREVIOUS = PERIOD.previous()


def daily(values: dict[date, int | None]) -> DailySeries:
    return DailySeries(tuple(sorted(values.items())))


def data(users: tuple[ActiveUser, ...] | None = None) -> ReportData:
    d1, d2, d3 = PERIOD.dates()
    return ReportData(
        org="acme",
        period=PERIOD,
        previous_period=PREVIOUS,
        courses=(
            CourseActivity("c2", "=HYPERLINK(\"http://evil\")", 5),
            CourseActivity("c1", "Café & Crème", 10),
        ),
        total_active=15,
        previous_courses=(
            CourseActivity("c1", "Café & Crème", 12),
            CourseActivity("c0", "Retired, old", 4),
        ),
        previous_total_active=16,
        users=users
        or (
            ActiveUser("zoe", "Zoë Ünal", 55.5, None),
            ActiveUser("adam", "+44 Adam", None, 70.25),
            ActiveUser("@bob", "Bob -x", 1.0, 2.0),
        ),
        enrollments=(
            CourseEnrollments(
                "c1",
                daily({PREVIOUS.end: 9, d1: 3, d2: None, d3: 0}),
                daily({d1: 1, d2: None, d3: 2}),
            ),
            CourseEnrollments("c0", daily({d1: 0}), daily({})),
        ),
    )


def rows(payload: bytes) -> list[list[str]]:
    assert payload.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM for Excel"
    text = payload.decode("utf-8-sig")
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text)))


def by_name() -> dict[str, bytes]:
    return {a.name: a.data for a in csv_attachments(data())}


def test_three_csv_attachments_with_descriptions() -> None:
    attachments = csv_attachments(data())
    assert [a.name for a in attachments] == [
        "courses.csv", "active_users.csv", "daily_enrollments.csv",
    ]
    assert {a.mime for a in attachments} == {"text/csv"}
    assert all("2026-11-09 to 2026-11-11" in a.description for a in attachments)


def test_courses_compare_with_previous_period() -> None:
    assert rows(by_name()["courses.csv"]) == [
        ["course_id", "name", "active_users", "active_users_previous_period", "change"],
        ["c0", "Retired, old", "0", "4", "-4"],
        ["c1", "Café & Crème", "10", "12", "-2"],
        ["c2", "'=HYPERLINK(\"http://evil\")", "5", "0", "5"],
    ]


def test_full_user_list_sorted_with_empty_cells_for_missing_indexes() -> None:
    assert rows(by_name()["active_users.csv"]) == [
        ["username", "name", "engagement_index", "performance_index"],
        ["'@bob", "Bob -x", "1.0", "2.0"],
        ["adam", "'+44 Adam", "", "70.25"],
        ["zoe", "Zoë Ünal", "55.5", ""],
    ]


def test_daily_enrollments_cover_the_period_with_gaps_left_empty() -> None:
    assert rows(by_name()["daily_enrollments.csv"]) == [
        ["date", "course_id", "enrollments", "unenrollments"],
        ["2026-11-09", "c0", "0", ""],
        ["2026-11-09", "c1", "3", "1"],
        ["2026-11-10", "c0", "", ""],
        ["2026-11-10", "c1", "", ""],
        ["2026-11-11", "c0", "", ""],
        ["2026-11-11", "c1", "0", "2"],
    ]


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        pytest.param("=1+1", "'=1+1", id="equals"),
        pytest.param("+1", "'+1", id="plus"),
        pytest.param("-cmd", "'-cmd", id="minus"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\t=1", "'\t=1", id="tab"),
        pytest.param("\r=1", "'\r=1", id="cr"),
        pytest.param("a=1", "a=1", id="inner-equals-is-fine"),
        pytest.param("", "", id="empty"),
    ],
)
def test_formula_injection_is_neutralised(raw: str, safe: str) -> None:
    assert safe_text(raw) == safe
    assert rows(to_csv(["h"], [[raw]]))[1] == [safe]


def test_same_data_gives_same_bytes() -> None:
    assert csv_attachments(data()) == csv_attachments(data())


def test_hundred_thousand_users_in_linear_time() -> None:
    users = tuple(
        ActiveUser(f"user{j:06d}", f"Student {j}", j % 100 / 3, None) for j in range(100_000)
    )
    started = time.perf_counter()
    attachments = csv_attachments(data(users))
    elapsed = time.perf_counter() - started
    table = rows(attachments[1].data)
    assert len(table) == 100_001
    assert table[1] == ["user000000", "Student 0", "0.0", ""]
    assert elapsed < 5.0
