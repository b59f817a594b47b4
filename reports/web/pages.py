"""The GET pages: reports, one report, one run, archive verification, and PDF downloads.

A PDF is found through the archive index (report name and period key in the URL, checked
against the index; the file name sent is built from the index, never taken from the URL) and
served as an attachment that no cache keeps. Every download is written to the audit trail.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from reports.state.archive_index import FINAL
from reports.state.deliveries import DeliveryState
from reports.web.auth import Principal
from reports.web.context import page, web
from reports.web.scoped import NotFound

RUN_LIMIT = 30


@page
async def reports_page(request: Request, principal: Principal) -> Response:
    """Every report the principal may see, with its schedule, next fire time and last run."""
    ctx = web(request)
    rows = await run_in_threadpool(ctx.scoped(principal).reports)
    return ctx.render(request, "reports.html.j2", principal, rows=rows)


@page
async def report_page(request: Request, principal: Principal) -> Response:
    """One report: its schedule, archive and runs."""
    ctx = web(request)
    scoped = ctx.scoped(principal)
    name = request.path_params["name"]

    def read() -> dict[str, Any]:
        report = scoped.report(name)
        return {
            "report": report, "archive": scoped.archive(name),
            "runs": scoped.runs_of(name, RUN_LIMIT), "paused": scoped.paused(name),
            "audit": ctx.ledger.audit_rows(report=name, limit=20),
        }

    return ctx.render(request, "report.html.j2", principal, **await run_in_threadpool(read))


@page
async def run_page(request: Request, principal: Principal) -> Response:
    """One run: its transitions, each recipient's delivery and the audit rows about it."""
    ctx = web(request)
    scoped = ctx.scoped(principal)
    run_id = request.path_params["run_id"]

    def read() -> dict[str, Any]:
        run = scoped.run(run_id)
        deliveries = scoped.deliveries(run)
        try:
            report = scoped.report(run.report)
        except NotFound:
            report = None  # a report no longer in config.toml: its history stays readable
        failed = [d for d in deliveries if d.state in (DeliveryState.FAILED_TRANSIENT,
                                                       DeliveryState.FAILED_PERMANENT)]
        return {
            "run": run, "events": scoped.events(run), "deliveries": deliveries,
            "gate": scoped.gate_reason(run),
            "report": report, "failed": failed,
            "audit": ctx.ledger.audit_rows(run_id=run.id, limit=100),
            "configured": set(report.recipients) if report else set(),
        }

    return ctx.render(request, "run.html.j2", principal, **await run_in_threadpool(read))


@page
async def verify_page(request: Request, principal: Principal) -> Response:
    """Re-hash every archived file the principal may see."""
    ctx = web(request)
    result, checked = await run_in_threadpool(ctx.scoped(principal).verify)
    return ctx.render(request, "verify.html.j2", principal, result=result, checked=checked)


@page
async def download_pdf(request: Request, principal: Principal) -> Response:
    """An archived PDF, as an attachment, never cached; the download is audited."""
    ctx = web(request)
    name, key = request.path_params["name"], request.path_params["period"]
    edition = request.path_params.get("edition", FINAL)
    entry, data = await run_in_threadpool(ctx.scoped(principal).archive_file, name, key, edition)
    filename = (f"{entry.report}_{entry.period_start.isoformat()}_{entry.period_end.isoformat()}"
                + ("" if entry.edition == FINAL else f"_{entry.edition}") + ".pdf")
    await run_in_threadpool(
        ctx.ledger.audit, principal.name, "download", report=entry.report,
        detail=f"{filename} sha256 {entry.sha256[:16]}",
    )
    return Response(
        data, media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
