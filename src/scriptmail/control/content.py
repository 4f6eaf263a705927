"""The built-in content score of a submitted message: a few cheap signs of mail nobody asked for.

The automatic `spam` policy counts, per hosting, the messages whose score reaches `HIGH_SCORE`; a
hosting whose scripts send many of them gets blocked. Scripts of hacked sites send mail that
shouts, says nothing, pads itself with white space, carries programs or goes to long lists, so
those are the signals, each worth the points of its constant below.

Pure and total: `score_message` reads the bytes as received and never raises, whatever they are.
Messages may be 10 MB, so the MIME tree is walked by offsets into the data: only headers are
parsed (the standard library `email` package, `compat32` policy, which records defects instead of
raising), non-text bodies are never copied or decoded, and at most `TEXT_LIMIT` bytes of decoded
text are read.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from email.errors import MessageError
from email.header import decode_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value, getaddresses

HIGH_SCORE = 3.0
"""A message scoring at least this much is a high-scoring one for the `spam` policy."""

SHOUTING_SUBJECT_POINTS = 2.0
EMPTY_SUBJECT_POINTS = 1.0
EMPTY_BODY_POINTS = 1.0
MOSTLY_WHITE_SPACE_POINTS = 1.0
EXECUTABLE_ATTACHMENT_POINTS = 3.0
MANY_RECIPIENTS_POINTS = 2.0

SHOUTING_WORDS = 3
"""Upper-case words (of two letters or more) that make a subject shout."""
WHITE_SPACE_SHARE = 0.70
"""A body with a larger share of white space than this is padding, not prose."""
WHITE_SPACE_MIN_CHARS = 20
"""Bodies shorter than this are not judged on their white space."""
MANY_RECIPIENTS = 20
"""Addresses in To and Cc together from which a message goes to "many recipients"."""

EXECUTABLE_EXTENSIONS = frozenset("exe scr com pif bat cmd vbs vbe js jse wsf wsh msi msp hta cpl jar ps1 lnk reg dll".split())
"""File name extensions that Windows runs, or hands to something that runs them, when opened."""
_DOCUMENT_EXTENSIONS = frozenset(
    "pdf doc docx xls xlsx ppt pptx odt ods rtf txt csv htm html jpg jpeg png gif zip rar mp3 mp4".split()
)
"""Extensions of files opened without a second thought: "invoice.pdf.exe" shows as "invoice.pdf"
where Windows hides the last extension, so the reason names the disguise."""

TEXT_LIMIT = 1 << 20
"""Bytes of decoded body text examined per message; the rest does not change the verdict."""
HEADER_LIMIT = 64 * 1024
"""Bytes of a header section read; the rest of a longer one is skipped to its blank line, unread."""
MAX_PARTS = 200
"""MIME parts looked at per message; hostile messages may hold hundreds of thousands."""
MAX_DEPTH = 16
"""Nesting of multiparts followed; deeper ones are ignored."""

# Caps on the header values handed to the stdlib helpers, some of which are quadratic in the
# length of what they read (Message.get_param, email.utils.getaddresses).
_PARAM_HEADER_LIMIT = 4096
_ADDRESS_TEXT_LIMIT = 8192
_SUBJECT_LIMIT = 16 * 1024
_KEPT_HEADERS = {
    "subject": _SUBJECT_LIMIT,
    "to": _ADDRESS_TEXT_LIMIT,
    "cc": _ADDRESS_TEXT_LIMIT,
    "content-type": _PARAM_HEADER_LIMIT,
    "content-disposition": _PARAM_HEADER_LIMIT,
    "content-transfer-encoding": 256,
}

# What the stdlib mail helpers are known to raise on hostile input (bad base64 in encoded-words,
# unknown or non-text charsets such as "idna", nested comments in address lists...).
_STDLIB_ERRORS = (MessageError, ValueError, LookupError, TypeError, IndexError, RecursionError)

# A header section: an optional mbox "From " line, then fields and their continuation lines.
_HEADER_LINES = re.compile(rb"(?:From [^\n]*\n)?(?:[\x21-\x39\x3b-\x7e]*:[^\n]*(?:\n|\Z)(?:[ \t][^\n]*(?:\n|\Z))*)*")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WORD = re.compile(r"\w+")

# Crude HTML to text: markup white space collapses as a browser renders it, line-break tags and
# white-space entities become white space, other entities one visible character.
_HTML_WHITE_SPACE = re.compile(r"[ \t\n\r\f]+")
_HTML_INVISIBLE = re.compile(r"<(script|style)\b[^<>]*>[^<]*</\1\s*>", re.IGNORECASE)
_HTML_LINE_BREAK = re.compile(r"<(?:br|p|div)\b[^<>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^<>]*>")
_HTML_SPACE_ENTITY = re.compile(r"&(?:nbsp|ensp|emsp|thinsp|#0*(?:9|10|13|32|160)|#x0*(?:9|a|d|20|a0));?", re.IGNORECASE)
_HTML_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});", re.IGNORECASE)

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(_BASE64_ALPHABET)))


@dataclass(frozen=True, slots=True)
class ContentScore:
    """The points a message earned and, for each signal that fired, a short English reason."""

    points: float
    reasons: tuple[str, ...]


def score_message(data: bytes) -> ContentScore:
    """Scores a whole RFC 5322 message as received; never raises, whatever the bytes."""
    headers, body_start = _read_headers(data, 0, len(data))
    reading = _Reading()
    _walk(data, headers, body_start, len(data), 0, reading)

    points = 0.0
    reasons: list[str] = []

    def fire(signal_points: float, reason: str) -> None:
        nonlocal points
        points += signal_points
        reasons.append(reason)

    subject = _subject(headers)
    shouting = _shouting_words(subject)
    if shouting >= SHOUTING_WORDS:
        fire(SHOUTING_SUBJECT_POINTS, f"shouting subject ({shouting} upper-case words)")
    if not subject.strip():
        fire(EMPTY_SUBJECT_POINTS, "empty subject")

    body = reading.body_text()
    empty_body = not body.strip() and not reading.has_attachment
    if empty_body:
        fire(EMPTY_BODY_POINTS, "empty body")
    elif len(body) >= WHITE_SPACE_MIN_CHARS:
        # A body of white space alone with an attachment beside it is padding too; without one it
        # is the empty body above, and is not counted twice.
        share = 1 - sum(map(len, body.split())) / len(body)
        if share > WHITE_SPACE_SHARE:
            fire(MOSTLY_WHITE_SPACE_POINTS, f"mostly white space ({share:.0%} of the body)")

    if reading.executable is not None:
        fire(EXECUTABLE_ATTACHMENT_POINTS, f"executable attachment ({reading.executable})")

    recipients = _count_recipients(headers)
    if recipients >= MANY_RECIPIENTS:
        fire(MANY_RECIPIENTS_POINTS, f"many recipients ({recipients} in To and Cc)")

    return ContentScore(points=points, reasons=tuple(reasons))


@dataclass(slots=True)
class _Reading:
    """What the walk over the MIME tree found: body texts, attachments, the first executable."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    has_attachment: bool = False
    executable: str | None = None
    parts: int = 0
    budget: int = TEXT_LIMIT

    def body_text(self) -> str:
        """The text a reader sees: the plain parts, or the HTML ones when the plain say nothing."""
        body = "\n".join(self.plain)
        if not body.strip() and self.html:
            body = "\n".join(_html_to_text(html) for html in self.html)
        return body.replace("\r\n", "\n")


