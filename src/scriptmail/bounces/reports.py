"""Reading what comes back to the VERP addresses: delivery status notifications (RFC 3464), feedback
reports (RFC 5965), the common plain-text bounces (qmail, Exim, Postfix, Microsoft), and out-of-office
replies. Pure: bytes in, a Report out, and never an exception, whatever the bytes.

Only the first MiB is read, and parts, recipient groups and text are capped, so a hostile or broken
report costs bounded time. Everything returned is clean text: valid Unicode, no control characters.
"""

from __future__ import annotations

import binascii
import html
import quopri
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header
from email.message import Message
from email.policy import compat32

MAX_BYTES = 1 << 20
MAX_PARTS = 100
MAX_DEPTH = 10
MAX_GROUPS = 100
MAX_TEXT = 100_000  # characters of human-readable text searched for a plain bounce
MAX_FIELD_TEXT = 1 << 20
MAX_FIELD_CHARS = 4000
MAX_DIAGNOSTIC = 1000
ACTIONS = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})


@dataclass(frozen=True, slots=True)
class Failure:
    """What a report says about one recipient."""

    recipient: str  # final (else original) recipient address, "" if the report gives none
    status: str  # RFC 3463 code like "5.1.1", "" if none
    action: str  # RFC 3464 action; "failed" for plain-text bounces
    diagnostic: str  # Diagnostic-Code text without its type, or the plain-text reason; at most 1000 chars
    remote_mta: str  # Remote-MTA without its "dns;" type, or ""
    code: int | None  # the SMTP reply code found in the diagnostic, else None


@dataclass(frozen=True, slots=True)
class Report:
    """One message received on the bounce domain, classified and read."""

    kind: str  # "dsn", "arf", "plain", "auto-reply" or "unparsed"
    failures: tuple[Failure, ...] = ()
    feedback_type: str = ""  # arf: abuse, fraud, virus, other, not-spam...
    original_recipient: str = ""  # arf: Original-Rcpt-To
    reason: str = ""  # unparsed: why, in short English

    @property
    def is_hard_bounce(self) -> bool:
        """True if a recipient failed permanently (a 5.x.x status, or a 5xx reply when there is no status)."""
        return any(_is_permanent(failure) for failure in self.failures)


def parse_report(data: bytes) -> Report:
    """Classify and read one report; never raises."""
    try:
        return _read(bytes(data[:MAX_BYTES]))
    except Exception:  # the last guard: one unreadable report must not stop the bounce listener
        return Report("unparsed", reason="the message could not be read")


def _is_permanent(failure: Failure) -> bool:
    if failure.action != "failed":
        return False
    if failure.status:
        return failure.status.startswith("5.")
    return failure.code is not None and 500 <= failure.code < 600


# --- classification ---------------------------------------------------------------------------------


def _read(data: bytes) -> Report:
    if not data.strip():
        return Report("unparsed", reason="empty message")
    try:
        root = message_from_bytes(data, policy=compat32)
    except Exception:  # the email package gives up on some inputs (deep nesting): so do we
        return Report("unparsed", reason="not a readable MIME message")
    parts = _walk(root)
    report_type = _report_type(root)

    arf = _read_arf(parts, report_type)
    if arf is not None:
        return arf

    failures = _read_dsn(parts)
    if failures:
        return Report("dsn", failures)

    text = _human_text(parts)
    subject = _header(root, "subject")
    strong = bool(_DAEMON_SENDER.search(_header(root, "from")) or _BOUNCE_TEXT.search(text))
    auto = _is_auto_reply(root, subject)
    if strong or (not auto and _BOUNCE_SUBJECT.search(subject)):
        failures = _plain_failures(text)
        if failures:
            return Report("plain", failures)
        if not auto:
            return Report("unparsed", reason="bounce text without a status code or SMTP reply code")
    if auto:
        return Report("auto-reply")
    if report_type == "delivery-status":
        return Report("unparsed", reason="delivery report without recipient fields")
    return Report("unparsed", reason="no delivery status, feedback report or bounce text found")


