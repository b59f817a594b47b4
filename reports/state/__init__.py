"""What is remembered: report runs, deliveries and the archive index, on SQLite or PostgreSQL.

The state stage is the ledger that makes "each stakeholder gets each period's report exactly
once" checkable. ``ledger.Ledger`` is the one object the other stages use; it is made of:

- ``engine``: the database for a ``[state] url`` (SQLite with WAL, a busy timeout and foreign
  keys; or PostgreSQL), opened with its schema migrated;
- ``schema``: the versioned tables; ``migrations``: the forward migrations (safe when several
  processes open a new database at once) and the version check;
- ``runs``: run states and their transitions, one event row per transition, and the recovery of
  runs stuck after a crash;
- ``deliveries``: planning who is due for a period, each delivery's state and attempts;
- ``archive_index``: which PDF the archive keeps for each report and period;
- ``holds``: the periods held by the freshness gate that the scheduler looks after;
- ``gatealerts``: which of the gate's alerts (held, provisional) went out for a period.

It may import ``reports.report.periods``, ``reports.errors``, ``reports.logs`` and
``reports.config``; nothing from delivery, schedule, execute, run or cli (they use it).
Secrets are never written here.
"""