def _walk(data: bytes, headers: Message, start: int, end: int, depth: int, reading: _Reading) -> None:
    """Reads the part whose body is data[start:end], and its subparts, into `reading`."""
    reading.parts += 1
    if reading.executable is None:
        reading.executable = _executable(headers)
    content_type = headers.get_content_type()

    if content_type.startswith("multipart/"):
        if depth >= MAX_DEPTH:
            return
        spans = _split_parts(data, start, end, _boundary(headers), MAX_PARTS - reading.parts)
        if spans:
            default_type = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
            for part_start, part_end in spans:
                if reading.parts >= MAX_PARTS:
                    return
                part_headers, body_start = _read_headers(data, part_start, part_end)
                part_headers.set_default_type(default_type)
                _walk(data, part_headers, body_start, part_end, depth + 1, reading)
            return
        # No usable boundary: the stdlib parser, and mail readers, show such a body as plain text.
        content_type = "text/plain"

    if content_type in ("text/plain", "text/html") and headers.get_content_disposition() != "attachment":
        text = _body_text(data, headers, start, end, reading)
        (reading.html if content_type == "text/html" else reading.plain).append(text)
    else:
        # Attachments, message/rfc822 included, are judged on their headers only.
        reading.has_attachment = True


def _read_headers(data: bytes, start: int, end: int) -> tuple[Message, int]:
    """Parses the header section at data[start:end]; returns the headers scored and where the body starts."""
    match = _HEADER_LINES.match(data, start, min(end, start + HEADER_LIMIT))
    header_end = match.end() if match else start
    if header_end >= start + HEADER_LIMIT:
        header_end = _blank_line(data, header_end - 1, end)
    if data.startswith(b"\r\n", header_end, end):
        body_start = header_end + 2
    elif data.startswith(b"\n", header_end, end):
        body_start = header_end + 1
    else:
        body_start = header_end  # no blank line: the first line that is no header starts the body

    section = data[start : min(header_end, start + HEADER_LIMIT)].decode("utf-8", "replace")
    parsed = HeaderParser(policy=compat32).parsestr(section, headersonly=True)
    kept = Message(policy=compat32)
    for name, value in parsed.raw_items():
        cap = _KEPT_HEADERS.get(name.lower())
        if cap is not None and isinstance(value, str):
            kept[name] = _FOLD.sub("", value)[:cap]
    return kept, body_start


