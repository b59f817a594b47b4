"""The operator's actions: each a POST with the CSRF token, confirmed on a second page first.

The first POST (without ``confirm``) has no effect: it shows what would happen, with a Confirm
button that repeats the form (and its token) with ``confirm=yes``. The second POST acts, writes
the audit row (who, what, when), and sends the operator back with a note. Sends run as
``ibl-reports send`` children (``runner``), so the exactly-once ledger decides who gets mail:

- test copy: ``send --report R --to ADDRESS`` (the ledger's deliveries stay untouched);
- run now: ``send --report R`` (the period that has just completed);
- retry failed deliveries of a run / resend one recipient: those deliveries go back to pending
  (same Message-ID), then ``send --report R --as-of <day after the period>`` sends the due ones;
- pause / resume: a flag in the state database that the scheduler reads before each fire.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reports.config import ReportConfig
from reports.errors import MailAddressError, PeriodError
from reports.report.periods import for_kind
from reports.state.deliveries import DeliveryState
from reports.state.runs import RunRecord
from reports.web.auth import Principal
from reports.web.context import WebContext, action, web

FAILED = (DeliveryState.FAILED_TRANSIENT, DeliveryState.FAILED_PERMANENT)


def _confirm(
    request: Request, principal: Principal, form: FormData, *, question: str, back: str,
) -> Response:
    fields = {k: str(v) for k, v in form.items() if k not in ("csrf", "confirm")}
    return web(request).render(request, "confirm.html.j2", principal, question=question,
                               target=request.url.path, fields=fields, back=back)


def _refuse(request: Request, principal: Principal, message: str, back: str) -> Response:
    return web(request).render(request, "error.html.j2", principal, status=400,
                               title="Cannot do that", message=message, back=back)


def _done(request: Request, note: str, back: str) -> Response:
    request.session["flash"] = note
    return RedirectResponse(back, status_code=303)


def _as_of(report: ReportConfig, run: RunRecord) -> str:
    """The ``--as-of`` date that makes ``send`` cover the run's period, or PeriodError."""
    as_of = run.period_end + timedelta(days=1)
    if run.period_kind != report.period or for_kind(report.period, as_of) != run.period:
        raise PeriodError(
            f"run {run.id} covers {run.period.key} ({run.period_kind}), not a {report.period} "
            f"period of {report.name}; send it from the command line"
        )
    return as_of.isoformat()


async def _act(
    request: Request, ctx: WebContext, principal: Principal, what: str, *,
    report: str, run_id: int | None = None, detail: str = "",
    work: Callable[[], Any] = lambda: None,
) -> None:
    def both() -> None:
        work()
        ctx.ledger.audit(principal.name, what, report=report, run_id=run_id, detail=detail)

    await run_in_threadpool(both)


@action
async def test_copy(request: Request, principal: Principal, form: FormData) -> Response:
    """Send one test copy of the report's latest period to an address."""
    from reports.addresses import parse_address

    ctx = web(request)
    report = ctx.scoped(principal).report(request.path_params["name"])
    back = f"/reports/{report.name}"
    address = str(form.get("to", "")).strip()
    try:
        parse_address(address, what="test address")
    except MailAddressError as exc:
        return _refuse(request, principal, str(exc), back)
    if form.get("confirm") != "yes":
        return _confirm(request, principal, form, back=back, question=(
            f"Send a test copy of {report.name} (the period that has just completed) to "
            f"{address}? The recipients' deliveries are not touched."))
    await _act(request, ctx, principal, "test-copy", report=report.name, detail=f"to {address}",
               work=lambda: ctx.runner.start(["--report", report.name, "--to", address],
                                             what=f"test copy of {report.name}"))
    return _done(request, f"Sending a test copy to {address}; its run appears below.", back)


