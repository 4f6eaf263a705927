"""A stored message as its recipient's mail program would show it: every header decoded, the
text and HTML bodies, the attachments and the inline (`cid:`) images.

Pure and total: `read` takes the bytes as stored and never raises. The walk is iterative and
bounded (depth, parts, header count and length), so a hostile message (thousands of nested
multiparts, megabyte headers, charsets nobody knows) gives what could be read and a list of what
could not, never an error or a stall.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value

from scriptmail.control.content import executable_name

MAX_DEPTH = 20  # nested multiparts followed; deeper parts are listed as not read
MAX_PARTS = 500
MAX_HEADERS = 500  # header fields shown per message
HEADER_CHARS = 8000  # of one header value shown
BODY_CHARS = 2 * 1024 * 1024  # of a text or HTML body shown
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What browsers do (WHATWG Encoding): a part labelled ISO-8859-1 or ASCII is read as Windows-1252,
# which is what the writer meant nearly always (curly quotes, the euro sign).
_ALIASES = {"iso-8859-1": "windows-1252", "latin1": "windows-1252", "latin-1": "windows-1252", "us-ascii": "windows-1252",
            "ascii": "windows-1252", "iso8859-1": "windows-1252", "utf8": "utf-8"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Part:
    """One leaf of the MIME tree that is not the text or HTML body shown: `index` names it in
    links (its position in the walk)."""

    index: int
    content_type: str
    filename: str
    size: int  # decoded bytes
    content_id: str  # without the angle brackets; "" when none
    inline: bool  # referenced by the HTML through cid:
    executable: str | None  # as the content score describes it (".exe disguised as .pdf")


@dataclass(frozen=True, slots=True)
class View:
    headers: list[tuple[str, str]]
    subject: str
    text: str | None
    html: str | None
    attachments: list[Part]
    images: dict[str, int] = field(default_factory=dict)  # content id -> part index
    problems: list[str] = field(default_factory=list)  # what could not be read, plainly


def read(data: bytes) -> View:
    """The whole message as a viewer shows it."""
    problems: list[str] = []
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(data)
    except Exception:  # noqa: BLE001 - the parser is lenient; this is the last line of defence
        return View([], "", None, None, [], problems=["the message could not be parsed"])
    headers = _headers(message, problems)
    subject = next((value for name, value in headers if name.lower() == "subject"), "")
    text = html = None
    attachments: list[Part] = []
    images: dict[str, int] = {}
    for index, part, _depth in _leaves(message, problems):
        kind = part.get_content_type()
        name = _filename(part)
        disposition = (part.get("content-disposition") or "").split(";")[0].strip().lower()
        is_attachment = disposition == "attachment" or (bool(name) and not kind.startswith("text/"))
        if kind == "text/plain" and text is None and not is_attachment:
            text = _text(part, problems)
            continue
        if kind == "text/html" and html is None and not is_attachment:
            html = _text(part, problems)
            continue
        payload = _payload(part)
        cid = _content_id(part)
        if cid and kind.startswith("image/"):
            images.setdefault(cid, index)
        attachments.append(Part(index, kind, name, len(payload), cid, False, executable_name(name) if name else None))
    if html is not None and images:
        used = {cid for cid in images if f"cid:{cid}".lower() in html.lower()}
        attachments = [Part(**{**_fields(a), "inline": a.content_id in used}) for a in attachments]
    return View(headers, subject, text, html, attachments, images, problems)


def part(data: bytes, index: int) -> tuple[str, str, bytes] | None:
    """One leaf by its index: (content type, file name, decoded bytes), None if there is none."""
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(data)
    except Exception:  # noqa: BLE001
        return None
    for found, leaf, _ in _leaves(message, []):
        if found == index:
            return leaf.get_content_type(), _filename(leaf), _payload(leaf)
    return None


def _fields(part: Part) -> dict:
    return {name: getattr(part, name) for name in Part.__slots__}


def _leaves(message: Message, problems: list[str]):
    """(index, part, depth) of every leaf, depth first, without recursion."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    index = 0
    while stack:
        node, depth = stack.pop()
        if index >= MAX_PARTS:
            problems.append(f"more than {MAX_PARTS} parts: the rest are not shown")
            return
        if node.is_multipart():
            children = node.get_payload()
            if depth >= MAX_DEPTH:
                problems.append(f"parts nested deeper than {MAX_DEPTH} levels are not shown")
                continue
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))
            continue
        yield index, node, depth
        index += 1


def _headers(message: Message, problems: list[str]) -> list[tuple[str, str]]:
    items = message.items()
    if len(items) > MAX_HEADERS:
        problems.append(f"{len(items)} header fields: only the first {MAX_HEADERS} are shown")
    return [(_clean(str(name))[:200], header_value(str(value))[:HEADER_CHARS]) for name, value in items[:MAX_HEADERS]]


def header_value(raw: str) -> str:
    """A header value decoded (RFC 2047 words in any charset we know), on one line."""
    raw = raw[: HEADER_CHARS * 2]
    try:
        pieces = decode_header(raw)
    except Exception:  # noqa: BLE001 - a malformed encoded word: shown as it came
        pieces = [(raw, None)]
    out = []
    for piece, charset in pieces:
        out.append(decode_bytes(piece, charset) if isinstance(piece, bytes) else piece)
    joined = "".join(out)
    return " ".join(_clean(joined.replace("\r", " ").replace("\n", " ")).split())


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; undeclared: UTF-8 if it is, else Windows-1252; unknown
    charsets are read as UTF-8 with replacement characters."""
    if charset is None or charset.lower() in ("unknown-8bit", "x-unknown"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("windows-1252", "replace")
    name = _ALIASES.get(charset.strip().lower(), charset.strip().lower())
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):
        return data.decode("utf-8", "replace")
    try:
        return data.decode(name, "replace")
    except Exception:  # noqa: BLE001 - a codec that breaks on its own input
        return data.decode("utf-8", "replace")


def _text(part: Message, problems: list[str]) -> str:
    charset = None
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        pass
    if charset:
        try:
            codecs.lookup(_ALIASES.get(charset, charset))
        except (LookupError, ValueError):
            problems.append(f"unknown charset {charset[:40]!r}: read as UTF-8")
    text = decode_bytes(_payload(part), charset)
    if len(text) > BODY_CHARS:
        problems.append(f"a body longer than {BODY_CHARS} characters is cut")
        text = text[:BODY_CHARS]
    return _clean(text.replace("\r\n", "\n").replace("\r", "\n"))


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)  # base64 and quoted-printable, leniently
    except Exception:  # noqa: BLE001
        return b""
    return payload if isinstance(payload, bytes) else b""


def _filename(part: Message) -> str:
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        try:
            value = part.get_param(param, header=header)
        except Exception:  # noqa: BLE001
            continue
        if value is not None:
            try:
                return header_value(collapse_rfc2231_value(value))[:255]
            except Exception:  # noqa: BLE001
                continue
    return ""


def _content_id(part: Message) -> str:
    value = str(part.get("content-id") or "").strip()
    return value[1:-1].strip() if value.startswith("<") and value.endswith(">") else value


def _clean(text: str) -> str:
    return _CONTROL.sub("\ufffd", text)
