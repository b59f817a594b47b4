"""The GET pages: reports, one report, one run, archive verification, the audit trail, PDF
downloads and HTML previews.

A PDF is found through the archive index (report name and period key in the URL, checked
against the index; the file name sent is built from the index, never taken from the URL) and
served as an attachment that no cache keeps. Its HTML preview (the document the PDF was made
from, kept beside it) is served inline under a CSP that allows no script, no request and no
form (``sandbox``), only inline styles and ``data:`` images. Every download and preview is
written to the audit trail with the run that archived it.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from reports.errors import ArchiveChangedError
from reports.state.archive_index import FINAL, ArchiveRecord
from reports.state.deliveries import DeliveryState
from reports.web.auth import Principal
from reports.web.context import WebContext, page, web
from reports.web.scoped import NotFound, file_ref
from reports.web.transitions import transitions

RUN_LIMIT = 30
AUDIT_LIMIT = 200


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
    """One run: its transitions, what it archived, each recipient's delivery and the audit rows
    about it (downloads and previews of its PDF included)."""
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
        kept = scoped.archive(run.report) if report else []
        archived = [row for row in kept if scoped.run_of(row.entry) == run.id]
        return {
            "run": run, "events": transitions(scoped.events(run), kept),
            "deliveries": deliveries,
            "gate": scoped.gate_reason(run), "archived": archived,
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


PREVIEW_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


@page
async def audit_page(request: Request, principal: Principal) -> Response:
    """The audit trail of the reports an operator may see; failed logins for an operator of
    every org (a name tried is sometimes a mistyped password, so not for org operators)."""
    ctx = web(request)
    if not principal.operator:
        raise HTTPException(403, "Only operators may read the whole audit trail; each report "
                                 "and run page shows its own.")
    scoped = ctx.scoped(principal)

    def read() -> dict[str, Any]:
        if principal.orgs is None:
            rows = ctx.ledger.audit_rows(limit=AUDIT_LIMIT)
        else:
            names = [r.name for r in scoped.config.reports if principal.may_see(r.org)]
            rows = ctx.ledger.audit_rows(reports=names, limit=AUDIT_LIMIT)
        return {"rows": rows, "logins": principal.orgs is None, "limit": AUDIT_LIMIT}

    return ctx.render(request, "audit.html.j2", principal, **await run_in_threadpool(read))


def _file_args(request: Request) -> tuple[str, str, str, str | None]:
    params = request.path_params
    return params["name"], params["period"], params.get("edition", FINAL), params.get("ref")


def _filename(entry: ArchiveRecord, suffix: str) -> str:
    """The file name sent, from the index only (never from the URL)."""
    return (f"{entry.report}_{entry.period_start.isoformat()}_{entry.period_end.isoformat()}"
            + ("" if entry.edition == FINAL else f"_{entry.edition}")
            + ("" if entry.current else f"_{file_ref(entry)}") + suffix)


async def _audited(ctx: WebContext, principal: Principal, action: str, entry: ArchiveRecord,
                   filename: str) -> None:
    scoped = ctx.scoped(principal)

    def write() -> None:
        kept = "" if entry.current else ", kept as history"
        ctx.ledger.audit(principal.name, action, report=entry.report, run_id=scoped.run_of(entry),
                         detail=f"{filename} ({entry.edition}{kept}; PDF sha256 "
                                f"{entry.sha256[:16]})")

    await run_in_threadpool(write)


@page
async def download_pdf(request: Request, principal: Principal) -> Response:
    """An archived PDF, as an attachment, never cached; the download is audited with its run."""
    ctx = web(request)
    entry, data = await run_in_threadpool(ctx.scoped(principal).archive_file, *_file_args(request))
    filename = _filename(entry, ".pdf")
    await _audited(ctx, principal, "download", entry, filename)
    return Response(
        data, media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@page
async def preview_html(request: Request, principal: Principal) -> Response:
    """The HTML an archived PDF was made from, inline, sandboxed, never cached; audited."""
    ctx = web(request)
    try:
        entry, data = await run_in_threadpool(ctx.scoped(principal).archive_html,
                                              *_file_args(request))
    except ArchiveChangedError:
        raise HTTPException(409, "The archived HTML no longer has the SHA-256 recorded when "
                                 "it was archived, so it is not shown; see the archive check."
                            ) from None
    filename = _filename(entry, ".html")
    await _audited(ctx, principal, "preview", entry, filename)
    return Response(
        data, media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PREVIEW_CSP, "Cache-Control": "no-store",
                 "Content-Disposition": f'inline; filename="{filename}"',
                 "X-Content-Type-Options": "nosniff"},
    )
