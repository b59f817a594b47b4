"""What a template receives: the reference for people who override templates.

``REPORT_VARIABLES`` documents every name ``report.html.j2`` and its partials are rendered with
(``render._context`` plus ``notice``, which ``render_html`` adds); the email templates'
``summary`` is documented next to ``MailSummary``. The README's "Template variables" section is
generated from these with ``markdown_table`` and a test keeps both equal to what the code passes
(add a line here when you pass a new name to the templates).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from reports.report.analysis import (
    Analysis,
    CourseRow,
    DailyPoint,
    Delta,
    IndexAverage,
    MissingData,
    Mover,
    UserRow,
)
from reports.report.charts import Chart, ChartTable
from reports.report.daygrid import DayGrid, GridCell, GridWeek
from reports.report.privacy import Band
from reports.report.render import KpiCard, Notice


@dataclass(frozen=True)
class Variable:
    """One name a template receives."""

    name: str
    meaning: str
    shape: type | None = None
    """A dataclass whose fields the value (or each of its items) has; they are listed."""


REPORT_VARIABLES: tuple[Variable, ...] = (
    Variable("analysis", "Everything computed for the report (fields below; `period` and "
             "`previous_period` have `start`, `end`).", Analysis),
    Variable("org_name", "The org's name as printed (`display_name`, else `org`)."),
    Variable("accent", "The accent colour, `#RRGGBB`."),
    Variable("logo_uri", "The logo as a `data:` URI, or none."),
    Variable("lang", "The BCP 47 tag of the report's language for `<html lang>`, e.g. "
             "`de-DE` (see Languages)."),
    Variable("dir", "`ltr` or `rtl`: the writing direction of the report's language, for "
             "`<html dir>` and the sides of the running header."),
    Variable("title", "The report's title, e.g. `Weekly report`."),
    Variable("period_label", "The period, formatted in the locale."),
    Variable("previous_label", "The period compared with, formatted in the locale."),
    Variable("period_noun", "`week`, `month` or `period`."),
    Variable("generated_on", "The generation date, long form in the locale."),
    Variable("running_header", "The text of the running header and footer on every page "
             "(a dict: `left`, org name; `right`, period; `footer`), apart from the cover."),
    Variable("daily_grid", "The numbers behind the daily chart as a week-by-day grid, or none "
             "when there is nothing or too much.", DayGrid),
    Variable("kpis", "The KPI cards in reading order (`direction`: up, down, flat, none; "
             "`tone`: good, bad, neutral).", KpiCard),
    Variable("highlights", "3-5 plain-language sentences (strings)."),
    Variable("charts", "The charts; `data_uri` is the PNG for `<img src>`, `table` the numbers "
             "behind it.", Chart),
    Variable("top_courses", "The top-N courses by active users.", CourseRow),
    Variable("movers", "The courses that moved most vs the previous period.", Mover),
    Variable("top_users", "The most engaged users (usernames are pseudonyms in the "
             "pseudonymous form; empty in the aggregate form or under min_group_size).", UserRow),
    Variable("learners", "The report's learners form: `named`, `pseudonymous` or `aggregate`."),
    Variable("bands", "The engagement distribution (the aggregate form shows it instead of "
             "learners).", Band),
    Variable("notes", "Sentences about data the API did not deliver (strings)."),
    Variable("num", "Function: a number formatted in the locale (a dash for none)."),
    Variable("signed", "Function: a signed integer formatted in the locale."),
    Variable("index", "Function: an engagement/performance index formatted in the locale."),
    Variable("isolate", "Function: a name or number in a `<bdi>` with its own direction "
             "(`+11` stays `+11` in an Arabic table); in a left-to-right report only a text "
             "with right-to-left characters gets one, others are just escaped."),
    Variable("page_footer", "The CSS `content` value of the page count (`\"Page \" "
             "counter(page) ...`), in the report's language."),
    Variable("cell", "Function: a per-course count, or `<k` when it is a small group (or its "
             "complement); call as cell(value, course_id, column)."),
    Variable("change", "Function: a course row's change in active users, or a dash when it "
             "would reveal a suppressed count."),
    Variable("org_too_small", "True when fewer than min_group_size learners were active in the "
             "whole org (no key figures, charts or learners are shown)."),
    Variable("too_small", "The sentence said instead of the key figures then (else empty)."),
    Variable("notice", "A line for page 1 (provisional report, or one replacing it), or none; "
             "added after `<body>` if a template leaves it out.", Notice),
)

NESTED: tuple[type, ...] = (
    Delta, IndexAverage, DailyPoint, MissingData, ChartTable, GridWeek, GridCell,
)
"""Types reached through the variables above, listed under the table."""


def _fields(shape: type) -> str:
    names = [f.name for f in dataclasses.fields(shape)]
    names += [
        name for name, value in vars(shape).items()
        if isinstance(value, property) and not name.startswith("_")
    ]
    return ", ".join(f"`{n}`" for n in names)


def markdown_table(variables: tuple[Variable, ...], nested: tuple[type, ...] = ()) -> str:
    """The variables as a Markdown table, and the fields of the types they lead to."""
    lines = ["| name | what it is |", "| --- | --- |"]
    for var in variables:
        text = var.meaning
        if var.shape is not None:
            text += f" Fields of {var.shape.__name__}: {_fields(var.shape)}."
        lines.append(f"| `{var.name}` | {text.replace('|', chr(92) + '|')} |")
    if nested:
        lines.append("")
        lines += [f"- {shape.__name__}: {_fields(shape)}" for shape in nested]
    return "\n".join(lines) + "\n"
