"""Read-only views of what the ledger and the archive remember, for the CLI and a web UI.

Every view opens the ledger, reads, and closes it: nothing here writes a row or a file (archive
pruning, which deletes, lives with the archive in ``reports.delivery.archive``). Each returns
plain JSON-ready values, so ``--json`` and a web page show the same fields.
"""

from __future__ import annotations

from typing import Any

from reports.config import Config


def _ledger(config: Config) -> Any:
    from reports.state.ledger import Ledger

    return Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)


def history(config: Config, *, report: str | None, limit: int) -> list[dict[str, Any]]:
    """Recent runs with their deliveries, newest first (for ``ibl-reports runs``)."""
    with _ledger(config) as ledger:
        out = []
        for run in ledger.runs(report, limit=limit):
            deliveries = [
                {"recipient": d.recipient, "state": str(d.state), "attempts": d.attempts,
                 "reply": d.smtp_reply, "message_id": d.message_id,
                 "edition": d.edition or "final"}
                # A held run delivered nothing: the period's deliveries are not its own.
                for d in ledger.deliveries(run.report, period=run.period)
                if str(run.state) != "held"
            ]
            out.append({
                "id": run.id, "report": run.report, "org": run.org,
                "period_start": run.period_start.isoformat(),
                "period_end": run.period_end.isoformat(), "state": str(run.state),
                "started_at": run.started_at.isoformat(timespec="seconds"),
                "finished_at": run.finished_at.isoformat(timespec="seconds")
                if run.finished_at else None,
                "error": run.error, "deliveries": deliveries,
                "edition": run.edition or "final", **_gate_view(run),
            })
        return out


def _gate_view(run: Any) -> dict[str, Any]:
    """A run's freshness verdict, and the reason it was held or sent provisional."""
    import json

    from reports.report.freshness import Verdict

    if not run.gate:
        return {"gate": None, "reason": None}
    verdict = Verdict.from_json(json.loads(run.gate))
    return {"gate": verdict.as_json(), "reason": None if verdict.ok else verdict.reason()}


def archive_listing(config: Config, *, report: str | None) -> list[dict[str, Any]]:
    """Archived PDFs (for ``archive list``)."""
    with _ledger(config) as ledger:
        return [
            {"report": e.report, "org": e.org, "period_start": e.period_start.isoformat(),
             "period_end": e.period_end.isoformat(), "path": e.path, "sha256": e.sha256,
             "size": e.size, "created_at": e.created_at.isoformat(timespec="seconds"),
             "edition": e.edition, "current": e.current, "html": e.html_path,
             "html_sha256": e.html_sha256, "run_id": e.run_id}
            for e in ledger.archive_entries(report)
        ]


def archive_verify(config: Config) -> tuple[list[str], int]:
    """Problems found by re-hashing every archived file (PDFs and their HTML), and how many
    files were checked."""
    from reports.delivery.archive import open_archive

    with _ledger(config) as ledger:
        entries = ledger.archive_entries()
        archive = open_archive(config.archive)
        archive.store.check()  # a missing bucket or refused credentials, even with no entries
        result = archive.verify(entries)
        return result.lines(), len(entries) + result.html_checked
