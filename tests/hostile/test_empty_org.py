"""An org with nothing in it (no courses, no users) and a new org without a previous period:
``generate`` and ``send`` succeed with a short, sensible PDF (no division by zero, no "inf%")."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path

import httpx
from pypdf import PdfReader

from reports.source.mock import MockKnobs
from tests._apiserver import RunningApi
from tests._e2e import API_KEY
from tests.hostile import ARCHIVED, ORG, cli, generate, hostile_config, outbox_files, send

Start = Callable[..., RunningApi]
NONSENSE = re.compile(r"\b(?:[+-]?inf|nan|none|null)\b|\u221e|division", re.IGNORECASE)
"""What a division by zero or a comparison against nothing would print."""


def pdf_text(path: Path) -> tuple[int, str]:
    reader = PdfReader(BytesIO(path.read_bytes()))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    return len(reader.pages), " ".join(text.split())


def text_body(path: Path) -> str:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


def assert_sensible(text: str) -> None:
    assert NONSENSE.findall(text) == [], text


def test_the_demo_api_serves_an_empty_org_as_empty_pages(api_server: Start) -> None:
    api = api_server(MockKnobs(courses=0, users=0, token=API_KEY))
    base = f"{api.url}/api/ai-analytics/audience/orgs/{ORG}/active-users"
    params = {"start_date": "2026-11-16", "end_date": "2026-11-22"}
    headers = {"Authorization": f"Api-Token {API_KEY}"}
    users = httpx.get(f"{base}/users", params=params, headers=headers).json()
    per_course = httpx.get(f"{base}/per-course", params=params, headers=headers).json()
    assert users["data"] == []
    assert users["pagination"]["totalItems"] == 0
    assert users["pagination"]["totalPages"] in (0, 1)
    assert per_course["data"] == [] and per_course["total"] == 0


def test_an_empty_org_gets_a_short_sensible_report_and_mail(
    tmp_path: Path, api_server: Start
) -> None:
    api = api_server(MockKnobs(courses=0, users=0, token=API_KEY))
    config = hostile_config(tmp_path, api_url=api.url)
    made = generate(config)
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    pages, text = pdf_text(tmp_path / ARCHIVED)
    assert 1 <= pages <= 2, text
    assert "No users were active this week" in text
    assert "No course had active users this week" in text
    assert "ACTIVE USERS 0" in text
    assert_sensible(text)

    sent = send(config)
    assert sent.returncode == 0, sent.stderr
    assert "sent to dean@acme.example, programs@acme.example" in sent.stdout
    emls = outbox_files(tmp_path)
    assert len(emls) == 2
    body = text_body(emls[0])
    assert re.search(r"Active users\W+0\b", body), body
    assert "no previous data" in body
    assert_sensible(body)
    runs = json.loads(cli(config, "runs", "--json").stdout)
    assert {d["state"] for d in runs[0]["deliveries"]} == {"sent"}


def test_a_new_org_without_a_previous_period_says_no_previous_data(
    tmp_path: Path, api_server: Start
) -> None:
    # The org started on the first day of the reported week: the week before is empty.
    api = api_server(MockKnobs(courses=5, users=40, token=API_KEY, launched=date(2026, 11, 16)))
    config = hostile_config(tmp_path, api_url=api.url)
    sent = send(config)
    assert sent.returncode == 0, sent.stderr
    pages, text = pdf_text(tmp_path / ARCHIVED)
    assert pages <= 3, text
    active = re.search(r"ACTIVE USERS (\d+)\s*no previous data", text)
    assert active is not None and int(active.group(1)) > 0, text
    assert "there is no data for the week before to compare with" in text
    assert_sensible(text)
    body = text_body(outbox_files(tmp_path)[0])
    assert "no previous data" in body
    assert_sensible(body)