def _read_arf(parts: list[Message], report_type: str) -> Report | None:
    candidates = [part for part in parts if _content_type(part) == "message/feedback-report"]
    if report_type == "feedback-report":
        candidates += [part for part in parts if _content_type(part) == "text/plain"]
    if not candidates:
        return None
    for part in candidates:
        fields: dict[str, str] = {}
        for block in _field_blocks(_part_text(part)):
            for name, value in block.items():
                fields.setdefault(name, value)
        if "feedback-type" in fields:
            words = _clean(fields["feedback-type"], 64).lower().split()
            return Report(
                "arf",
                feedback_type=words[0] if words else "",
                original_recipient=_address(fields.get("original-rcpt-to", "")),
            )
    return Report("unparsed", reason="feedback report without a Feedback-Type field")


def _read_dsn(parts: list[Message]) -> tuple[Failure, ...]:
    """Recipient groups of the delivery-status part, else of a text part that carries the same fields
    (some MTAs label it text/plain, a missing boundary leaves it inside the whole body)."""
    for part in parts:
        if _content_type(part) in ("message/delivery-status", "message/global-delivery-status"):
            failures = _dsn_failures(_field_blocks(_part_text(part)))
            if failures:
                return failures
    for part in parts:
        if _content_type(part) in ("text/plain", "text/delivery-status") or _is_unsplit_multipart(part):
            blocks = _field_blocks(_part_text(part))
            if any(_is_recipient_group(block, strict=True) for block in blocks):
                return _dsn_failures(blocks)
    return ()


def _is_auto_reply(root: Message, subject: str) -> bool:
    if re.match(r"\s*auto-replied\b", _header(root, "auto-submitted"), re.I):
        return True
    if any(_header(root, name) for name in ("x-autoreply", "x-autorespond", "x-autoresponder")):
        return True
    if _header(root, "precedence").lower().strip() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.search(subject))


_DAEMON_SENDER = re.compile(r"mailer-daemon|mail-daemon|postmaster@|mail delivery (?:sub)?system", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|not delivered|failure notice|delivery (?:status notification|failure|failed|has failed|problem|delayed)"
    r"|mail delivery failed|returned mail|returned to sender|non-?delivery|could not be delivered|delayed mail",
    re.I,
)
_BOUNCE_TEXT = re.compile(
    r"qmail-send program|created automatically by mail delivery software|this is the mail system at host"
    r"|delivery has failed to these recipients|remote server returned|could not be delivered|wasn't able to deliver"
    r"|following address\(es\) failed|permanent fatal errors|delivery to the following recipients? failed"
    r"|(?<![\w.])[45][0-5]\d[ -][45]\.\d{1,3}\.\d{1,3}(?![\w])",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?respon|(?:^|\s)auto:|abwesenheit|automatische antwort"
    r"|réponse automatique|absence du bureau|respuesta automática|fuera de la oficina|risposta automatica|on vacation"
    r"|vacation reply|away from (?:the )?office",
    re.I,
)


# --- delivery status fields (RFC 3464) ---------------------------------------------------------------

_FIELD = re.compile(r"([!-9;-~]+)[ \t]*:[ \t]*(.*)")
_TYPED = re.compile(r"\s*[A-Za-z][A-Za-z0-9._+-]*\s*;")
_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\w|\.\d)")
_REPLY = re.compile(r"(?<![\w.])([245][0-5]\d)(?!\w|\.\d)")


