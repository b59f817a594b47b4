"""How a command-line process ends: ``generate`` leaves without tearing the interpreter down.

A one-shot ``generate`` ends with ~1.2 s of CPU worth of live objects in its parent (typer,
pydantic, the config, SQLAlchemy, httpx, NumPy, the demo API). Python's normal exit collects and
deallocates all of it, module by module: 70-90 ms of CPU after the report is written and its
line printed, which the user waits for. ``finish(code)`` does what the normal exit does that
anyone can observe: it runs the ``atexit`` functions (logging's flush, ``weakref.finalize``
callbacks such as temporary folders, multiprocessing's clean-up), flushes stdout and stderr,
and then ends the process with ``os._exit(code)``, skipping only the teardown.

Only a command that asked for it (``allow()``), only with no other thread running (the normal
exit would join it) and only for an integer exit status; otherwise (a flush that fails, e.g. a
closed pipe, too) the normal exit runs.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading


class _State:
    allowed = False


_state = _State()


def allow() -> None:
    """This process may end through ``finish`` (a command whose outputs are all closed)."""
    _state.allowed = True


def finish(code: object) -> None:
    """End the process now with ``code`` (a ``SystemExit`` code: None or an int) if ``allow``
    was called and nothing else needs the normal exit; otherwise return."""
    if not _state.allowed or threading.active_count() != 1:
        return
    if code is None:
        code = 0
    if not isinstance(code, int) or isinstance(code, bool):
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # the normal exit reports it as it always did
        return
    os._exit(code)
