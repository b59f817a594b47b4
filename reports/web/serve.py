"""``ibl-reports web``: check the setup, then serve the UI with uvicorn.

- With no ``[[web.users]]``, only a loopback address may be bound (anything else is a usage
  error, exit 2): the UI is then read-only for whoever can reach the machine's loopback.
- The session secret comes from the variable ``[web] session_secret_env`` names; when it is
  unset a random one is made for this process, and sessions end when it stops (said on stderr).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from reports.config import Config
from reports.errors import ConfigError, UsageError

MIN_SECRET_CHARS = 32
_log = logging.getLogger("reports.web")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(config: Config, host: str) -> None:
    """Refuse a non-loopback address when nobody has to sign in."""
    if not config.web.users and not is_loopback(host):
        raise UsageError(
            f"web: refusing to listen on {host} with no [[web.users]] in {config.source}; add a "
            "user (see `ibl-reports web hash-password`) or use --host 127.0.0.1"
        )


def session_secret(config: Config, env: Mapping[str, str]) -> tuple[str, bool]:
    """The signing secret and whether it came from the environment (else made for this run)."""
    name = config.web.session_secret_env
    value = env.get(name)
    if value is None or value == "":
        return secrets.token_urlsafe(48), False
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"the session secret in ${name} is shorter than {MIN_SECRET_CHARS} characters; "
            "make one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`",
            file=str(config.source), key="web.session_secret_env",
        )
    return value, True


def build_app(config: Config, env: Mapping[str, str], *, secret: str) -> Any:
    """The app with its real seams: the ledger and ``send`` children."""
    from reports.state.ledger import Ledger
    from reports.web.app import create_app
    from reports.web.runner import ChildSendRunner

    ledger = Ledger(config.state.url, stuck_after_s=config.state.stuck_after_s)
    return create_app(
        config, secret=secret, ledger=ledger,
        runner=ChildSendRunner(config.source),
    )


def serve(config: Config, host: str, port: int, env: Mapping[str, str]) -> None:
    """Check, say where the UI is, and serve until interrupted."""
    import uvicorn

    from reports.logs import configure_logging, secrets_from_env

    check_bind(config, host)
    secret, persistent = session_secret(config, env)
    named = [config.api.api_key_env, config.email.password_env, config.web.session_secret_env]
    configure_logging("text", secrets=[*secrets_from_env(env, named, [config.state.url]), secret])
    app = build_app(config, env, secret=secret)
    shown = f"[{host}]" if ":" in host else host
    print(f"web UI on http://{shown}:{port}/ (Ctrl-C stops it)", file=sys.stderr)
    if not persistent:
        print(f"web: ${config.web.session_secret_env} is not set: sessions end when this "
              "process stops", file=sys.stderr)
    if not config.web.users:
        print("web: no [[web.users]] configured: read-only, loopback only", file=sys.stderr)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                    server_header=False, lifespan="off")
    finally:
        app.state.web.ledger.close()