def _field_blocks(text: str) -> list[dict[str, str]]:
    """Blank-line-separated blocks of "Name: value" fields; names lower-cased, folded values unfolded,
    the first of repeated fields kept, lines that are not fields skipped."""
    blocks: list[dict[str, str]] = []
    current: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in _lines(text[:MAX_FIELD_TEXT]):
        if not line.strip():
            if current:
                blocks.append({name: " ".join(pieces) for name, pieces in current.items()})
                current, last = {}, None
                if len(blocks) > MAX_GROUPS:
                    return blocks
            continue
        if line[0] in " \t":
            if last is not None and sum(map(len, last)) < MAX_FIELD_CHARS:
                last.append(line.strip())
            continue
        match = _FIELD.match(line)
        if match is None:
            last = None
            continue
        name = match.group(1).lower()
        if name in current or len(current) >= 100:
            last = None
            continue
        last = current[name] = [match.group(2)[:MAX_FIELD_CHARS]]
    if current:
        blocks.append({name: " ".join(pieces) for name, pieces in current.items()})
    return blocks


def _is_recipient_group(block: dict[str, str], strict: bool = False) -> bool:
    names_recipient = "final-recipient" in block or "original-recipient" in block
    names_outcome = "action" in block or "status" in block
    return names_recipient and names_outcome if strict else names_recipient or names_outcome


def _dsn_failures(blocks: Iterable[dict[str, str]]) -> tuple[Failure, ...]:
    failures = []
    for block in blocks:
        if _is_recipient_group(block):
            failures.append(_dsn_failure(block))
            if len(failures) >= MAX_GROUPS:
                break
    return tuple(failures)


def _dsn_failure(block: dict[str, str]) -> Failure:
    recipient = _address(_untyped(block.get("final-recipient", ""))) or _address(_untyped(block.get("original-recipient", "")))
    diagnostic = _clean(_untyped(block.get("diagnostic-code", "")), MAX_DIAGNOSTIC)
    status = _first_status(block.get("status", "")) or _first_status(diagnostic)
    words = block.get("action", "").lower().replace(";", " ").split()
    action = words[0] if words and words[0] in ACTIONS else _action_for(status)
    return Failure(
        recipient=recipient,
        status=status,
        action=action,
        diagnostic=diagnostic,
        remote_mta=_clean(_untyped(block.get("remote-mta", "")), 255),
        code=_first_reply(diagnostic),
    )


def _action_for(status: str) -> str:
    # A group without a readable Action: infer it from the status class; a report sent to the bounce
    # address that says nothing else is taken as a failure (not permanent without a 5.x.x status).
    return {"4": "delayed", "2": "delivered"}.get(status[:1], "failed")


def _untyped(value: str) -> str:
    """Drop the type of a typed field: rfc822; a@b -> a@b, smtp; 550 ... -> 550 ..., dns; mx -> mx."""
    match = _TYPED.match(value)
    return value[match.end() :] if match else value


def _address(value: str) -> str:
    value = _clean(value, 512)
    if value.startswith("<") and ">" in value:
        value = value[1 : value.index(">")]
    return value.strip().strip("<>").strip()


def _first_status(text: str) -> str:
    match = _STATUS.search(text[:MAX_FIELD_CHARS])
    return match.group(0) if match else ""


def _first_reply(text: str) -> int | None:
    match = _REPLY.search(text[:MAX_FIELD_CHARS])
    return int(match.group(1)) if match else None


# --- plain-text bounces ------------------------------------------------------------------------------

# A line that starts with a recipient address: "<a@b>:" (qmail), "<a@b>: host ... said:" (Postfix),
# "  a@b" (Exim), "a@b" (Microsoft), "<a@b> (expanded from <c@d>): ..." (Postfix aliases).
_ADDRESS_LINE = re.compile(
    r"[ \t]*<?(?P<address>[^\s<>@\"(),;:\[\]]{1,64}@[A-Za-z0-9][A-Za-z0-9.-]{0,252})>?"
    r"(?:[ \t]+\([^()]{0,300}\))?[ \t]*(?::(?P<rest>.*))?"
)
_ORIGINAL_FOLLOWS = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*(?:below this line is a copy of the message|this is a copy of the|original message)"
    r"|original message headers:)",
    re.I | re.M,
)
_MS_RETURNED = re.compile(r"remote server returned '([^']{1,1000})'", re.I)
_MS_HASHED = re.compile(r"#([245][0-5]\d [^#]{1,1000})##")
_REMOTE_HOST = re.compile(r"\bhost\s+([A-Za-z0-9][A-Za-z0-9.-]{0,252})\s?\[")
_QMAIL_HOST = re.compile(r"(?:giving up on|connected to)\s+([0-9A-Fa-f:.]{0,45}[0-9A-Fa-f])", re.I)


