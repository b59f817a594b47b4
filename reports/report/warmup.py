"""A tiny report through the real render path, so that the real one renders warm.

A fresh render process pays first-use costs on its first report: matplotlib's font lookup for
each family of the chain and size, Pango and fontconfig opening each face, pyphen reading the
language's hyphenation dictionary, WeasyPrint's first cascade and table layout, code imported on
first use. A generic page and chart do not pay them (other fonts, no ``lang``, no tables), so a
one-shot render child warmed that way still rendered its report cold (charts 0.9 s and PDF 1.0 s
vs 0.2-0.3 s warm).

``warm_job(report, templates_dir, policy)`` is a ``RenderJob`` of the SAME report (language,
locale, accent colour, logo, templates, learner privacy) over a few made-up courses and
learners, with the three charts, the KPI cards and every table; the render child renders it while
the parent fetches, and throws it away. Nothing of it leaves the child. Pure: no I/O but the
template folders.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from reports.config import ReportConfig
from reports.report.build import RenderJob
from reports.report.model import (
    ActiveUser,
    CourseActivity,
    CourseEnrollments,
    DailySeries,
    ReportData,
)
from reports.report.periods import Period, for_kind
from reports.report.privacy import Policy

_AS_OF = date(2026, 1, 5)
_KEY = b"warm-up only: no learner is ever named with this key"
_COURSES = ("Introduction to Statistics", "Academic Writing", "Data Structures")


def warm_data(kind: str, org: str) -> ReportData:
    """Made-up data of one ``kind`` of period: three courses, 24 learners, daily enrolments."""
    period = for_kind(kind, _AS_OF)
    previous = period.previous()
    days = Period(previous.start, period.end).dates()

    def activity(shift: int) -> tuple[CourseActivity, ...]:
        return tuple(CourseActivity(f"course-v1:warm+{i}", name, 12 + 3 * i + shift)
                     for i, name in enumerate(_COURSES))

    return ReportData(
        org=org,
        period=period,
        previous_period=previous,
        courses=activity(2),
        total_active=24,
        previous_courses=activity(0),
        previous_total_active=21,
        users=tuple(ActiveUser(f"learner{i}", f"Learner Number {i}", (i * 7 % 100) / 10,
                               None if i == 3 else (i * 13 % 100) / 10) for i in range(24)),
        enrollments=tuple(
            CourseEnrollments(
                f"course-v1:warm+{i}",
                DailySeries(tuple((d, None if n == 2 else (n + i) % 4)
                                  for n, d in enumerate(days))),
                DailySeries(tuple((d, (n * i) % 2) for n, d in enumerate(days))),
            )
            for i in range(len(_COURSES))
        ),
    )


def warm_job(report: ReportConfig, templates_dir: Path | None, policy: Policy) -> RenderJob:
    """A throw-away ``RenderJob`` of ``report``'s look and privacy over ``warm_data``."""
    return RenderJob(
        report, warm_data(str(report.period), report.org), templates_dir, _AS_OF,
        policy=Policy(policy.learners, policy.min_group_size, policy.attach_learner_list,
                      key=_KEY),
    )


def blank_charts(job: RenderJob) -> list[Any]:
    """``job``'s charts as planned (``chartplan``), each a white PNG of its planned size: what a
    warm-up laid out around late charts can be given without matplotlib."""
    import io

    from PIL import Image

    from reports.report.build import analysed
    from reports.report.chartplan import DEFAULT_DPI, plan_charts
    from reports.report.charts import Chart

    report = job.report
    _data, _hide, analysis = analysed(job)
    charts = []
    for plan in plan_charts(analysis, dpi=job.chart_dpi or DEFAULT_DPI, locale=report.locale,
                            language=report.lang.code):
        png = io.BytesIO()
        Image.new("RGB", (plan.width_px, plan.height_px), "white").save(
            png, format="PNG", compress_level=1)
        charts.append(Chart(plan.key, plan.title, plan.alt, png.getvalue(), plan.table,
                            plan.width_px, plan.height_px))
    return charts