def _blank_line(data: bytes, start: int, end: int) -> int:
    """Where the first blank line at or after `start` begins, or `end`: the end of an over-long header section."""
    ends = [found + 1 for found in (data.find(b"\n\n", start, end), data.find(b"\n\r\n", start, end)) if found >= 0]
    return min(ends, default=end)


def _split_parts(data: bytes, start: int, end: int, boundary: bytes, room: int) -> list[tuple[int, int]]:
    """The (start, end) of each body part between the delimiter lines of `boundary` (RFC 2046 §5.1.1)."""
    if not boundary or room <= 0:
        return []
    delimiter = b"--" + boundary
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    found = data.find(delimiter, start, end)
    while found >= 0 and len(spans) < room:
        after = found + len(delimiter)
        line_end = data.find(b"\n", after, end)
        line_end = end if line_end < 0 else line_end
        closing = data.startswith(b"--", after, end)
        at_line_start = found == start or data[found - 1] == 0x0A
        if at_line_start and (closing or not data[after:line_end].strip()):
            if part_start is not None:
                # The line end before a delimiter belongs to the delimiter.
                part_end = found - 1 if found > start else found
                if part_end > start and data[part_end - 1] == 0x0D:
                    part_end -= 1
                spans.append((part_start, max(part_start, part_end)))
            if closing:
                return spans
            part_start = min(line_end + 1, end)
        found = data.find(delimiter, after, end)
    if part_start is not None and len(spans) < room:
        spans.append((part_start, end))  # no closing delimiter: the last part runs to the end
    return spans


