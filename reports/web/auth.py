"""Who is signed in to the web UI, and what they may see and do.

- Passwords are checked with argon2 (``argon2-cffi``); an unknown name is checked against a
  dummy hash, so both answers take the same time.
- ``LoginThrottle`` refuses logins for ``login_lockout_s`` once a name has failed
  ``login_max_failures`` times within that window, or a client address five times as often
  (an office behind one address must not lock itself out by a few typos).
- The session (Starlette's signed cookie) holds the user's name, the login time and a tag of the
  password hash (an HMAC under the session secret, never the hash), so changing a password ends
  the sessions made with the old one. CSRF tokens live in the session too.
- With no ``[[web.users]]`` configured, every request is the read-only ``local`` viewer; the
  server then listens on loopback only (``serve``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from reports.config.web import WebConfig, WebUser

LOCAL_USER = "local"
ADDRESS_FACTOR = 5
_MAX_TRACKED = 10_000


@dataclass(frozen=True)
class Principal:
    """The person behind a request: a configured user, or the local viewer (no users)."""

    name: str
    role: str
    orgs: frozenset[str] | None
    local: bool = False

    @property
    def operator(self) -> bool:
        """May act (send, retry, pause, run)."""
        return self.role == "operator"

    def may_see(self, org: str) -> bool:
        """Whether this principal may see anything of ``org``."""
        return self.orgs is None or org in self.orgs

    @classmethod
    def of(cls, user: WebUser) -> Principal:
        """The principal of a configured user."""
        return cls(user.name, user.role, frozenset(user.orgs) if user.orgs is not None else None)


LOCAL = Principal(LOCAL_USER, "viewer", None, local=True)


def hash_password(password: str) -> str:
    """An argon2 hash of ``password`` (for ``ibl-reports web hash-password``)."""
    return PasswordHasher().hash(password)


class Passwords:
    """argon2 verification in constant shape: unknown users cost as much as known ones."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def verify(self, user: WebUser | None, password: str) -> bool:
        """Whether ``password`` is ``user``'s (False for no user, without revealing which)."""
        try:
            self._hasher.verify(user.password_hash if user else self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return user is not None


class LoginThrottle:
    """Failed logins per key (a user name, a client address); refuses when over the limit."""

    def __init__(self, max_failures: int, lockout_s: float, clock: Callable[[], float]) -> None:
        self._max = max_failures
        self._lockout = lockout_s
        self._clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, keys: Iterable[str]) -> float:
        """Seconds until a login may be tried again for these keys (0: now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                limit = self._max * (ADDRESS_FACTOR if key.startswith("addr:") else 1)
                if len(recent) >= limit:
                    wait = max(wait, recent[-1] + self._lockout - now)
        return wait

    def failed(self, keys: Iterable[str]) -> None:
        """Count one failure against each key."""
        now = self._clock()
        with self._lock:
            for key in keys:
                recent = self._recent(key, now)
                recent.append(now)
                self._failures[key] = recent
                self._failures.move_to_end(key)
            while len(self._failures) > _MAX_TRACKED:
                self._failures.popitem(last=False)

    def succeeded(self, keys: Iterable[str]) -> None:
        """Forget the failures of these keys."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> list[float]:
        return [t for t in self._failures.get(key, []) if now - t < self._lockout]


def throttle_keys(name: str, client: str) -> list[str]:
    """The keys a login attempt counts against: its name, then its client address."""
    return [f"user:{name.strip().lower()}", f"addr:{client}"]


class Sessions:
    """What the signed session cookie holds, and who it belongs to."""

    def __init__(self, web: WebConfig, secret: str, clock: Callable[[], float]) -> None:
        self._web = web
        self._key = secret.encode("utf-8")
        self._clock = clock
        self.max_age_s = int(web.session_hours * 3600)

    def _tag(self, user: WebUser) -> str:
        return hmac.new(self._key, user.password_hash.encode("utf-8"), hashlib.sha256).hexdigest()[
            :32
        ]

    def sign_in(self, session: MutableMapping[str, Any], user: WebUser) -> None:
        """Start a fresh session for ``user`` (a new CSRF token too)."""
        session.clear()
        session.update(user=user.name, since=self._clock(), tag=self._tag(user),
                       csrf=secrets.token_urlsafe(32))

    def principal(self, session: MutableMapping[str, Any]) -> Principal | None:
        """Who this session belongs to, or None (not signed in, expired, user changed)."""
        if not self._web.users:
            return LOCAL
        name, since, tag = session.get("user"), session.get("since"), session.get("tag")
        if not isinstance(name, str) or not isinstance(since, int | float):
            return None
        user = self._web.user(name)
        if user is None or not isinstance(tag, str) or not hmac.compare_digest(tag,
                                                                               self._tag(user)):
            return None
        if self._clock() - since > self.max_age_s:
            return None
        return Principal.of(user)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: MutableMapping[str, Any], sent: object) -> bool:
    """Whether a form's token matches the session's."""
    token = session.get("csrf")
    return (isinstance(token, str) and isinstance(sent, str)
            and hmac.compare_digest(token.encode(), sent.encode()))
