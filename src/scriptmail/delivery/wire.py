"""Preparing stored bytes for the wire: no line longer than RFC 5321 allows, a final CRLF."""

from __future__ import annotations

MAX_LINE = 998  # octets, without the CRLF (RFC 5321 §4.5.3.1.6)


def fold_long_lines(data: bytes, limit: int = MAX_LINE) -> bytes:
    """Break over-long lines; in the header block a break continues the field (leading space)."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if len(data) <= limit or max(map(len, data.split(b"\r\n"))) <= limit:
        return data
    out: list[bytes] = []
    in_headers = True
    for line in data.split(b"\r\n")[:-1]:
        if in_headers and line == b"":
            in_headers = False
        continuation = b" " if in_headers else b""
        while len(line) > limit:
            cut = _break_point(line, limit) if in_headers else limit
            out.append(line[:cut])
            line = continuation + line[cut:].lstrip(b" \t") if in_headers else line[cut:]
        out.append(line)
    return b"\r\n".join(out) + b"\r\n"


def _break_point(line: bytes, limit: int) -> int:
    """Prefer folding a header at white space; fall back to a hard cut."""
    space = line.rfind(b" ", 1, limit)
    return space if space > 0 else limit