def _plain_failures(text: str) -> tuple[Failure, ...]:
    lines = _lines(text)
    failures = []
    for address, pieces in _plain_entries(lines).items():
        reason = _clean(" ".join(pieces), 20 * MAX_DIAGNOSTIC)
        failures.append(_plain_failure(address, reason))
    if any(failure.status or failure.code is not None for failure in failures):
        return tuple(failure for failure in failures if failure.status or failure.code is not None or failure.diagnostic)
    # No recipient named with its reason: the first paragraph that holds a code stands for the whole report.
    for paragraph in re.split(r"\n[ \t]*\n", "\n".join(lines)):
        reason = _clean(paragraph, 20 * MAX_DIAGNOSTIC)
        if _first_status(reason) or _first_reply(reason) is not None:
            recipient = failures[0].recipient if len(failures) == 1 else ""
            return (_plain_failure(recipient, reason),)
    return ()


def _plain_entries(lines: list[str]) -> dict[str, list[str]]:
    """Recipient address -> the lines that explain it: from a line that starts with the address to the next
    blank line or the next address at the same indentation. An address named twice (Microsoft) is merged."""
    entries: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    current: list[str] | None = None
    indent = 0
    for line in lines:
        if not line.strip():
            current = None
            continue
        line_indent = len(line) - len(line.lstrip(" \t"))
        match = _ADDRESS_LINE.fullmatch(line) if current is None or line_indent <= indent else None
        if match is not None:
            address = match.group("address").rstrip(".")
            key = address.lower()
            if key not in entries and len(entries) >= MAX_GROUPS:
                current = None
                continue
            current = entries.setdefault(key, [])
            spelled.setdefault(key, address)
            indent = line_indent
            if match.group("rest"):
                current.append(match.group("rest").strip())
        elif current is not None and len(current) < 200:
            current.append(line.strip())
    return {spelled[key]: pieces for key, pieces in entries.items()}


def _plain_failure(recipient: str, reason: str) -> Failure:
    quoted = _MS_RETURNED.search(reason) or _MS_HASHED.search(reason)
    diagnostic = _clean(quoted.group(1) if quoted else reason, MAX_DIAGNOSTIC)
    remote = _REMOTE_HOST.search(reason) or _QMAIL_HOST.search(reason)
    return Failure(
        recipient=_clean(recipient, 512),
        status=_first_status(diagnostic) or _first_status(reason),
        action="failed",
        diagnostic=diagnostic,
        remote_mta=_clean(remote.group(1), 255) if remote else "",
        code=_first_reply(diagnostic),
    )


# --- MIME plumbing -----------------------------------------------------------------------------------


