"""A scheduler daemon in a child process, for tests that need real signals and a real pid.

    python tests/_sched_child.py CONFIG RUN_SECONDS SHUTDOWN_GRACE_S

Every report's catch-up starts at once (nothing counts as done), and each run is a child process
that sleeps RUN_SECONDS and exits 0; logs are JSON lines on stderr.
"""

from __future__ import annotations

import sys

from reports.config import load_config
from reports.schedule.firetimes import RunRequest
from reports.schedule.runner import SubprocessRunner
from reports.schedule.scheduler import run_scheduler


def main() -> int:
    config = load_config(sys.argv[1])
    run_seconds = float(sys.argv[2])
    grace = float(sys.argv[3])

    def command(request: RunRequest) -> list[str]:
        return [sys.executable, "-c", f"import time; time.sleep({run_seconds})"]

    runner = SubprocessRunner(command, timeout_s=config.scheduler.run_timeout_s)
    return run_scheduler(
        config, runner=runner, log_format="json", is_done=lambda report, period: False,
        alerter=lambda subject, text: None, env={}, shutdown_grace_s=grace,
    )


if __name__ == "__main__":
    sys.exit(main())
