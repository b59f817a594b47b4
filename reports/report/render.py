"""The HTML stage: the analysis, charts and branding rendered through Jinja2 templates.

Decisions:

- Templates are files only: data from the API is passed as *values* and escaped on output
  (``autoescape=True``); it never becomes template source, so a course called ``{{ 7*7 }}`` or
  ``<img src=x>`` prints literally. ``StrictUndefined`` turns a typo in a template into an error.
- A user can override any template (``report.html.j2``, a partial, ``report.css``) by pointing
  ``[templates] dir`` at a folder: it is searched before the built-in ``templates/`` folder.
- Figures are formatted here (Babel, in the report's locale) into small view values, so the
  templates hold layout only. Words come from the report language's catalog: Python strings
  through ``reports.lang.translations``, template text through Jinja2's i18n extension
  (new-style gettext: ``{{ _("...") }}`` and ``{{ ngettext(...) }}`` with autoescaped
  placeholders). ``lang`` and ``dir`` of the document are the language's BCP 47 tag and
  direction.
- Images are inlined as ``data:`` URIs (charts, logo): the PDF stage needs no file access for them.
- Deterministic: the same inputs give the same string (no clock, no random ids).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from markupsafe import Markup

from reports.errors import RenderError
from reports.lang import name, number, resolve, translations
from reports.report import BUILTIN_TEMPLATES, compiled, fmt
from reports.report.analysis import Analysis, Delta
from reports.report.bidi import css_content, css_string, isolator
from reports.report.charts import Chart
from reports.report.daygrid import day_grid
from reports.report.highlights import describe_delta, highlights, too_small_sentence
from reports.report.privacy import AGGREGATE, NAMED_POLICY, Band, Policy

ENTRY_TEMPLATE = "report.html.j2"
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}
MAX_LOGO_BYTES = 2_000_000


@dataclass(frozen=True)
class Branding:
    """How the report presents the org: its name, logo and accent colour."""

    org_name: str
    logo: Path | None = None
    accent_color: str = "#0072B2"

    def __post_init__(self) -> None:
        if not _COLOR_RE.match(self.accent_color):
            # The colour is written into the stylesheet, so only a plain #RRGGBB is accepted.
            raise RenderError(f"the accent colour {self.accent_color!r} is not of the form #RRGGBB")


@dataclass(frozen=True)
class KpiCard:
    """One KPI card: the value, its comparison and how to colour it."""

    label: str
    value: str
    delta: str
    direction: str
    """``up``, ``down``, ``flat`` or ``none`` (no previous data)."""
    tone: str
    """``good``, ``bad`` or ``neutral``: the colour of the comparison."""
    note: str = ""
    previous: str = ""
    """The previous period's value, formatted ("" without previous data)."""


@dataclass(frozen=True)
class Notice:
    """A line above the cover: the report is provisional, or replaces a provisional one."""

    kind: Literal["provisional", "replaces"]
    text: str


def render_html(
    analysis: Analysis,
    charts: Sequence[Chart],
    branding: Branding,
    *,
    templates_dir: Path | None,
    generated_on: date,
    locale: str = "en",
    language: str | None = None,
    notice: Notice | None = None,
    policy: Policy = NAMED_POLICY,
    bands: Sequence[Band] = (),
) -> str:
    """The report as one self-contained HTML document, in ``language`` (default: the locale's);
    ``notice``: a line on page 1; ``policy``: the learners' form and small-group suppression;
    ``bands``: the engagement distribution (shown instead of learners in the aggregate form)."""
    lang = resolve(locale, language)
    env = environment(templates_dir, lang.code)
    context = _context(analysis, charts, branding, generated_on, locale, lang.code, policy, bands)
    context["notice"] = notice
    try:
        return _with_notice(str(env.get_template(ENTRY_TEMPLATE).render(context)), notice)
    except (RenderError, MemoryError):
        raise  # MemoryError must reach the worker, which reports it as RenderMemoryError
    except Exception as exc:  # Jinja raises many kinds; name the template and the line
        raise RenderError(f"the report template could not be rendered: {_describe(exc)}") from exc


NOTICE_HTML = '<p class="notice {kind}" role="note"><strong>{text}</strong></p>'
_BODY_RE = re.compile(r"<body[^>]*>", re.IGNORECASE)


def _with_notice(html: str, notice: Notice | None) -> str:
    """The notice is never lost: a user's templates that leave it out get it after ``<body>``."""
    if notice is None:
        return html
    import markupsafe

    text = str(markupsafe.escape(notice.text))
    if text in html:
        return html
    tag = NOTICE_HTML.format(kind=notice.kind, text=text)
    match = _BODY_RE.search(html)
    if match is None:
        return tag + html
    return html[: match.end()] + tag + html[match.end():]