def _walk(root: Message) -> list[Message]:
    """The parts, depth first, without descending into attached messages (the returned original) and
    without following more than MAX_PARTS parts or MAX_DEPTH levels."""
    found: list[Message] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    while stack and len(found) < MAX_PARTS:
        part, depth = stack.pop()
        found.append(part)
        if depth < MAX_DEPTH and part.is_multipart() and not _content_type(part).startswith("message/"):
            children = [child for child in _subparts(part)[:MAX_PARTS] if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
    return found


def _subparts(part: Message) -> list[Message]:
    # Only for parts that hold a list: on a text payload, get_payload() without decode=True decodes with the
    # charset the sender named, and can raise.
    payload = part.get_payload() if part.is_multipart() else None
    return payload if isinstance(payload, list) else []


def _content_type(part: Message) -> str:
    try:
        return str(part.get_content_type()).lower()
    except Exception:
        return "application/octet-stream"


def _report_type(part: Message) -> str:
    match = re.search(r"report-type\s*=\s*\"?([\w.-]{1,64})", _header(part, "content-type"), re.I)
    return match.group(1).lower() if match else ""


def _is_unsplit_multipart(part: Message) -> bool:
    return _content_type(part).startswith("multipart/") and not part.is_multipart()


def _is_attachment(part: Message) -> bool:
    return _header(part, "content-disposition").lower().strip().startswith("attachment")


def _human_text(parts: list[Message]) -> str:
    """The explanation a person would read: the text/plain parts (else the HTML ones, stripped), up to
    where the copy of the original message begins."""
    readable = [p for p in parts if (_content_type(p) == "text/plain" or _is_unsplit_multipart(p)) and not _is_attachment(p)]
    texts = [_part_text(p) for p in readable]
    if not any(text.strip() for text in texts):
        texts = [_strip_html(_part_text(p)) for p in parts if _content_type(p) == "text/html" and not _is_attachment(p)]
    text = "\n\n".join(texts)[:MAX_TEXT]
    cut = _ORIGINAL_FOLLOWS.search(text)
    return text[: cut.start()] if cut else text


def _part_text(part: Message) -> str:
    """The decoded text of one part. message/* parts come back from the email package as header blocks:
    they are put back together as they were sent before being read as fields."""
    try:
        if part.is_multipart():
            source = b"\n".join(_block_source(sub) for sub in _subparts(part)[: MAX_GROUPS + 2] if isinstance(sub, Message))
            return _undo_transfer_encoding(source, _header(part, "content-transfer-encoding")).decode("utf-8", "replace")
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            return ""
        return _decode(data, part.get_content_charset())
    except Exception:  # one unreadable part must not spoil the others
        return ""


def _block_source(sub: Message) -> bytes:
    head = "\n".join(f"{name}: {value}" for name, value in sub.raw_items()).encode("utf-8", "surrogateescape")
    body = sub.get_payload(decode=True)  # the bytes as received (without decode the email package spoils 8-bit text)
    if not isinstance(body, bytes) or not body:
        return head + b"\n"
    # A line that is not a field ends the email package's header block early: it stays in the same block.
    joint = b"\n" if any(type(defect).__name__ == "MissingHeaderBodySeparatorDefect" for defect in sub.defects) else b"\n\n"
    return head + joint + body if head else body


def _undo_transfer_encoding(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding == "base64":
            return binascii.a2b_base64(data)
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass
    return data


def _decode(data: bytes, charset: str | None) -> str:
    if not charset or charset in ("us-ascii", "ascii"):
        charset = "utf-8"
    try:
        return data.decode(charset, "replace")
    except Exception:  # unknown or non-text codec named by the sender
        return data.decode("utf-8", "replace")


def _header(part: Message, name: str) -> str:
    """The first header of that name, unfolded and with RFC 2047 words decoded; "" if absent."""
    for key, value in part.raw_items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return _clean(_decode_words(value[:MAX_FIELD_CHARS]), MAX_FIELD_CHARS)
    return ""


def _decode_words(value: str) -> str:
    value = re.sub(r"\r?\n[ \t]", " ", value)
    if "=?" not in value:
        return value
    try:
        pieces = decode_header(value)
    except Exception:
        return value
    text = []
    for piece, charset in pieces:
        text.append(_decode(piece, charset) if isinstance(piece, bytes) else piece)
    return "".join(text)


def _strip_html(text: str) -> str:
    text = re.sub(r"(?i)<(?:br|/p|/div|/tr|/li|/h\d)\b[^<>]{0,200}>", "\n", text[: 2 * MAX_TEXT])
    return html.unescape(re.sub(r"<[^<>]{0,2000}>", " ", text))


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _clean(text: str, limit: int) -> str:
    """Valid Unicode on one line, runs of white space and control characters made one space, at most `limit`
    characters: safe to store, log and show."""
    text = text[: limit * 20]
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return _UNPRINTABLE.sub(" ", text).strip()[:limit].strip()