@action
async def run_now(request: Request, principal: Principal, form: FormData) -> Response:
    """Send the report's period that has just completed, now."""
    ctx = web(request)
    report = ctx.scoped(principal).report(request.path_params["name"])
    back = f"/reports/{report.name}"
    if form.get("confirm") != "yes":
        return _confirm(request, principal, form, back=back, question=(
            f"Run {report.name} now? Recipients who do not have the period that has just "
            f"completed get it ({len(report.recipients)} configured)."))
    await _act(request, ctx, principal, "run-now", report=report.name,
               work=lambda: ctx.runner.start(["--report", report.name],
                                             what=f"run {report.name}"))
    return _done(request, f"{report.name} started; its run appears below.", back)


def _pause_action(paused: bool) -> Callable[[Request], Any]:
    verb = "pause" if paused else "resume"

    async def handler(request: Request, principal: Principal, form: FormData) -> Response:
        ctx = web(request)
        report = ctx.scoped(principal).report(request.path_params["name"])
        back = f"/reports/{report.name}"
        if form.get("confirm") != "yes":
            question = (f"Pause the schedule of {report.name}? The scheduler skips its fires "
                        "until it is resumed." if paused else
                        f"Resume the schedule of {report.name}?")
            return _confirm(request, principal, form, back=back, question=question)
        await _act(request, ctx, principal, verb, report=report.name,
                   work=lambda: ctx.ledger.set_paused(report.name, paused, by=principal.name))
        return _done(request, f"{report.name}: schedule {verb}d.", back)

    handler.__name__ = verb
    return action(handler)


pause = _pause_action(True)
resume = _pause_action(False)


@action
async def retry_failed(request: Request, principal: Principal, form: FormData) -> Response:
    """Send again to every recipient whose delivery of the run's period failed."""
    ctx = web(request)
    scoped = ctx.scoped(principal)
    run = scoped.run(request.path_params["run_id"])
    back = f"/runs/{run.id}"
    report = scoped.report(run.report)
    failed = [d.recipient for d in scoped.deliveries(run)
              if d.state in FAILED and d.recipient in report.recipients]
    if not failed:
        return _refuse(request, principal, "No failed delivery of a configured recipient.", back)
    try:
        as_of = _as_of(report, run)
    except PeriodError as exc:
        return _refuse(request, principal, str(exc), back)
    if form.get("confirm") != "yes":
        return _confirm(request, principal, form, back=back, question=(
            f"Send {report.name} {run.period.key} again to {', '.join(failed)}?"))
    await _act(
        request, ctx, principal, "retry", report=report.name, run_id=run.id,
        detail=", ".join(failed),
        work=lambda: _requeue_and_send(ctx, report, run, failed, as_of),
    )
    return _done(request, f"Sending again to {', '.join(failed)}; the new run appears on the "
                 "report's page.", back)


@action
async def resend(request: Request, principal: Principal, form: FormData) -> Response:
    """Send the run's period again to one recipient."""
    ctx = web(request)
    scoped = ctx.scoped(principal)
    run = scoped.run(request.path_params["run_id"])
    back = f"/runs/{run.id}"
    report = scoped.report(run.report)
    recipient = str(form.get("recipient", ""))
    known = {d.recipient for d in scoped.deliveries(run)}
    if recipient not in known or recipient not in report.recipients:
        return _refuse(request, principal, f"{recipient!r} is not a configured recipient of "
                       "this period.", back)
    try:
        as_of = _as_of(report, run)
    except PeriodError as exc:
        return _refuse(request, principal, str(exc), back)
    if form.get("confirm") != "yes":
        return _confirm(request, principal, form, back=back, question=(
            f"Send {report.name} {run.period.key} again to {recipient}? They may get it twice."))
    await _act(
        request, ctx, principal, "resend", report=report.name, run_id=run.id, detail=recipient,
        work=lambda: _requeue_and_send(ctx, report, run, [recipient], as_of),
    )
    return _done(request, f"Sending again to {recipient}.", back)


def _requeue_and_send(
    ctx: WebContext, report: ReportConfig, run: RunRecord, recipients: list[str], as_of: str,
) -> None:
    ctx.ledger.requeue_deliveries(report.name, run.period, recipients)
    ctx.runner.start(["--report", report.name, "--as-of", as_of],
                     what=f"send {report.name} {run.period.key}")
