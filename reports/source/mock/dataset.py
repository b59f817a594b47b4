"""A deterministic synthetic org: courses, users, daily activity and enrollments.

Everything is derived from the org name (and a seed), so every endpoint and every run sees the
same org. Days are generated independently (one RNG stream per day), which makes any date range
cheap and consistent with every other range: a user active on a day is active on that day in
every answer. Users belong to 1-4 courses and, on a day they are active, count as active in all
of them; so a course's ``user_count`` is the number of its users active in the range, and the org
``total`` is the number of distinct active users (a user of two courses counts once).

Two knobs bend the data for the freshness gate: ``arrived_until`` (later days have not been
loaded: null in every series, nobody active) and ``drop`` (from a day on, real activity and
enrollments fall by a factor: complete days, low figures).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

_EPOCH = date(2025, 1, 1).toordinal()

_TOPICS = [
    "Introduction to Programming", "Data & Analytics <Advanced>", "Pricing in $ and €",
    "Linear Algebra", "Machine Learning Foundations", "Organic Chemistry", "Microeconomics",
    "Academic Writing", "World History since 1900", "Statistics for Everyone",
    "データサイエンス入門", "機械学習の基礎", "مقدمة في البرمجة", "الذكاء الاصطناعي للجميع",
    "Εισαγωγή στη Φιλοσοφία", "Ιστορία της Τέχνης", "Cloud Computing", "Cybersecurity Basics",
    "Project Management", "Marketing & Sales", "Public Speaking", "Calculus I", "Calculus II",
    "Physics: Mechanics", "Biology of the Cell", "Nutrition & Health", "Creative Writing",
    "R&D Management", "Español para principiantes", "Français: niveau A2", "Deutsch für Anfänger",
    "Financial Accounting", "UX Design", "Databases & SQL", "Operating Systems",
    "Ethics in AI", "Supply Chain <Fundamentals>", "Negotiation", "Music Theory",
    "Environmental Science", "Quantum Computing 101", "Photography", "Psychology 101",
    "Corporate Finance: $ Valuation", "Leadership", "Game Development", "Robotics",
    "Web Development", "Mobile Apps", "Entrepreneurship",
]
_DEPTS = ["CS", "DS", "MATH", "BIO", "CHEM", "ECON", "HIST", "LANG", "BUS", "ART", "PHYS", "ENG"]
_FIRST = [
    "Ada", "Alan", "Grace", "Linus", "Zoë", "Søren", "José", "Amélie", "Yūki", "Hana",
    "Ahmed", "Fatima", "Νίκος", "Ελένη", "Olga", "Ivan", "Priya", "Ravi", "Mei", "Wei",
    "Kwame", "Amara", "Liam", "Emma", "Noah", "Mia", "Lucas", "Sofia", "Omar", "Leila",
]
_LAST = [
    "Lovelace", "Turing", "Hopper", "Torvalds", "Müller", "Kierkegaard", "García", "Dubois",
    "Tanaka", "Suzuki", "Al-Farsi", "Haddad", "Παπαδόπουλος", "Γεωργίου", "Petrova", "Ivanov",
    "Sharma", "Patel", "Chen", "Wang", "Mensah", "Okafor", "O'Brien", "Smith", "Jones", "Rossi",
    "Santos", "Kowalski", "Nakamura", "Nguyen",
]
_ASCII_FIRST = [
    "ada", "alan", "grace", "linus", "zoe", "soren", "jose", "amelie", "yuki", "hana",
    "ahmed", "fatima", "nikos", "eleni", "olga", "ivan", "priya", "ravi", "mei", "wei",
    "kwame", "amara", "liam", "emma", "noah", "mia", "lucas", "sofia", "omar", "leila",
]


def org_hash(org: str, seed: int = 0) -> int:
    """A stable 63-bit integer derived from the org name and seed."""
    digest = hashlib.blake2b(f"{org}|{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def default_size(org: str) -> tuple[int, int]:
    """Courses and users of an org when no knob overrides them (20-60 and 500-3000)."""
    h = org_hash(org, 7919)
    return 20 + h % 41, 500 + (h >> 16) % 2501


@dataclass(frozen=True)
class Course:
    """One course of the synthetic org."""

    course_id: str
    name: str


@dataclass(frozen=True)
class RangeActivity:
    """Who was active in one date range."""

    active: BoolArray
    """Per user: active on at least one day of the range."""
    active_users: IntArray
    """Indexes of active users, in username order."""
    course_counts: IntArray
    """Per course: active users of that course in the range."""


class Dataset:
    """The synthetic data of one org; cheap to query for any date range."""

    def __init__(self, org: str, *, courses: int | None = None, users: int | None = None,
                 seed: int = 0, launched: date | None = None,
                 arrived_until: date | None = None,
                 drop: tuple[date, float] | None = None, small_courses: int = 0,
                 small_course_size: int = 3) -> None:
        default_courses, default_users = default_size(org)
        self.org = org
        self.seed = org_hash(org, seed)
        # 0 is allowed: an org with no courses or no users is served as empty pages.
        n_courses = max(0, courses if courses is not None else default_courses)
        n_users = max(0, users if users is not None else default_users)
        self.launched = launched.toordinal() if launched is not None else None
        """Days before this one have no activity and no (un)enrollments (a new org)."""
        self.arrived = arrived_until.toordinal() if arrived_until is not None else None
        """Days after this one have not arrived: null series, no activity."""
        self.drop = (drop[0].toordinal(), drop[1]) if drop is not None else None
        """From this day on, activity and enrollment rates are scaled by the factor."""
        rng = np.random.default_rng(self.seed)
        self.courses = self._make_courses(org, n_courses, rng)
        self.course_index = {c.course_id: i for i, c in enumerate(self.courses)}
        # Popularity: a long tail, so small courses sometimes have no activity in a week.
        weights = 1.0 / (np.arange(n_courses) + 2.0) ** 1.1
        rng.shuffle(weights)
        # About one course in ten is nearly dormant: active in some weeks, absent in others.
        weights[rng.random(n_courses) < 0.1] *= 0.01
        self.course_weights = weights / weights.sum()
        self._make_users(n_users, rng)
        self._make_membership(n_users, n_courses, rng)
        if small_courses > 0:
            self._shrink(min(small_courses, n_courses), max(0, small_course_size))
        self.enroll_rate = 0.4 + 0.05 * self.course_sizes.astype(np.float64) / 7.0
        self._day_active = lru_cache(maxsize=256)(self._day_active_uncached)
        self._day_enrollments = lru_cache(maxsize=512)(self._day_enrollments_uncached)
        self.range_activity = lru_cache(maxsize=64)(self._range_activity_uncached)
        self.course_users = lru_cache(maxsize=1024)(self._course_users_uncached)

    # -- construction ------------------------------------------------------------------------

    @staticmethod
    def _make_courses(org: str, n: int, rng: np.random.Generator) -> list[Course]:
        short = "".join(ch for ch in org.title() if ch.isalnum())[:12] or "Org"
        courses: list[Course] = []
        for i in range(n):
            dept = _DEPTS[i % len(_DEPTS)]
            number = 100 + (i // len(_DEPTS)) * 7 + int(rng.integers(0, 7))
            year = 2024 + int(rng.integers(0, 3))
            term = 1 + int(rng.integers(0, 3))
            topic = _TOPICS[i % len(_TOPICS)]
            suffix = f" ({i // len(_TOPICS) + 1})" if i >= len(_TOPICS) else ""
            courses.append(Course(
                course_id=f"course-v1:{short}+{dept}{number}+{year}_T{term}",
                name=topic + suffix,
            ))
        return courses

    def _make_users(self, n: int, rng: np.random.Generator) -> None:
        first = rng.integers(0, len(_FIRST), n)
        last = rng.integers(0, len(_LAST), n)
        self.usernames = [f"{_ASCII_FIRST[f]}{i:06d}" for i, f in enumerate(first.tolist())]
        self.names = [f"{_FIRST[f]} {_LAST[s]}" for f, s in zip(first.tolist(), last.tolist(),
                                                              strict=True)]
        self.engagement = np.round(rng.beta(2.0, 2.5, n) * 100, 1).tolist()
        self.performance = np.round(rng.beta(3.0, 1.8, n) * 100, 1).tolist()
        # Daily activity propensity: most users drop by once or twice a week, a few daily.
        self.propensity = np.clip(rng.beta(1.3, 7.0, n), 0.0, 0.95)

    def _make_membership(self, n_users: int, n_courses: int, rng: np.random.Generator) -> None:
        k = np.minimum(rng.choice(4, size=n_users, p=[0.5, 0.3, 0.15, 0.05]) + 1, n_courses)
        draws = np.searchsorted(np.cumsum(self.course_weights), rng.random((n_users, 4)))
        draws = np.minimum(draws, n_courses - 1)
        keep = np.arange(4)[None, :] < k[:, None]
        users = np.repeat(np.arange(n_users)[:, None], 4, axis=1)[keep]
        pairs = _unique(users.astype(np.int64) * n_courses + draws[keep])
        self.pair_user = (pairs // n_courses).astype(np.int64)
        self.pair_course = (pairs % n_courses).astype(np.int64)
        self.course_sizes = np.bincount(self.pair_course, minlength=n_courses)
        order = np.argsort(self.pair_course, kind="stable")
        bounds = np.searchsorted(self.pair_course[order], np.arange(n_courses + 1))
        by_course = self.pair_user[order]
        self._members = [by_course[bounds[c]:bounds[c + 1]] for c in range(n_courses)]

    def _shrink(self, count: int, size: int) -> None:
        """The last ``count`` courses keep only their first ``size`` members (small groups)."""
        n_courses = len(self.courses)
        small = np.arange(n_courses - count, n_courses)
        keep = np.ones(len(self.pair_user), dtype=bool)
        for course in small.tolist():
            members = np.flatnonzero(self.pair_course == course)
            keep[members[size:]] = False
            self._members[course] = self._members[course][:size]
        self.pair_user, self.pair_course = self.pair_user[keep], self.pair_course[keep]
        self.course_sizes = np.bincount(self.pair_course, minlength=n_courses)

    # -- activity ----------------------------------------------------------------------------

    @staticmethod
    def day_factor(ordinal: int) -> float:
        """Weekday/weekend pattern, a seasonal wave and a mild growth trend."""
        weekday = date.fromordinal(ordinal).weekday()
        week = 1.0 if weekday < 5 else 0.35
        season = 1.0 + 0.15 * math.sin(2 * math.pi * (ordinal - _EPOCH) / 365.25)
        trend = min(max(1.0 + 0.0004 * (ordinal - _EPOCH), 0.6), 1.6)
        return week * season * trend

    def _scale(self, ordinal: int) -> float:
        """The day's factor: the calendar pattern, times the drop knob once it applies."""
        factor = self.day_factor(ordinal)
        if self.drop is not None and ordinal >= self.drop[0]:
            factor *= self.drop[1]
        return factor

    def _not_there(self, ordinal: int) -> bool:
        """Before the launch, or not arrived yet."""
        return (self.launched is not None and ordinal < self.launched) or (
            self.arrived is not None and ordinal > self.arrived
        )

    def _day_active_uncached(self, ordinal: int) -> BoolArray:
        if self._not_there(ordinal):
            return np.zeros(len(self.usernames), dtype=bool)
        rng = np.random.default_rng([self.seed, ordinal, 1])
        result: BoolArray = rng.random(len(self.usernames)) < self.propensity * self._scale(
            ordinal
        )
        return result

    def _range_activity_uncached(self, start: date, end: date) -> RangeActivity:
        active = np.zeros(len(self.usernames), dtype=bool)
        for ordinal in range(start.toordinal(), end.toordinal() + 1):
            active |= self._day_active(ordinal)
        counts = np.bincount(self.pair_course[active[self.pair_user]],
                             minlength=len(self.courses)).astype(np.int64)
        return RangeActivity(active, np.flatnonzero(active).astype(np.int64), counts)

    def _course_users_uncached(self, start: date, end: date, course: int) -> IntArray:
        members = self._members[course]
        result: IntArray = members[self.range_activity(start, end).active[members]]
        return result

    def active_total(self, start: date, end: date) -> int:
        """Distinct users active in ``start..end``."""
        return len(self.range_activity(start, end).active_users)

    def user_rows(self, indexes: IntArray) -> list[dict[str, Any]]:
        """API rows of the given users."""
        return [
            {"username": self.usernames[i], "name": self.names[i],
             "engagement_index": self.engagement[i], "performance_index": self.performance[i]}
            for i in indexes.tolist()
        ]

    # -- enrollments -------------------------------------------------------------------------

    def _day_enrollments_uncached(self, ordinal: int, active: bool) -> list[int | None]:
        if self.arrived is not None and ordinal > self.arrived:
            return [None] * len(self.courses)
        if self.launched is not None and ordinal < self.launched:
            return [0] * len(self.courses)
        rng = np.random.default_rng([self.seed, ordinal, 2 if active else 3])
        rate = self.enroll_rate * (1.0 if active else 0.3) * self._scale(ordinal)
        values = rng.poisson(rate)
        missing = rng.random(len(self.courses)) < 0.01
        return [None if m else int(v) for v, m in zip(values.tolist(), missing.tolist(),
                                                       strict=True)]

    def enrollments(self, course: int, start: date, end: date, active: bool
                    ) -> dict[str, int | None]:
        """Daily (un)enrollments of one course; about 1% of days are null."""
        return {
            _iso_day(ordinal): self._day_enrollments(ordinal, active)[course]
            for ordinal in range(start.toordinal(), end.toordinal() + 1)
        }

    def enrollment_total(self, course: int, start: date, end: date, active: bool) -> int:
        """Sum of the known days of ``enrollments``."""
        days = range(start.toordinal(), end.toordinal() + 1)
        return sum(v for o in days if (v := self._day_enrollments(o, active)[course]))


def _unique(values: IntArray) -> IntArray:
    """``np.unique(values)`` (sorted, distinct), without the import of ``numpy.ma`` that
    ``np.unique`` makes on first use (~10 ms of CPU in a process that never needs it)."""
    ordered = np.sort(values)
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    result: IntArray = ordered[first]
    return result


@lru_cache(maxsize=8192)
def _iso_day(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def previous_range(start: date, end: date) -> tuple[date, date]:
    """The range of the same length that ends the day before ``start``."""
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)
