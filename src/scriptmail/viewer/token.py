"""The signed, short-lived links the viewer's frame is served under: no session cookie is read
there, so the link itself says which message of which hosting it shows, until when, and whether
its remote images may load. Pure: the key is given."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

LIFETIME = 300  # seconds a frame link works
_MAC_BYTES = 16


@dataclass(frozen=True, slots=True)
class Claim:
    hosting_id: int
    message_id: int
    expires: int
    images: bool  # remote images allowed for this message


def sign(key: bytes, claim: Claim) -> str:
    body = f"{claim.hosting_id}.{claim.message_id}.{claim.expires}.{int(claim.images)}".encode()
    mac = hmac.new(key, b"viewer:" + body, hashlib.sha256).digest()[:_MAC_BYTES]
    return _b64(body) + "." + _b64(mac)


def verify(key: bytes, token: str, now: float) -> Claim | None:
    """The claim of a genuine, unexpired token; None for anything else (never an error)."""
    if len(token) > 200 or token.count(".") != 1 or not token.isascii():
        return None
    body_part, mac_part = token.split(".")
    try:
        body, mac = _unb64(body_part), _unb64(mac_part)
    except ValueError:
        return None
    expected = hmac.new(key, b"viewer:" + body, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    fields = body.split(b".")
    if len(fields) != 4 or not all(f.isdigit() for f in fields) or fields[3] not in (b"0", b"1"):
        return None
    claim = Claim(int(fields[0]), int(fields[1]), int(fields[2]), fields[3] == b"1")
    return claim if claim.expires > now else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except Exception as error:  # binascii.Error is a ValueError; keep it one kind
        raise ValueError("not base64") from error
