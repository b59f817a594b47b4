"""The ``[privacy]`` table: how every report treats learners unless it says otherwise.

The defaults are "data protection by default" (GDPR Art. 25(2), FERPA): learners by pseudonym,
no per-learner list attached, per-course counts under 10 suppressed. See the README's "Learner
privacy" section for the reasons and ``reports.report.privacy`` / ``suppress`` for the rules.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Learners = Literal["aggregate", "pseudonymous", "named"]
MIN_GROUP_SIZE_FLOOR = 5


def check_group_size(value: int | None) -> int | None:
    if value is not None and value < MIN_GROUP_SIZE_FLOOR:
        raise ValueError(
            f"must be at least {MIN_GROUP_SIZE_FLOOR} (small groups cannot be shown unsuppressed;"
            f" got {value})"
        )
    return value


class PrivacyConfig(BaseModel):
    """[privacy]: the defaults of every report's learner privacy (FERPA, GDPR Art. 25(2))."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learners: Learners = Field(
        "pseudonymous",
        description='How learners appear: "aggregate" (no per-learner rows), "pseudonymous" '
        '(stable pseudonyms such as "Learner 7KQ2M9XF3A") or "named" (names and usernames).',
    )
    attach_learner_list: bool = Field(
        False, description="Embed the per-learner CSV (in the learners form) in the PDF."
    )
    min_group_size: int = Field(
        10, description="Smallest count shown per course; 1 to k-1 print as \"<k\" (at least 5)."
    )
    pseudonym_key_env: str = Field(
        "IBL_PSEUDONYM_KEY",
        description="Env var with the pseudonym key; unset: a random key kept beside the "
        "state database (pseudonym.key, mode 0600).",
    )

    @field_validator("min_group_size")
    @classmethod
    def _group(cls, value: int) -> int:
        check_group_size(value)
        return value

    @field_validator("pseudonym_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_RE.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (write the name, "
                             "not the key)")
        return value
