"""Helpers for the learner-privacy tests: every place a learner's identity could show up, read
back from real outputs (the PDF's text, its figures' alt text and attachments, .eml files)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pypdf

from tests._apiserver import RunningApi
from tests._e2e import API_KEY


def learners(api: RunningApi, org: str, start: str, end: str) -> list[dict[str, Any]]:
    """Every active learner of ``start..end`` as the demo API lists them (over HTTP)."""
    url = f"{api.url}/api/ai-analytics/audience/orgs/{org}/active-users/users"
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = httpx.get(url, params={"start_date": start, "end_date": end, "page": page,
                                        "length": 100},
                           headers={"Authorization": f"Api-Token {API_KEY}"})
        answer.raise_for_status()
        body = answer.json()
        found += body["data"]
        if len(found) >= body["pagination"]["totalItems"] or not body["data"]:
            return found
        page += 1


def identities(rows: list[dict[str, Any]]) -> set[str]:
    """Usernames and full names (the strings no default output may hold)."""
    return {r["username"] for r in rows} | {r["name"] for r in rows if r["name"]}


def _alt_texts(reader: pypdf.PdfReader) -> list[str]:
    """Every /Alt string of the PDF's structure tree (the figures' alt text)."""
    found: list[str] = []
    root = reader.trailer["/Root"].get_object()
    stack: list[Any] = [root.get("/StructTreeRoot")]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, pypdf.generic.IndirectObject):
            if node.idnum in seen:
                continue
            seen.add(node.idnum)
            node = node.get_object()
        if isinstance(node, pypdf.generic.ArrayObject):
            stack.extend(node)
        elif isinstance(node, pypdf.generic.DictionaryObject):
            if "/Alt" in node:
                found.append(str(node["/Alt"]))
            if "/K" in node:
                stack.append(node["/K"])
    return found


@dataclass
class PdfContent:
    """What a reader of a PDF can get out of it."""

    text: str
    alt: list[str]
    attachments: dict[str, str]

    def everything(self) -> str:
        return "\n".join([self.text, *self.alt, *self.attachments.values()])


def read_pdf(data: bytes) -> PdfContent:
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    attachments = {
        name: b"".join(blobs).decode("utf-8-sig") for name, blobs in reader.attachments.items()
    }
    return PdfContent(text, _alt_texts(reader), attachments)


@dataclass
class Mail:
    """One .eml parsed with the stdlib email package."""

    message: EmailMessage
    text: str = ""
    html: str = ""
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def pdf(self) -> bytes:
        [pdf] = [data for name, data in self.files.items() if name.endswith(".pdf")]
        return pdf

    def everything(self) -> str:
        parts = [str(self.message["Subject"]), self.text, self.html]
        parts += [read_pdf(data).everything() if name.endswith(".pdf")
                  else data.decode("utf-8-sig") for name, data in self.files.items()]
        return "\n".join(parts)


def read_eml(path: Path) -> Mail:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    mail = Mail(message)
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if name:
            mail.files[name] = payload
        elif part.get_content_type() == "text/plain":
            mail.text += payload.decode(part.get_content_charset() or "utf-8")
        elif part.get_content_type() == "text/html":
            mail.html += payload.decode(part.get_content_charset() or "utf-8")
    return mail


def outbox(folder: Path) -> dict[str, Mail]:
    """The outbox's messages by recipient (the file names end with the recipient)."""
    mails = {}
    for path in sorted((folder / "outbox").glob("*.eml")):
        mail = read_eml(path)
        mails[str(mail.message["To"])] = mail
    return mails


def leaked(haystack: str, names: set[str]) -> list[str]:
    """The identities found in ``haystack`` (case-sensitive, as printed)."""
    return sorted(name for name in names if name in haystack)
