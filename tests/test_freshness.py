"""The freshness gate's rules on hand-made data (pure: no server, no clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from reports.config import ReportConfig
from reports.gate import banner_for, replaces_line
from reports.lang import SHIPPED
from reports.report.freshness import (
    DAY_COVERAGE,
    LAST_DAY,
    PERIOD_ENDED,
    RATIO,
    GateSettings,
    PeriodFigures,
    RuleFailure,
    Verdict,
    figures,
    history_periods,
    judge,
    needs_history,
    unended,
)
from reports.report.model import CourseEnrollments, DailySeries, ReportData
from reports.report.periods import Period, PeriodKind, monthly, weekly
from tests._sample import empty, realistic

ON = GateSettings()


def blank_days(data: ReportData, days: set[date], *, courses: int | None = None,
               value: int | None = None) -> ReportData:
    """``days`` set to ``value`` (None: not arrived) in both series of the first ``courses``."""

    def cut(one: DailySeries) -> DailySeries:
        return DailySeries(tuple((d, value if d in days else v) for d, v in one.values))

    n = len(data.enrollments) if courses is None else courses
    return replace(data, enrollments=tuple(
        CourseEnrollments(c.course_id, cut(c.enrollments), cut(c.unenrollments)) if i < n else c
        for i, c in enumerate(data.enrollments)
    ))


def test_complete_data_passes_every_rule() -> None:
    data = realistic()
    verdict = judge(data, ON, today=data.period.end + timedelta(days=1))
    assert verdict.ok, verdict.reason()
    assert verdict.checked == (PERIOD_ENDED, DAY_COVERAGE, RATIO, LAST_DAY)
    assert verdict.reason().startswith("data complete")
    assert verdict.as_json()["ok"] is True and verdict.as_json()["failed"] == []


def test_a_last_day_that_has_not_arrived_fails_day_coverage() -> None:
    data = realistic()
    late = blank_days(data, {data.period.end})
    verdict = judge(late, ON)
    assert not verdict.ok
    [failure] = [f for f in verdict.failed if f.rule == DAY_COVERAGE]
    assert failure.figures["days"] == ["2026-11-15"]
    assert failure.figures["missing"] == 20 and failure.figures["courses"] == 20
    assert verdict.banner() == (
        "Provisional: data for Nov 15 has not arrived for 20 of 20 courses")


def test_coverage_counts_only_courses_with_values_and_tolerates_a_few_gaps() -> None:
    data = realistic()
    # Half the courses missing the last day is still enough (0.5); one more is not.
    assert judge(blank_days(data, {data.period.end}, courses=10), ON).ok
    fails = judge(blank_days(data, {data.period.end}, courses=11), ON)
    assert [f.rule for f in fails.failed] == [DAY_COVERAGE]
    # Courses with no value at all in the period are not counted.
    whole = set(data.period.dates())
    dormant = blank_days(data, whole, courses=15)
    assert judge(dormant, replace(ON, ratio=False)).ok
    # The threshold is configurable and the rule can be turned off.
    assert judge(blank_days(data, {data.period.end}, courses=11),
                 replace(ON, min_day_coverage=0.4)).ok
    assert judge(blank_days(data, {data.period.end}), replace(ON, day_coverage=False)).ok


def test_a_whole_period_not_arrived_names_every_day() -> None:
    data = realistic()
    verdict = judge(blank_days(data, set(data.period.dates())), ON)
    [failure] = [f for f in verdict.failed if f.rule == DAY_COVERAGE]
    assert len(failure.figures["days"]) == 7
    assert failure.describe() == (
        "data for 7 days (Nov 9 to Nov 15) has not arrived for 20 of 20 courses")


def test_an_org_without_courses_is_not_held() -> None:
    assert judge(empty(), ON).ok
    assert judge(empty(with_previous=True), ON).ok  # 5 users before: under the baseline


def test_ratio_needs_a_drop_against_both_references() -> None:
    data = replace(realistic(), total_active=300)  # previous 1036
    assert needs_history(data, ON)
    normal = [PeriodFigures(p, 1000, 600) for p in history_periods(data.period)]
    held = judge(data, ON, history=normal)
    [failure] = held.failed
    assert failure.rule == RATIO and failure.figures["metric"] == "active users"
    assert failure.figures["value"] == 300 and failure.figures["previous"] == 1036
    assert failure.figures["periods"] == 4
    assert "active users (300) are below 50% of the previous period (1,036) and the median" in (
        held.reason())
    # The previous period was a spike: against the usual figures 300 is not a collapse.
    usual = [PeriodFigures(p, 500, 600) for p in history_periods(data.period)]
    assert judge(data, ON, history=usual).ok
    assert judge(data, replace(ON, min_ratio=0.25), history=normal).ok
    assert judge(data, replace(ON, ratio=False), history=normal).ok


def test_ratio_needs_no_history_when_the_figures_hold_up() -> None:
    data = realistic()
    assert not needs_history(data, ON)
    assert not needs_history(replace(data, total_active=300), replace(ON, ratio=False))
    # Small references are not references: 5 -> 1 user is noise, not a missing load.
    small = replace(empty(with_previous=True), total_active=1)
    assert not needs_history(small, ON)
    assert judge(small, ON).ok


def test_enrollments_ratio_and_history_periods_of_a_month() -> None:
    data = realistic(kind="monthly")
    assert [p.start for p in history_periods(data.period)] == [
        date(2026, 8, 1), date(2026, 7, 1), date(2026, 6, 1)]
    zeroed = blank_days(data, set(data.period.dates()), value=0)
    before = figures(zeroed, previous=True)
    assert figures(zeroed).enrollments == 0 and before.enrollments > 100
    history = [PeriodFigures(p, 1000, before.enrollments) for p in history_periods(data.period)]
    rules = {(f.rule, f.figures.get("metric")) for f in judge(zeroed, ON, history=history).failed}
    assert (RATIO, "enrollments") in rules and (LAST_DAY, None) in rules


def test_a_zero_filled_last_day_fails_last_day() -> None:
    data = realistic()
    zero = blank_days(data, {data.period.end}, value=0)
    verdict = judge(zero, ON)
    assert [f.rule for f in verdict.failed] == [LAST_DAY]
    assert verdict.failed[0].describe().startswith("Sun, Nov 15 has no enrollments")
    assert judge(zero, replace(ON, last_day=False)).ok
    assert judge(zero, replace(ON, last_day_min_usual=10_000)).ok


def test_unended_periods_and_the_switch() -> None:
    period = monthly(date(2026, 12, 1))
    assert period == Period(date(2026, 11, 1), date(2026, 11, 30), PeriodKind.MONTHLY)
    assert unended(period, date(2026, 11, 30)) and unended(period, date(2026, 11, 27))
    assert not unended(period, date(2026, 12, 1))
    data = realistic()
    verdict = judge(data, replace(ON, enabled=False), today=data.period.end)
    assert [f.rule for f in verdict.failed] == [PERIOD_ENDED]
    assert verdict.reason() == "the period has not ended yet (its last day is November 15, 2026)"
    assert judge(blank_days(data, {data.period.end}), replace(ON, enabled=False)).ok


def test_verdicts_round_trip_through_json() -> None:
    data = replace(blank_days(realistic(), {date(2026, 11, 15)}), total_active=100)
    history = [PeriodFigures(p, 1000, 600) for p in history_periods(data.period)]
    verdict = judge(data, ON, history=history, today=date(2026, 11, 16))
    assert not verdict.ok
    again = Verdict.from_json(verdict.as_json())
    assert again == verdict and again.reason() == verdict.reason()
    assert {f["rule"] for f in verdict.as_json()["failed"]} == {DAY_COVERAGE, RATIO}


def test_settings_come_from_the_defaults_table_and_the_report_override() -> None:
    import pytest

    from reports.config.freshness import (
        FreshnessConfig,
        FreshnessOverride,
        effective,
        parse_duration,
    )
    from reports.report.freshness import settings_from

    assert settings_from(FreshnessConfig()) == ON
    defaults = FreshnessConfig(min_ratio=0.3, hold_retry_every="30m")
    mine = effective(defaults, FreshnessOverride(ratio=False, hold_for="2h"))
    assert settings_from(mine) == replace(ON, min_ratio=0.3, ratio=False)
    assert mine.retry_every() == timedelta(minutes=30)
    assert mine.hold_duration("weekly") == timedelta(hours=2)
    assert FreshnessConfig().hold_duration("weekly") == timedelta(hours=6)
    assert FreshnessConfig().hold_duration("monthly") == timedelta(hours=24)
    assert effective(defaults, None) is defaults
    assert parse_duration("90s") == timedelta(seconds=90)
    for bad in ("1 week", "0h", "h", "-1h"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)


COVERAGE = {"missing": 12, "courses": 1320, "min_day_coverage": 0.5}


def _days(n: int) -> list[str]:
    end = date(2026, 11, 15)
    return [(end - timedelta(days=n - 1 - i)).isoformat() for i in range(n)]


@pytest.mark.parametrize(("locale", "language", "days", "banner"), [
    pytest.param("en", "en", 1, "Provisional: data for Nov 15 has not arrived for 12 of 1,320 "
                 "courses", id="en"),
    pytest.param("de_DE", "de", 1, "Vorläufig: Daten vom 15. Nov. sind für 12 von 1.320 Kursen "
                 "noch nicht eingetroffen", id="de"),
    pytest.param("fr_FR", "fr", 2, "Provisoire : les données des 2 jours (du 14 nov. au 15 nov.) "
                 "ne sont pas encore arrivées pour 12 cours sur 1\u202f320", id="fr"),
    pytest.param("ar_EG", "ar", 2, "مؤقت: لم تصل بعد بيانات يومين (من 14 نوفمبر إلى 15 نوفمبر) "
                 "لـ \u206612\u2069 من المقررات البالغ عددها \u20661,320\u2069", id="ar-two-days"),
    pytest.param("ar_EG", "ar", 3, "مؤقت: لم تصل بعد بيانات \u20663\u2069 أيام (من 13 نوفمبر إلى "
                 "15 نوفمبر) لـ \u206612\u2069 من المقررات البالغ عددها \u20661,320\u2069",
                 id="ar-few-days"),
    pytest.param("ja_JP", "ja", 1, "暫定版\uff1a1,320 コース中 12 コースで 11月15日 のデータが"
                 "まだ届いていません", id="ja"),
])
def test_the_rule_sentences_speak_the_reports_language(
    locale: str, language: str, days: int, banner: str,
) -> None:
    verdict = Verdict((RuleFailure(DAY_COVERAGE, {"days": _days(days), **COVERAGE}),))
    assert verdict.banner(locale, language) == banner
    # The ledger, the command line and the alerts keep English.
    assert verdict.reason().startswith("data for ")


def test_every_rule_has_a_sentence_in_every_shipped_language() -> None:
    failures = Verdict((
        RuleFailure(PERIOD_ENDED, {"end": "2026-11-29", "today": "2026-11-27"}),
        RuleFailure(RATIO, {"metric": "active users", "value": 126, "previous": 1320,
                            "median": 1327.5, "periods": 4, "min_ratio": 0.5}),
        RuleFailure(RATIO, {"metric": "enrollments", "value": 20, "previous": 74,
                            "median": None, "periods": 1, "min_ratio": 0.5}),
        RuleFailure(LAST_DAY, {"day": "2026-11-15", "usual": 8}),
    ))
    english = failures.reason()
    assert english == (
        "the period has not ended yet (its last day is November 29, 2026); active users (126) "
        "are below 50% of the previous period (1,320) and the median of the last 4 periods "
        "(1,328); enrollments (20) are below 50% of the previous period (74); Sun, Nov 15 has "
        "no enrollments or unenrollments at all (usually 8)")
    for language in SHIPPED:
        text = failures.reason(language, language)
        assert text.count("; ") == 3 and "%(" not in text
        for word in ("active users", "enrollments", "period", "usually"):
            assert word not in text, (language, text)
        assert "1,320" in text or "1.320" in text or "1\u202f320" in text or "1 320" in text


def test_the_replacement_line_and_the_banner_follow_the_reports_language() -> None:
    report = ReportConfig(name="acme-weekly", org="acme", period="weekly", schedule="0 7 * * 1",
                          locale="de_CH", timezone="Europe/Berlin")
    sent = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # already 23 Nov in Berlin
    assert replaces_line(report, weekly(date(2026, 11, 16)), sent) == (
        "Dieser endgültige Bericht ersetzt den vorläufigen Bericht für 9.\u201315. Nov. 2026, "
        "versandt am 23. November 2026.")
    late = Verdict((RuleFailure(DAY_COVERAGE, {"days": ["2026-11-15"], "missing": 1,
                                               "courses": 1, "min_day_coverage": 0.5}),))
    assert banner_for(late, report) == (
        "Vorläufig: Daten vom 15. Nov. sind für 1 von 1 Kurs noch nicht eingetroffen")
