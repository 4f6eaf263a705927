"""The test message itself, and the DKIM domains that signed it (read from its own header)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

SUBJECT = "scriptmail test message for {hosting}"
BODY = """\
This is a test message sent from the scriptmail customer area of {hosting},
through the same path as the mail of its scripts (quota, signing, blocks).

Requested by: {by}
Sent at: {at}
"""
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_TAG_D = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)")


def compose(hosting: str, sender: str, to: str, by: str, now: float, hostname: str) -> bytes:
    """The message, CRLF line ends, as a script would hand it to intake."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = SUBJECT.format(hosting=hosting)
    message["Date"] = format_datetime(datetime.fromtimestamp(now, timezone.utc))
    message["Message-ID"] = make_msgid("test", domain=hostname)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a test
    at = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
    message.set_content(BODY.format(hosting=hosting, by=by, at=at))
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def signature_domains(data: bytes) -> list[str]:
    """The d= of every DKIM-Signature field of the message, in order (lower case)."""
    end = _HEADER_END.search(data)
    head = (data[: end.start()] if end else data).decode("ascii", "replace")
    fields = re.split(r"\r?\n(?![ \t])", head)
    found = []
    for field in fields:
        name, _, value = field.partition(":")
        if name.strip().lower() == "dkim-signature":
            tag = _TAG_D.search(re.sub(r"\s+", " ", value))
            if tag:
                found.append(tag.group(1).lower().rstrip("."))
    return found
