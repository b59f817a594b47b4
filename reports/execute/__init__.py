"""Where the heavy work runs: the render worker and its pool.

``worker`` runs a function (the report stage's ``render_report``) in a child process from a
warm fork server, with a time limit and a memory limit, alone (``run_limited``) or in a pool of
warm workers reused across a batch (``WorkerPool``). The GC pause a render runs under is the
report stage's ``reports.report.gcpause``.

May import: ``reports.report`` and the base modules (``config``, ``errors``, ``logs``,
``atomic``). It knows nothing of what it runs: never ``source``, ``delivery``, ``state``,
``schedule`` or the top-level run.
"""
