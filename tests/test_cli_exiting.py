"""How ``generate`` ends (``reports.cli.exiting``): without the interpreter's teardown, but with
everything the normal exit does that anyone can see (atexit functions, flushed output, the exit
status), and only when that is safe. In a fresh interpreter: ``finish`` ends the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, sys, threading
from reports.cli import exiting

atexit.register(lambda: open(sys.argv[1], "w").write("atexit ran"))
exiting.finish(0)  # not allowed yet: returns
exiting.allow()
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
exiting.finish(0)  # another thread would be joined by the normal exit: returns
stop.set()
other.join()
exiting.finish("not a status")  # the normal exit prints it: returns
sys.stdout.write("buffered, no newline")
sys.stderr.write("err line")
exiting.finish(3)
sys.stdout.write(" -- never reached")
"""


def test_finish_runs_atexit_flushes_and_exits_only_when_safe(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(marker)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "buffered, no newline"
    assert proc.stderr == "err line"
    assert marker.read_text() == "atexit ran"
