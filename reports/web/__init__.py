"""The web UI (``ibl-reports web``): reports, runs, deliveries and the archive, behind a login.

Server-rendered pages (Starlette + Jinja2, no JavaScript build), made of:

- ``app``: the application factory, its middleware (signed-cookie sessions, security headers)
  and routes;
- ``auth``: who is signed in (argon2 passwords, login throttling, CSRF tokens) and what a
  principal may see (org scoping);
- ``scoped``: the read-only lookups a page needs, scoped to the principal (404 for another
  org's report, run or PDF);
- ``pages``: the GET pages; ``actions``: the operator's POST actions, each confirmed first;
- ``transitions``: a run's state transitions as its page shows them (the archive key of its
  PDF, never the server's path);
- ``pdfinfo``: the page count of an archived PDF; ``serve``: the command that runs uvicorn.

It reads the ledger and the archive and starts ``ibl-reports send`` children for actions; it
never holds a secret in a page or a log line.
"""
