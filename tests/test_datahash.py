"""The data hash: the same value as the ``asdict`` form it had, and only what the data is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

import pytest

from reports.report.datahash import data_hash
from reports.report.model import ReportData
from tests._sample import empty, realistic


def _as_it_was(data: ReportData) -> str:
    """The hash as first defined: archives and ledgers hold values made this way."""
    payload = asdict(data)
    payload.pop("requests", None)
    payload.pop("extra", None)
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@pytest.mark.parametrize("data", [
    pytest.param(realistic(), id="weekly"),
    pytest.param(realistic(seed=3, kind="monthly"), id="monthly"),
    pytest.param(empty(), id="empty"),
    pytest.param(empty(with_previous=True), id="empty-with-previous"),
])
def test_the_hash_is_the_one_asdict_gave(data: ReportData) -> None:
    assert data_hash(data) == _as_it_was(data)


def test_how_the_data_was_fetched_is_not_part_of_it() -> None:
    data = realistic()
    fetched = replace(data, requests=757, extra={"note": "retried twice"})
    assert data_hash(fetched) == data_hash(data)


def test_any_change_to_the_data_changes_the_hash() -> None:
    data = realistic()
    first = data.users[0]
    renamed = replace(data, users=(replace(first, name=first.name + "x"), *data.users[1:]))
    assert data_hash(renamed) != data_hash(data)
    assert data_hash(replace(data, total_active=data.total_active + 1)) != data_hash(data)
