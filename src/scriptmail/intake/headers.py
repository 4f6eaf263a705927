"""The header block of a message: read once at intake, edited only where the standards ask.

Works on CRLF bytes, stdlib only (the sendmail command imports it).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """The message split once into its header fields and the rest."""

    fields: tuple[tuple[str, bytes], ...]  # (lower-case name, raw field including continuation lines)
    body: bytes  # everything after the header block, including the blank line

    def values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [_value(raw) for field_name, raw in self.fields if field_name == wanted]

    def first(self, name: str) -> str:
        found = self.values(name)
        return found[0] if found else ""

    def has(self, name: str) -> bool:
        return any(field_name == name.lower() for field_name, _ in self.fields)

    def without(self, *names: str) -> HeaderBlock:
        drop = {name.lower() for name in names}
        return HeaderBlock(tuple(f for f in self.fields if f[0] not in drop), self.body)

    def with_prepended(self, name: str, value: str) -> HeaderBlock:
        raw = f"{name}: {value}\r\n".encode("utf-8")
        return HeaderBlock(((name.lower(), raw), *self.fields), self.body)

    def to_bytes(self) -> bytes:
        return b"".join(raw for _, raw in self.fields) + self.body


def _value(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    value = text.partition(":")[2]
    # Unfold: a CRLF followed by white space is part of the value.
    return value.replace("\r\n", "").strip()


def split_headers(data: bytes) -> HeaderBlock:
    """Split at the first empty line; a message without one is all headers (or all body)."""
    fields: list[tuple[str, bytes]] = []
    position = 0
    length = len(data)
    while position < length:
        end = data.find(b"\r\n", position)
        line_end = length if end < 0 else end + 2
        line = data[position:line_end]
        if line in (b"\r\n", b""):
            break
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + line)
        else:
            name, colon, _ = line.partition(b":")
            if not colon or not name or b" " in name.strip() or name != name.rstrip():
                break  # not a header field: the body starts here (no blank line was sent)
            fields.append((name.decode("ascii", errors="replace").lower(), line))
        position = line_end
    body = data[position:]
    if fields and body and not body.startswith(b"\r\n"):
        body = b"\r\n" + body
    return HeaderBlock(tuple(fields), body)


def decoded(value: str) -> str:
    """An RFC 2047 encoded value made readable; malformed encodings are kept as sent."""
    try:
        from email.header import decode_header, make_header  # here: the sendmail command never decodes

        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def addresses_in(block: HeaderBlock, *names: str) -> list[str]:
    """Bare addresses from address header fields (for sendmail -t)."""
    values = [value for name in names for value in block.values(name)]
    return [address for _, address in email.utils.getaddresses(values) if address]


MAX_HOPS = 30  # RFC 5321 §6.3: a message with this many Received fields is looping


def trace(block: HeaderBlock, hostname: str, hosting: str, protocol: str, now: float | None = None) -> HeaderBlock:
    """Prepend our Received field (RFC 5321 §4.4): which gateway took it, for which hosting, how."""
    when = email.utils.formatdate(now if now is not None else time.time(), localtime=False)
    return block.with_prepended("Received", f"from {hosting} by {hostname} (scriptmail) with {protocol};\r\n\t{when}")


def complete(block: HeaderBlock, hostname: str, now: float | None = None) -> HeaderBlock:
    """Add Date and Message-ID when the script left them out (RFC 6409 §8.2, §8.3)."""
    if not block.has("message-id"):
        import uuid  # here, not at the top: the sendmail command never adds a Message-ID

        block = block.with_prepended("Message-ID", f"<{uuid.uuid4().hex}@{hostname}>")
    if not block.has("date"):
        block = block.with_prepended("Date", email.utils.formatdate(now if now is not None else time.time(), localtime=False))
    return block
