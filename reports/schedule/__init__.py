"""When reports run: the scheduler daemon (``ibl-reports schedule``) and the job list (``jobs``).

Modules, in the order a start-up uses them:

- ``lock``: one scheduler per state database (a file lock or a PostgreSQL advisory lock);
- ``firetimes``: a report's cron fire instants in its time zone, and the period each fire sends;
- ``jobstore``: job sync, one APScheduler job per ``[[reports]]`` entry in the state database;
- ``catchup``: the periods missed while the daemon was down (pure);
- ``runner``: one send in a child process with a time limit, its JSON log lines relayed;
- ``alerts``: the one message sent for a failed run;
- ``health``: the health file rewritten every tick;
- ``scheduler``: the daemon itself (start, signals, the loop, runs, shutdown);
- ``joblist``, ``lastrun``: the read-only job list and the light last-run reader it uses.

Imports: the base modules (``reports.config``, ``errors``, ``logs``, ``cron``),
``reports.report.periods``, and, lazily, ``reports.state.ledger`` (is a period delivered, the
last run) and ``reports.delivery.mailer`` (sending an alert). Never ``reports.run``,
``reports.execute``, ``reports.source`` or ``reports.cli``: a send runs as the ``ibl-reports send``
command in a child process (``python -m reports.cli``), not as an import.
"""
