"""Held mail as its owner sees it before a purge: one entry per message with held recipients,
its main headers and, when the operator allows it, the start of its text.

Only a bounded prefix of each stored message is read (a page never loads megabytes per
message), and whatever the bytes are, reading them gives what could be parsed, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from sqlalchemy import Connection, func, select

from scriptmail.model import RecipientStatus
from scriptmail.store.schema import bodies, messages, recipients

PAGE = 50  # messages per page
HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "X-PHP-Originating-Script")
READ_BYTES = 128 * 1024  # of each stored message when its text is shown: the header and the first text part, normally
HEADER_BYTES = 32 * 1024  # of each stored message when only the header is shown
TEXT_BYTES = 20 * 1024  # of the decoded text shown
HEADER_CHARS = 2000  # of each header value shown (a To: with thousands of addresses is cut)
_HELD = RecipientStatus.HELD.value
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Content:
    """What could be read from a stored message. `text` is None when there is none to show:
    `text_state` says why (not-read, no-text, unreadable); `truncated` when it is shown in part."""

    headers: list[tuple[str, str]]
    text: str | None
    text_state: str  # shown, not-read, no-text, unreadable
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class HeldMessage:
    queue_id: int
    received_at: float
    sender: str  # the envelope sender
    size: int
    held: int  # recipients of this message held
    stored: bool  # False once the body is gone (it should not be, while a recipient is held)
    content: Content


def totals(connection: Connection, hosting_id: int) -> tuple[int, int]:
    """How many recipients of the hosting are held, and in how many messages."""
    row = connection.execute(
        select(func.count(), func.count(recipients.c.message_id.distinct())).where(
            recipients.c.hosting_id == hosting_id, recipients.c.status == _HELD
        )
    ).one()
    return int(row[0]), int(row[1])


def held_messages(
    connection: Connection, hosting_id: int, before: int | None = None, limit: int = PAGE, with_text: bool = True
) -> list[HeldMessage]:
    """Messages of the hosting with held recipients, newest first, `limit` of them older than
    message `before` (keyset pagination); each with its headers and, if asked, its text."""
    query = (
        select(recipients.c.message_id, func.count().label("held"))
        .where(recipients.c.hosting_id == hosting_id, recipients.c.status == _HELD)
        .group_by(recipients.c.message_id)
        .order_by(recipients.c.message_id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(recipients.c.message_id < before)
    counts = dict(connection.execute(query).all())
    if not counts:
        return []
    prefix = READ_BYTES if with_text else HEADER_BYTES
    rows = connection.execute(
        select(
            messages.c.id,
            messages.c.received_at,
            messages.c.envelope_from,
            messages.c.size,
            func.substr(bodies.c.data, 1, prefix).label("data"),
        )
        .select_from(messages.outerjoin(bodies, bodies.c.message_id == messages.c.id))
        .where(messages.c.id.in_(list(counts)), messages.c.hosting_id == hosting_id)
        .order_by(messages.c.id.desc())
    )
    found = []
    for row in rows:
        data = bytes(row.data) if row.data is not None else None
        content = (
            read(data, complete=row.size <= prefix, with_text=with_text) if data is not None else Content([], None, "not-read")
        )
        found.append(HeldMessage(row.id, row.received_at, row.envelope_from, row.size, counts[row.id], data is not None, content))
    return found


def read(data: bytes, complete: bool = True, with_text: bool = True) -> Content:
    """The main headers of a message and its first plain-text part, decoded and cut to TEXT_BYTES.

    `complete` is False when `data` is only the start of the message: a text part that reaches
    the end of it is then marked truncated.
    """
    try:
        message = BytesParser(policy=policy.default).parsebytes(data, headersonly=not with_text)
    except Exception:  # the parser is lenient; this is the last line of defence
        return Content([], None, "unreadable")
    headers = _headers(message)
    if not with_text:
        return Content(headers, None, "not-read")
    try:
        part = _first_plain(message)
    except Exception:  # e.g. parts nested deeper than the recursion limit
        return Content(headers, None, "unreadable")
    if part is None:
        return Content(headers, None, "no-text")
    text = _clean(_decode(part))
    encoded = text.encode("utf-8")
    truncated = len(encoded) > TEXT_BYTES
    if truncated:
        text = encoded[:TEXT_BYTES].decode("utf-8", "ignore")
    elif not complete:
        truncated = _is_last_part(message, part)
    return Content(headers, text, "shown", truncated)


def _headers(message: Message) -> list[tuple[str, str]]:
    """The wanted headers that are present, decoded (RFC 2047) where possible, raw otherwise."""
    raw: dict[str, list[str]] = {}
    try:
        for name, value in message.raw_items():
            raw.setdefault(name.lower(), []).append(str(value))
    except Exception:
        return []
    shown = []
    for name in HEADERS:
        for value in raw.get(name.lower(), [])[:5]:
            shown.append((name, _one_line(_decoded_header(name, value[: HEADER_CHARS * 2]))[:HEADER_CHARS]))
    return shown


def _decoded_header(name: str, value: str) -> str:
    try:
        return str(policy.default.header_factory(name, value))
    except Exception:  # a header the structured parser gives up on is shown as it came
        return value


def _one_line(value: str) -> str:
    return " ".join(_CONTROL.sub("\ufffd", value.replace("\r", " ").replace("\n", " ")).split())


def _first_plain(message: Message) -> Message | None:
    if isinstance(message, EmailMessage):
        body = message.get_body(preferencelist=("plain",))
        if body is not None:
            return body
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            return part
    return None


def _decode(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(content, str):
            return content
    except Exception:  # an unknown charset, a broken encoding: decode the bytes ourselves
        pass
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, ValueError):
        return payload.decode("utf-8", "replace")


def _clean(text: str) -> str:
    """Line ends as \\n, and no control character but tab and newline."""
    return _CONTROL.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))


def _is_last_part(message: Message, part: Message) -> bool:
    """Whether `part` is the last leaf of the message: the one a cut-off read would have cut."""
    try:
        leaves = [leaf for leaf in message.walk() if not leaf.is_multipart()]
    except Exception:
        return True
    return not leaves or leaves[-1] is part
