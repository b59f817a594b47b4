"""Golden-number tests of the analysis and the highlights on hand-made data."""

from __future__ import annotations

import dataclasses
import math
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.report import fmt
from reports.report.analysis import Delta, analyse
from reports.report.highlights import describe_delta, highlights
from reports.report.model import ActiveUser, CourseActivity, CourseEnrollments, ReportData
from reports.report.periods import weekly
from tests._sample import empty, series

PERIOD = weekly(date(2026, 11, 18))  # Mon 9 - Sun 15 Nov 2026
PREVIOUS = PERIOD.previous()  # 2 - 8 Nov
SPAN = type(PERIOD)(PREVIOUS.start, PERIOD.end)
A, B, C, D = "course-v1:X+A+1", "course-v1:X+B+1", "course-v1:X+C+1", "course-v1:X+D+1"


def golden() -> ReportData:
    """Four courses, one day with no data at all, one partial day, a few unscored users."""
    week_before = [1, 1, 1, 1, 1, 1, 1]
    return ReportData(
        org="acme",
        period=PERIOD,
        previous_period=PREVIOUS,
        courses=(
            CourseActivity(A, "Data & Analytics <Advanced>", 86),
            CourseActivity(B, "Calculus", 40),
            CourseActivity(C, "Idle", 0),
        ),
        total_active=120,
        previous_courses=(
            CourseActivity(A, "Data & Analytics <Advanced>", 70),
            CourseActivity(B, "Calculus", 50),
            CourseActivity(D, "Gone", 10),
        ),
        previous_total_active=100,
        users=(
            ActiveUser("u1", "Ada", 90.0, 80.0),
            ActiveUser("u2", "Bob", 70.0, None),
            ActiveUser("u3", "Cy", None, 60.0),
            ActiveUser("u4", "Abe", 90.0, 70.0),
        ),
        enrollments=(
            CourseEnrollments(
                A,
                series(SPAN, [*week_before, 3, 0, None, 2, 5, 1, 1]),
                series(SPAN, [0] * 7 + [0, 1, None, 0, 0, 0, 1]),
            ),
            CourseEnrollments(
                B,
                series(SPAN, [*week_before, 1, 1, None, 1, None, 1, 1]),
                series(SPAN, [0] * 7 + [0, 0, None, 0, 0, 0, 0]),
            ),
        ),
    )


def test_kpis_golden_numbers() -> None:
    a = analyse(golden(), top_n=10)
    assert (a.active_users.current, a.active_users.previous) == (120, 100)
    assert a.active_users.change == 20
    assert a.active_users.pct == pytest.approx(20.0)
    # Active courses have more than 0 users: A, B now; A, B, D before.
    assert (a.active_courses.current, a.active_courses.previous) == (2, 3)
    # Enrollments: A 3+0+2+5+1+1 = 12, B 1+1+1+1+1 = 5; the week before: 7 + 7.
    assert (a.enrollments.current, a.enrollments.previous) == (17, 14)
    assert (a.unenrollments.current, a.unenrollments.previous) == (2, 0)
    assert (a.net_enrollments.current, a.net_enrollments.previous) == (15, 14)
    assert a.unenrollments.pct is None  # previous 0: no percentage, never inf


def test_top_courses_only_active_ones_ranked_with_previous_and_enrollments() -> None:
    a = analyse(golden(), top_n=10)
    assert [(r.name, r.users, r.previous_users, r.change) for r in a.top_courses] == [
        ("Data & Analytics <Advanced>", 86, 70, 16),
        ("Calculus", 40, 50, -10),
    ]
    assert [(r.enrollments, r.unenrollments) for r in a.top_courses] == [(12, 2), (5, 0)]
    assert len(analyse(golden(), top_n=1).top_courses) == 1


def test_movers_by_absolute_change_include_vanished_courses() -> None:
    a = analyse(golden(), top_n=10)
    assert [(m.name, m.previous_users, m.users, m.change) for m in a.movers] == [
        ("Data & Analytics <Advanced>", 70, 86, 16),
        ("Calculus", 50, 40, -10),
        ("Gone", 10, 0, -10),
    ]


def test_top_users_skip_missing_engagement_and_break_ties_by_name() -> None:
    a = analyse(golden(), top_n=10)
    assert [(u.name, u.engagement_index) for u in a.top_users] == [
        ("Abe", 90.0), ("Ada", 90.0), ("Bob", 70.0),
    ]
    assert a.engagement.mean == pytest.approx(250 / 3)
    assert (a.engagement.counted, a.engagement.missing) == (3, 1)
    assert a.performance.mean == pytest.approx(70.0)
    assert (a.performance.counted, a.performance.missing) == (3, 1)


def test_daily_series_marks_missing_and_partial_days() -> None:
    a = analyse(golden(), top_n=10)
    assert [p.day for p in a.daily] == PERIOD.dates()
    assert [p.enrollments for p in a.daily] == [4, 1, None, 3, 5, 2, 2]
    assert [p.unenrollments for p in a.daily] == [0, 1, None, 0, 0, 0, 1]
    assert [p.partial for p in a.daily] == [False, False, False, False, True, False, False]
    m = a.missing
    assert (m.enrollment_course_days, m.unenrollment_course_days) == (3, 2)
    assert m.days_fully_missing == 1
    assert m.courses_with_gaps == ("Calculus", "Data & Analytics <Advanced>")
    assert not m.no_previous_data


