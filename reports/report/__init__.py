"""What the report is: one period's data turned into HTML and PDF bytes.

Periods (weekly, monthly, custom, the period before), the report model, analysis (KPIs and
deltas), highlight sentences, Babel formatting, matplotlib charts, the Jinja2 HTML, the WeasyPrint
PDF (with the cyclic GC paused while it renders) and the CSV attachments.

Pure: no network, database, broker or mail server; the only files read are the template folders
(built-in and the configured override) and a configured logo. It may import the base modules
(``reports.errors``, ``reports.config`` models) and nothing from ``source``, ``state``,
``delivery``, ``schedule``, ``execute``, ``run`` or ``cli`` (import-linter checks it).
"""

from pathlib import Path

BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
"""The built-in templates: ``templates/`` at the repository root, next to ``reports/``. Here,
not in ``render``, so that what only needs the folder (the render key of a cold ``generate``'s
parent) does not import Jinja2 and the report's analysis and charts modules (~30 ms of CPU)."""
