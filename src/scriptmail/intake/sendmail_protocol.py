"""The framing between the sendmail command and the daemon, also used for maildrop files.

A request is one JSON object on one line (at most MAX_HEADER bytes, newline included), then
exactly ``size`` bytes of message. The daemon answers one JSON line: ``{"ok": true, "queue_id": N}``
(or ``"rows"`` for a list), or ``{"ok": false, "code": <sysexits>, "error": "..."}``.
The peer may be hostile: every read is bounded and every field is checked, unknown keys included.
Stdlib only: the sendmail command imports this module on every PHP mail() call.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

# sysexits.h: the codes the command exits with and the daemon answers with.
EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

VERSION = 1
MAX_HEADER = 64 * 1024
MAX_REPLY = 16 * 1024 * 1024  # a -bp listing of a long queue
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
OPS = ("send", "list", "flush")  # flush: retry the caller's deferred mail now (-q)

_FIELDS = {"v", "op", "sender", "recipients", "extract", "cwd", "argv", "size", "site"}


class ProtocolError(Exception):
    """The peer did not follow the framing; nothing it sent is used. `code` is the answer."""

    def __init__(self, message: str, code: int = EX_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Request:
    """What the command asks: the envelope as given, and where it was called from (informative)."""

    op: str
    sender: str | None = None  # None: no -f was given, the daemon chooses
    recipients: tuple[str, ...] = ()
    extract: bool = False
    cwd: str = ""
    argv: tuple[str, ...] = field(default_factory=tuple)
    size: int = 0
    site: str = ""  # flush: only recipients at this domain; "" for all


def encode_request(request: Request) -> bytes:
    """The header line; the caller sends exactly `request.size` bytes of message after it."""
    body = asdict(request)
    body["v"] = VERSION
    body["recipients"] = list(request.recipients)
    body["argv"] = list(request.argv)
    if not request.site:
        del body["site"]  # absent unless used, so maildrop files read the same as before
    line = json.dumps(body, separators=(",", ":")).encode("ascii") + b"\n"
    if len(line) > MAX_HEADER:
        raise ProtocolError(f"request header of {len(line)} bytes exceeds {MAX_HEADER}")
    return line


def decode_request(line: bytes, max_size: int) -> Request:
    """Parse and check one header line (with or without its newline)."""
    if len(line) > MAX_HEADER:
        raise ProtocolError("request header too long")
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("request header is not JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError("request header is not a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise ProtocolError(f"unknown request fields: {', '.join(sorted(unknown))}")
    if body.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {body.get('v')!r}")
    op = body.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r}")
    sender = body.get("sender")
    if sender is not None and not isinstance(sender, str):
        raise ProtocolError("sender must be a string or null")
    size = body.get("size", 0)
    if type(size) is not int or size < 0 or (op != "send" and size):
        raise ProtocolError("size must be a non-negative integer (0 for a list or a flush)")
    if size > max_size:
        raise ProtocolError(f"message of {size} bytes exceeds the limit of {max_size}", EX_DATAERR)
    extract = body.get("extract", False)
    if not isinstance(extract, bool):
        raise ProtocolError("extract must be true or false")
    cwd = body.get("cwd", "")
    if not isinstance(cwd, str):
        raise ProtocolError("cwd must be a string")
    site = body.get("site", "")
    if not isinstance(site, str) or len(site) > 255:
        raise ProtocolError("site must be a domain name")
    return Request(
        op=op,
        sender=sender,
        recipients=_strings(body.get("recipients", []), "recipients"),
        extract=extract,
        cwd=cwd,
        argv=_strings(body.get("argv", []), "argv"),
        size=size,
        site=site,
    )


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtocolError(f"{name} must be a list of strings")
    return tuple(value)


async def read_request(reader: asyncio.StreamReader, max_size: int) -> tuple[Request, bytes]:
    """Read one request from a stream; the reader's limit must be at least MAX_HEADER."""
    import asyncio  # here, not at the top: the command never needs it and it costs ~35 ms to load

    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise ProtocolError("request header too long") from None
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed before the request header ended") from None
    request = decode_request(line, max_size)
    try:
        data = await reader.readexactly(request.size)
    except asyncio.IncompleteReadError as error:
        raise ProtocolError(f"message ended after {len(error.partial)} of {request.size} bytes") from None
    return request, data


def parse_file(content: bytes, max_size: int) -> tuple[Request, bytes]:
    """Parse a maildrop file: one header line, then exactly `size` bytes, nothing more."""
    end = content.find(b"\n", 0, MAX_HEADER)
    if end < 0:
        raise ProtocolError("no request header line")
    request = decode_request(content[: end + 1], max_size)
    if request.op != "send":
        raise ProtocolError("a maildrop file can only hold a message to send")
    data = content[end + 1 :]
    if len(data) != request.size:
        raise ProtocolError(f"message has {len(data)} bytes, header says {request.size}")
    return request, data


def encode_reply(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply, separators=(",", ":"), default=str).encode("ascii") + b"\n"


def ok_reply(**values: Any) -> dict[str, Any]:
    return {"ok": True, **values}


def error_reply(code: int, error: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "error": error}


def decode_reply(line: bytes) -> dict[str, Any]:
    """Parse the daemon's answer; anything malformed becomes an EX_SOFTWARE error reply."""
    try:
        reply = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return error_reply(EX_SOFTWARE, "the daemon sent an unreadable answer")
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        return error_reply(EX_SOFTWARE, "the daemon sent an unexpected answer")
    if not reply["ok"]:
        code = reply.get("code")
        reply["code"] = code if type(code) is int and 0 < code < 256 else EX_SOFTWARE
        reply["error"] = str(reply.get("error", "unknown error"))
    return reply