def test_highlights_golden_sentences() -> None:
    assert highlights(analyse(golden(), top_n=10)) == (
        "Active users rose 20% to 120 (from 100 the week before).",
        "Data & Analytics <Advanced> led with 86 active users, among 2 active courses.",
        "There were 17 enrollments and 2 unenrollments, a net gain of 15 (the week before: +14).",
        "The biggest rise was in Data & Analytics <Advanced> (+16 to 86); the biggest drop was "
        "in Calculus (\u221210 to 40).",
        "The average engagement index was 83.3 across 3 users with a score; the average "
        "performance index was 70.0.",
    )


def test_highlights_in_another_locale_format_numbers_there() -> None:
    data = golden()
    big = ReportData(**{**data.__dict__, "total_active": 12345, "previous_total_active": 10100})
    first = highlights(analyse(big, top_n=5), locale="de")[0]
    assert first == "Active users rose 22,2\u00a0% to 12.345 (from 10.100 the week before)."


@pytest.mark.parametrize(("locale", "half", "change"), [
    pytest.param("en", "50%", "\u221212.3%", id="en"),
    pytest.param("de", "50\u00a0%", "\u221212,3\u00a0%", id="de"),
    pytest.param("fr", "50\u00a0%", "\u221212,3\u00a0%", id="fr"),
    pytest.param("ar", "50%", "\u221212.3%", id="ar"),
])
def test_percentages_take_the_locales_own_form(locale: str, half: str, change: str) -> None:
    # CLDR: German and French put a no-break space before the sign; English and Arabic do not.
    assert fmt.percent(50, locale) == half
    assert fmt.signed_percent(-12.34, locale) == change


def test_new_org_without_any_data_reads_sensibly() -> None:
    a = analyse(empty(), top_n=5)
    assert a.active_users == Delta(0, None)
    assert a.enrollments == Delta(0, None)
    assert a.top_courses == () and a.movers == () and a.top_users == ()
    assert a.engagement.mean is None
    assert a.missing.no_previous_data
    assert [p.enrollments for p in a.daily] == [0] * 7  # no course: nothing is missing
    assert highlights(a) == (
        "No users were active this week, and there is no earlier data to compare with.",
        "There were no enrollments or unenrollments this week.",
    )


def test_quiet_week_after_an_active_one() -> None:
    a = analyse(empty(with_previous=True), top_n=5)
    assert a.active_users == Delta(0, 5)
    assert a.active_users.pct == pytest.approx(-100.0)
    sentences = highlights(a)
    assert sentences[0] == "No users were active this week, down from 5 users the week before."
    assert "The biggest drop was in Old (\u22125 to 0)." in sentences


def test_growth_from_zero_has_no_percentage() -> None:
    data = golden()
    grown = ReportData(**{**data.__dict__, "previous_total_active": 0, "previous_courses": (
        CourseActivity(A, "Data & Analytics <Advanced>", 0),)})
    a = analyse(grown, top_n=3)
    assert a.active_users.pct is None
    assert highlights(a)[0] == "Active users rose to 120, from none the week before."
    assert describe_delta(a.active_users) == "+120 (from 0)"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        pytest.param(Delta(1160, 1036), "+12% (+124)", id="rise"),
        pytest.param(Delta(90, 100), "\u221210% (\u221210)", id="fall"),
        pytest.param(Delta(5, 5), "no change", id="flat"),
        pytest.param(Delta(5, None), "no previous data", id="no-previous"),
    ],
)
def test_describe_delta(delta: Delta, text: str) -> None:
    assert describe_delta(delta) == text


@given(st.integers(0, 10**9), st.one_of(st.none(), st.integers(0, 10**9)))
def test_delta_percentage_is_finite_or_none(current: int, previous: int | None) -> None:
    d = Delta(current, previous)
    if not previous:
        assert d.pct is None
    else:
        assert d.pct is not None and math.isfinite(d.pct)
        assert d.change == current - previous


def test_analyse_is_pure_and_deterministic() -> None:
    data = golden()
    assert analyse(data, top_n=4) == analyse(data, top_n=4)
    with pytest.raises(ValueError, match="top_n"):
        analyse(data, top_n=0)


def test_names_over_200_characters_are_clipped_for_display_and_short_ones_kept() -> None:
    from reports.report.longnames import NAME_LIMIT, with_shown_names

    data = golden()
    assert with_shown_names(data) is data  # nothing too long: the very same data
    long = "Introduction to " + "very " * 100 + "long names"
    data = dataclasses.replace(
        data,
        courses=(CourseActivity(A, long, 86), *data.courses[1:]),
        previous_courses=(CourseActivity(D, long, 10), *data.previous_courses[1:]),
        users=(ActiveUser("x" * 300, long, 95.0, None), *data.users),
    )
    analysis = analyse(data, top_n=10)
    assert analysis.top_courses[0].name == "Introduction to " + "very " * 35 + "very\u2026"
    shown = [r.name for r in (*analysis.top_courses, *analysis.movers, *analysis.top_users)]
    assert long not in shown and all(len(n) <= NAME_LIMIT for n in shown)
    assert analysis.top_users[0].username == "x" * 199 + "\u2026"
    assert analysis.top_courses[1].name == "Calculus"  # short names untouched
    assert data.courses[0].name == long  # the collected data (the CSV's source) keeps it whole