def _body_text(data: bytes, headers: Message, start: int, end: int, reading: _Reading) -> str:
    """The decoded text of a text part, within what is left of the message's `TEXT_LIMIT`."""
    budget = reading.budget
    if budget <= 0:
        return ""
    encoding = str(headers.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        # Four characters per three bytes, plus line ends.
        decoded = _decode_base64(data[start : min(end, start + budget * 3 // 2 + 64)])
    elif encoding == "quoted-printable":
        decoded = binascii.a2b_qp(data[start : min(end, start + budget * 3)])
    else:
        decoded = data[start : min(end, start + budget)]
    decoded = decoded[:budget]
    reading.budget -= len(decoded)
    return _decode_bytes(decoded, _charset(headers))


def _decode_base64(raw: bytes) -> bytes:
    """Decodes base64 leniently: characters outside the alphabet and broken padding are dropped."""
    try:
        return binascii.a2b_base64(raw)
    except binascii.Error:
        cleaned = raw.translate(None, _NOT_BASE64)
        return binascii.a2b_base64(cleaned[: len(cleaned) // 4 * 4])


def _decode_bytes(raw: bytes, charset: str | None) -> str:
    """Decodes text in its declared charset; unknown, unusable or missing charsets read as UTF-8."""
    if charset:
        try:
            return raw.decode(charset, "replace")
        except (LookupError, ValueError, TypeError):  # unknown, or a codec that is no text encoding
            pass
    return raw.decode("utf-8", "replace")


def _decode_words(value: str) -> str:
    """Decodes the RFC 2047 encoded-words in a header value; undecodable ones stay as written."""
    try:
        chunks = decode_header(value)
    except _STDLIB_ERRORS:
        return value
    # decode_header gives str when nothing was encoded, else bytes (raw-unicode-escape for plain runs).
    return "".join(
        chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset or "raw-unicode-escape") for chunk, charset in chunks
    )


def _html_to_text(html: str) -> str:
    """Roughly what a browser shows of an HTML body, as far as white space goes."""
    text = _HTML_WHITE_SPACE.sub(" ", html)
    text = _HTML_INVISIBLE.sub("", text)
    text = _HTML_LINE_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    text = _HTML_SPACE_ENTITY.sub(" ", text)
    return _HTML_ENTITY.sub("&", text)


def _subject(headers: Message) -> str:
    """The decoded Subject, or "" when there is none."""
    raw = headers.get("subject")
    return unicodedata.normalize("NFC", _decode_words(raw)) if isinstance(raw, str) else ""


def _shouting_words(subject: str) -> int:
    """Words of two letters or more whose letters are all upper case ("ÉTÉ" counts, "2024" does not)."""
    return sum(1 for word in _WORD.findall(subject) if word.isupper() and sum(map(str.isalpha, word)) >= 2)


def _count_recipients(headers: Message) -> int:
    """Addresses in the To and Cc headers together (in their first 8 KB, plenty to reach `MANY_RECIPIENTS`)."""
    text = ", ".join(value for value in headers.get_all("to", []) + headers.get_all("cc", []) if isinstance(value, str))
    text = text[:_ADDRESS_TEXT_LIMIT]
    try:
        count = sum(1 for _, address in getaddresses([text]) if address)
    except _STDLIB_ERRORS:
        count = 0
    # A list the parser gives up on (newer Pythons reject a malformed list whole) must not hide its
    # recipients: count the @ signs instead.
    return count or text.count("@")


def _executable(headers: Message) -> str | None:
    """Describes the part's file name if it is an executable one (".exe", ".exe disguised as .pdf")."""
    for name in _file_names(headers):
        found = executable_name(name)
        if found is not None:
            return found
    return None


def executable_name(name: str) -> str | None:
    """Whether a file name is an executable one, as the score sees it (the held-mail viewer flags
    the same attachments): ".exe", ".exe disguised as .pdf", or None."""
    # Windows drops trailing dots and spaces, so "run.exe. " opens as "run.exe".
    stem, dot, extension = name.strip().rstrip(". \x00").lower().rpartition(".")
    if dot and extension in EXECUTABLE_EXTENSIONS:
        disguise = stem.rpartition(".")[2] if "." in stem else ""
        if disguise in _DOCUMENT_EXTENSIONS:
            return f".{extension} disguised as .{disguise}"
        return f".{extension}"
    return None


def _file_names(headers: Message) -> list[str]:
    """The decoded file names a part gives itself: Content-Disposition filename and Content-Type name."""
    names = []
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        try:
            value = headers.get_param(param, header=header)
            if value is not None:
                names.append(_decode_words(collapse_rfc2231_value(value)))
        except _STDLIB_ERRORS:
            continue
    return names


def _boundary(headers: Message) -> bytes:
    """The multipart boundary as bytes, or b"" when there is none usable."""
    try:
        boundary = headers.get_boundary() or ""
    except _STDLIB_ERRORS:
        return b""
    return boundary.encode("utf-8", "replace") if isinstance(boundary, str) else b""


def _charset(headers: Message) -> str | None:
    """The declared charset of a text part, if any."""
    try:
        charset = headers.get_content_charset()
    except _STDLIB_ERRORS:
        return None
    return charset if isinstance(charset, str) else None
