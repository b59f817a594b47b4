"""``python -m reports.cli``: the same as the ``ibl-reports`` console script."""

from reports.cli import main

main()
