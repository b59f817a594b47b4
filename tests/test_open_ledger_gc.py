"""The first ledger a process opens freezes SQLAlchemy's import instead of leaving it young."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CODE = """
import gc, sys
from reports.config.load import load_config
from reports.run import open_ledger
config = load_config(sys.argv[1])
before = gc.get_freeze_count()
with open_ledger(config):
    first = gc.get_freeze_count()
with open_ledger(config):
    second = gc.get_freeze_count()
print(first > before + 10000, second == first, gc.isenabled())
"""


def test_the_first_ledger_freezes_the_import_and_later_ones_freeze_nothing(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n', "utf-8")
    out = subprocess.run([sys.executable, "-c", CODE, str(config)], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr
