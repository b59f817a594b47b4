"""Address and header-text rules, shared by the config (checked at load) and delivery (checked
again on every message).

A header value with a CR or LF (also hidden in an RFC 2047 encoded word such as
``=?utf-8?q?a=0Ab?=``) is refused, and addresses are parsed strictly (one plain
``local@domain``, optionally with a display name). Ambiguous forms that other parsers read
differently (CVE-2023-27043: ``alice@example.org(<bob@example.org>``, ``"a@b"@c``, two addresses
in one) are refused with a MailAddressError naming the address.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.headerregistry import Address

from reports.errors import MailAddressError

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_ADDR = rf"(?P<local>{_LOCAL})@(?P<domain>{_DOMAIN})"
_BARE_RE = re.compile(rf"^{_ADDR}$")
# A display name: plain words (no specials but '.'), or one quoted string without '@', '<', '>'.
_NAMED_RE = re.compile(
    rf'^(?P<name>[^<>@",;:\\()\[\]]*?|"(?P<quoted>(?:[^"\\<>@]|\\["\\])*)")\s*<{_ADDR}>$'
)
# A display name with a comma but no quotes ("Müller, Jürgen <j@example.org>"): refused, with
# the quoted form suggested.
_COMMA_NAME_RE = re.compile(rf'^(?P<name>[^<>@"\\]*,[^<>@"\\]*?)\s*<{_ADDR}>$')
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def show(value: str) -> str:
    """A value safe to put in an error message: line breaks and other control or invisible
    characters escaped (``\\n``, ``\\u2028``), everything else as written (``Müller``)."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value
    )


def _decoded(value: str) -> str:
    """``value`` with any RFC 2047 encoded words decoded (what a mail client would show)."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeDecodeError):
        return value + "\n"  # undecodable: treat as hostile


def check_header_text(value: str, *, what: str, recipient: str = "") -> str:
    """Refuse a header value with a line break or control character, also encoded ones.

    The error names ``recipient`` (the message it was meant for) and shows the value with its
    line breaks escaped; when the value is the recipient address itself it is shown once.
    """
    label = what if value == recipient else f"{what} {show(value)!r}"
    if _CONTROL_RE.search(value):
        raise MailAddressError(f"the {label} contains a line break or control character",
                               recipient=show(recipient))
    if _CONTROL_RE.search(_decoded(value)):
        raise MailAddressError(f"the {label} hides a line break in an encoded word",
                               recipient=show(recipient))
    return value


def parse_address(text: str, *, what: str = "address", recipient: str | None = None) -> Address:
    """One strictly parsed address, ``local@domain`` or ``Name <local@domain>``.

    Errors name ``recipient`` (the message the address is for), by default the address itself.
    """
    if recipient is None:
        recipient = text
    check_header_text(text, what=what, recipient=recipient)
    if recipient != text:
        what = f"{what} {show(text)!r}"
    shown = show(recipient)
    if "=?" in text:
        raise MailAddressError(
            f"the {what} uses an RFC 2047 encoded word; write the name in plain text",
            recipient=shown,
        )
    value = text.strip()
    name = ""
    match = _BARE_RE.match(value)
    if match is None:
        match = _NAMED_RE.match(value)
        if match is None:
            comma = _COMMA_NAME_RE.match(value)
            if comma is not None:
                quoted_form = (f'"{" ".join(comma.group("name").split())}" '
                               f'<{comma.group("local")}@{comma.group("domain")}>')
                raise MailAddressError(
                    f"the {what} has a comma in its display name, which mail programs read as "
                    f"two addresses; put the name in double quotes: {show(quoted_form)} (in "
                    f"TOML: '{show(quoted_form)}')", recipient=shown,
                )
            raise MailAddressError(
                f"the {what} is not one plain ASCII address like name@example.org (ambiguous "
                "forms, comments, quoted local parts and lists are refused)",
                recipient=shown,
            )
        quoted = match.group("quoted")
        if quoted is not None:
            name = re.sub(r"\\(.)", r"\1", quoted)
        else:
            name = " ".join(match.group("name").split())
    local, domain = match.group("local"), match.group("domain")
    if len(local) > 64 or len(local) + len(domain) + 1 > 254:
        raise MailAddressError(f"the {what} is longer than SMTP allows", recipient=shown)
    try:
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, TypeError) as exc:
        raise MailAddressError(f"the {what} is refused: {exc}", recipient=shown) from exc