def environment(templates_dir: Path | None, language: str = "en") -> Any:
    """The Jinja2 environment: the user's folder first, then the built-in templates; the i18n
    extension speaks ``language``."""
    import jinja2

    if not BUILTIN_TEMPLATES.is_dir():
        raise RenderError(f"the built-in templates folder {BUILTIN_TEMPLATES} is missing")
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise RenderError(f"the templates folder {templates_dir} does not exist")
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders.append(jinja2.FileSystemLoader(BUILTIN_TEMPLATES))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        bytecode_cache=compiled.bytecode_cache(),  # compiled templates kept (compiled.py)
        **compiled.SETTINGS,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(language), newstyle=compiled.NEWSTYLE_GETTEXT)
    env.filters["css_string"] = css_string
    return env


def _describe(exc: Exception) -> str:
    from reports.report.template_errors import describe

    return describe(exc)


def logo_data_uri(path: Path | None) -> str | None:
    """The logo file as a ``data:`` URI (None without a logo)."""
    if path is None:
        return None
    mime = _LOGO_TYPES.get(path.suffix.lower())
    if mime is None:
        kinds = ", ".join(sorted(_LOGO_TYPES))
        raise RenderError(f"the logo {path} is not an image we can embed ({kinds})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RenderError(f"the logo {path} cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_LOGO_BYTES:
        raise RenderError(f"the logo {path} is larger than {MAX_LOGO_BYTES // 1_000_000} MB")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _card(label: str, delta: Delta, locale: str, language: str, *, up_is_good: bool = True,
          signed_value: bool = False) -> KpiCard:
    def shown(n: int) -> str:
        return fmt.signed(n, locale) if signed_value else fmt.integer(n, locale)

    value = shown(delta.current)
    if delta.previous is None or delta.change is None:
        return KpiCard(label, value, describe_delta(delta, locale, language), "none", "neutral")
    previous = shown(delta.previous)
    direction = "up" if delta.change > 0 else "down" if delta.change < 0 else "flat"
    tone = "neutral" if direction == "flat" else (
        "good" if (direction == "up") == up_is_good else "bad")
    note = translations(language).gettext("previous: %(num)s") % {
        "num": number(previous, language)}
    return KpiCard(label, value, describe_delta(delta, locale, language), direction, tone, note,
                   previous)


def kpi_cards(analysis: Analysis, locale: str, language: str = "en") -> tuple[KpiCard, ...]:
    """The KPI cards, in reading order (none for an org under min_group_size learners)."""
    a = analysis
    if a.org_too_small:
        return ()
    t = translations(language)
    _ = t.gettext
    eng, perf = a.engagement, a.performance
    scored = (
        _("fewer than %(k)s users with a score") % {"k": a.suppression.k} if eng.suppressed
        else t.ngettext("%(num)s user with a score", "%(num)s users with a score", eng.counted)
        % {"num": number(fmt.integer(eng.counted, locale), language)}
    )
    engagement = KpiCard(
        _("Avg. engagement index"),
        "\u2013" if eng.mean is None else fmt.decimal(eng.mean, locale),
        scored,
        "none",
        "neutral",
        "" if perf.mean is None else
        _("avg. performance: %(num)s") % {"num": number(fmt.decimal(perf.mean, locale), language)},
    )
    return (
        _card(_("Active users"), a.active_users, locale, language),
        _card(_("Active courses"), a.active_courses, locale, language),
        engagement,
        _card(_("Enrollments"), a.enrollments, locale, language),
        _card(_("Unenrollments"), a.unenrollments, locale, language, up_is_good=False),
        _card(_("Net enrollments"), a.net_enrollments, locale, language, signed_value=True),
    )


def missing_notes(analysis: Analysis, locale: str, language: str = "en") -> tuple[str, ...]:
    """Plain sentences about data the API did not deliver."""
    t = translations(language)
    _, ngettext = t.gettext, t.ngettext
    m, notes = analysis.missing, []

    def count(n: int) -> str:
        return number(fmt.integer(n, locale), language)

    if analysis.courses_suppressed:
        k = analysis.suppression.k
        notes.append(_(
            "%(num)s of %(courses)s courses had fewer than %(k)s active learners; their counts "
            "are shown as \u201c<%(k)s\u201d and figures that would reveal them are left out, so "
            "that no small group of learners can be singled out.") % {
            "num": count(analysis.courses_suppressed), "courses": count(analysis.course_count),
            "k": k})
    if m.no_previous_data:
        notes.append(_("There is no data for the previous period, so no comparison is shown "
                       "(\u201cno previous data\u201d)."))
    if m.enrollment_course_days or m.unenrollment_course_days:
        notes.append(ngettext(
            "The API reported no value for %(enrollments)s enrollment and %(unenrollments)s "
            "unenrollment course-days (%(num)s course: %(courses)s). Missing days are left out "
            "of the sums, not counted as zero.",
            "The API reported no value for %(enrollments)s enrollment and %(unenrollments)s "
            "unenrollment course-days (%(num)s courses: %(courses)s). Missing days are left "
            "out of the sums, not counted as zero.",
            len(m.courses_with_gaps),
        ) % {"enrollments": count(m.enrollment_course_days),
             "unenrollments": count(m.unenrollment_course_days),
             "num": count(len(m.courses_with_gaps)),
             "courses": _(", ").join(name(c, language) for c in m.courses_with_gaps)})
    if m.days_fully_missing:
        notes.append(ngettext(
            "%(num)s day has no enrollment data for any course; it is shaded grey in the daily "
            "chart.",
            "%(num)s days have no enrollment data for any course; they are shaded grey in the "
            "daily chart.",
            m.days_fully_missing,
        ) % {"num": count(m.days_fully_missing)})
    if m.users_without_engagement or m.users_without_performance:
        notes.append(ngettext(
            "%(num)s active user has no engagement index and %(perf)s no performance index; "
            "averages and rankings use the users that have one.",
            "%(num)s active users have no engagement index and %(perf)s no performance index; "
            "averages and rankings use the users that have one.",
            m.users_without_engagement,
        ) % {"num": count(m.users_without_engagement),
             "perf": count(m.users_without_performance)})
    return tuple(notes)


def _context(
    a: Analysis, charts: Sequence[Chart], branding: Branding, generated_on: date, locale: str,
    language: str = "en", policy: Policy = NAMED_POLICY, bands: Sequence[Band] = (),
) -> dict[str, Any]:
    lang = resolve(locale, language)
    isolate = isolator(lang.direction)

    def num(value: int | float | None) -> Markup:
        if value is None:
            return isolate("\u2013")
        if isinstance(value, float) and not value.is_integer():
            return isolate(fmt.decimal(value, locale))
        return isolate(fmt.integer(int(value), locale))

    def signed(value: int | None) -> Markup:
        return isolate("\u2013" if value is None else fmt.signed(value, locale))

    def index(value: float | None) -> Markup:
        return isolate("\u2013" if value is None else fmt.decimal(value, locale))

    hide = a.suppression

    def cell(value: int | None, course_id: str = "", column: str = "") -> Markup:
        """A per-course count: ``<k`` when it is a small group (or complements one)."""
        return isolate(hide.label) if hide.hides(value, course_id, column) else num(value)

    def change(row: Any) -> Markup:
        """A course's change in active users, left out when it would reveal a small count."""
        if hide.hides_change(row.users, row.previous_users, row.course_id):
            return isolate("\u2013")
        return signed(row.change)

    _ = translations(language).gettext
    return {
        "analysis": a,
        "lang": lang.tag,
        "dir": lang.direction,
        "org_name": branding.org_name,
        "accent": branding.accent_color,
        "logo_uri": logo_data_uri(branding.logo),
        "title": fmt.report_title(a.period, language),
        "period_label": fmt.period_label(a.period, locale),
        "previous_label": fmt.period_label(a.previous_period, locale),
        "period_noun": fmt.period_noun(a.period, language),
        "generated_on": fmt.long_date(generated_on, locale),
        "running_header": {  # "left" is the start side, "right" the end side
            "left": branding.org_name,
            "right": fmt.period_label(a.period, locale),
            "footer": _("ibl.ai report %(generated)s") % {"generated": _(
                "generated on %(date)s") % {"date": fmt.long_date(generated_on, locale)}},
        },
        "daily_grid": day_grid(a.daily, locale),
        "kpis": kpi_cards(a, locale, language),
        "highlights": highlights(a, locale=locale, language=language),
        "charts": list(charts),
        "top_courses": a.top_courses,
        # A course whose change would reveal a small count is no mover to show (its rank would
        # hint at the hidden change).
        "movers": tuple(m for m in a.movers
                        if not hide.hides_change(m.users, m.previous_users, m.course_id)),
        "top_users": (
            () if policy.learners == AGGREGATE or a.org_too_small else a.top_users
        ),
        "learners": policy.learners,
        "bands": tuple(bands),
        "notes": missing_notes(a, locale, language),
        "page_footer": css_content(_("Page %(page)s of %(pages)s"),
                                   page="counter(page)", pages="counter(pages)"),
        "num": num,
        "signed": signed,
        "index": index,
        "isolate": isolate,
        "cell": cell,
        "change": change,
        "org_too_small": a.org_too_small,
        "too_small": too_small_sentence(a, language) if a.org_too_small else "",
    }
