"""Learner privacy: which form learners take in a report (pure; the key is passed in).

- ``named``: usernames and names as the API gave them (the operator's FERPA/GDPR decision);
- ``pseudonymous`` (the default): each learner becomes ``Learner XXXXXXXXXX``, ten base32
  characters of ``HMAC-SHA256(key, org + "/" + username)``; the same learner gets the same
  pseudonym in every period and process while the key stays the same, and no name or username
  survives the transform, so nothing downstream (tables, CSV, HTML, mail) can print one;
- ``aggregate``: no per-learner rows at all; the indexes stay (without identities) for the
  averages and the engagement distribution.

The transform runs on the collected ``ReportData`` before analysis, so every later stage sees
only what the policy allows.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from reports.config import ReportConfig
from reports.config.privacy import PrivacyConfig
from reports.report.model import ActiveUser, ReportData

NAMED, PSEUDONYMOUS, AGGREGATE = "named", "pseudonymous", "aggregate"
PSEUDONYM_CHARS = 10
PSEUDONYM_PREFIX = "Learner "
BAND_WIDTH = 20
"""Engagement distribution: bands of 20 index points (0-20, 20-40, ..., 80-100)."""


@dataclass(frozen=True)
class Policy:
    """How one report treats learners. The defaults (named, no suppression) are the pure
    functions' neutral behaviour; a run always builds its policy from the config."""

    learners: str = NAMED
    min_group_size: int = 0
    """Counts from 1 to this minus 1 are suppressed (0: nothing is)."""
    attach_learner_list: bool = True
    key: bytes = field(default=b"", repr=False)
    """The pseudonym key (a secret: never in repr, logs or the render key)."""

    @property
    def per_learner_rows(self) -> bool:
        """Whether the report may list individual learners at all."""
        return self.learners != AGGREGATE

    @property
    def learner_list_attached(self) -> bool:
        """Whether the per-learner CSV goes into the PDF (never in the aggregate form)."""
        return self.attach_learner_list and self.per_learner_rows


NAMED_POLICY = Policy()
"""Names shown, nothing suppressed: the pure functions' neutral default."""


def policy_for(defaults: PrivacyConfig, report: ReportConfig, key: bytes = b"") -> Policy:
    """The report's policy: its own keys, else the ``[privacy]`` table's."""
    return Policy(
        learners=report.learners or defaults.learners,
        min_group_size=(
            report.min_group_size if report.min_group_size is not None
            else defaults.min_group_size
        ),
        attach_learner_list=(
            report.attach_learner_list if report.attach_learner_list is not None
            else defaults.attach_learner_list
        ),
        key=key,
    )


def pseudonym(key: bytes, org: str, username: str) -> str:
    """``Learner XXXXXXXXXX``: stable for (key, org, username), unlinkable without the key."""
    if not key:
        raise ValueError("a pseudonym needs a key")
    digest = hmac.digest(key, f"{org}/{username}".encode(), "sha256")
    # base32 turns each 5 bytes into 8 characters on their own: the first 10 bytes give the
    # first 16 characters of the whole digest's encoding (a report pseudonymises every learner
    # in each render process: ~1,400 in the demo org, 10 ms less per process)
    return PSEUDONYM_PREFIX + base64.b32encode(digest[:10]).decode("ascii")[:PSEUDONYM_CHARS]


def apply_learners(data: ReportData, policy: Policy) -> ReportData:
    """``data`` with its learners in the policy's form (the same object when named)."""
    if policy.learners == NAMED:
        return data
    if policy.learners == PSEUDONYMOUS:
        users = tuple(
            ActiveUser(pseudonym(policy.key, data.org, u.username), "", u.engagement_index,
                       u.performance_index)
            for u in data.users
        )
    else:
        users = tuple(
            ActiveUser("", "", u.engagement_index, u.performance_index) for u in data.users
        )
    return replace(data, users=users)


@dataclass(frozen=True)
class Band:
    """Learners whose engagement index falls in ``[low, high)`` (the last band includes 100)."""

    low: int
    high: int
    learners: int


def engagement_bands(values: Iterable[float | None]) -> tuple[Band, ...]:
    """The engagement distribution in bands of ``BAND_WIDTH`` points (missing values left out)."""
    counts = [0] * (100 // BAND_WIDTH)
    for value in values:
        if value is None:
            continue
        index = min(int(max(value, 0.0) // BAND_WIDTH), len(counts) - 1)
        counts[index] += 1
    return tuple(
        Band(i * BAND_WIDTH, (i + 1) * BAND_WIDTH, n) for i, n in enumerate(counts)
    )
