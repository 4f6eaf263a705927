"""The signed, short-lived capability links the viewer's frame is served under. The frame lives on
an origin of its own (web.frame_listen, web.frame_origin) that reads no session, so the link
itself says which message of which hosting it shows, until when, whether its remote images may
load, and which area page may frame it. Pure: the key and the clock are given."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

LIFETIME = 300  # seconds a frame link works
_MAC_BYTES = 16
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]{1,253}(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")


class Refused(Exception):
    """A frame link that shows nothing: `expired` (it was genuine) or not (forged, damaged)."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "not valid")
        self.expired = expired


@dataclass(frozen=True, slots=True)
class Claim:
    hosting_id: int
    message_id: int
    expires: int
    images: bool  # remote images allowed for this message
    ancestor: str = ""  # the area origin that may frame it ("": none but the frame's own)


def valid_origin(text: str) -> bool:
    """scheme://host[:port], nothing more: safe to put in a CSP and in a link."""
    return _ORIGIN.fullmatch(text) is not None


def sign(key: bytes, claim: Claim) -> str:
    if claim.ancestor and not valid_origin(claim.ancestor):
        raise ValueError("the ancestor is not an origin")
    body = f"{claim.hosting_id}.{claim.message_id}.{claim.expires}.{int(claim.images)}.{claim.ancestor}".encode()
    return _b64(body) + "." + _b64(_mac(key, body))


def verify(key: bytes, token: str, now: float) -> Claim:
    """The claim of a genuine, unexpired token; Refused for anything else (never another error)."""
    if len(token) > 400 or token.count(".") != 1 or not token.isascii():
        raise Refused(expired=False)
    body_part, mac_part = token.split(".")
    try:
        body, mac = _unb64(body_part), _unb64(mac_part)
    except ValueError:
        raise Refused(expired=False) from None
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise Refused(expired=False)
    fields = body.split(b".", 4)
    if len(fields) != 5 or not all(f.isdigit() for f in fields[:3]) or fields[3] not in (b"0", b"1"):
        raise Refused(expired=False)
    ancestor = fields[4].decode("ascii", "replace")
    if ancestor and not valid_origin(ancestor):
        raise Refused(expired=False)
    claim = Claim(int(fields[0]), int(fields[1]), int(fields[2]), fields[3] == b"1", ancestor)
    if claim.expires <= now:
        raise Refused(expired=True)
    return claim


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"viewer:" + body, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except Exception as error:  # binascii.Error is a ValueError; keep it one kind
        raise ValueError("not base64") from error
