"""VERP: each delivered recipient gets its own envelope sender, so a bounce that comes back days later
names the exact recipient it is about, and nobody can forge one that names another.

The address is ``b-<token>@<bounce domain>``. The token is the recipient id (8 bytes, big-endian) followed
by the first 12 bytes (96 bits) of HMAC-SHA256 of that id under the platform secret, in lower-case base32
without padding. 20 bytes are exactly 32 base32 characters: no padding bits, so every token has one
spelling (apart from letter case) and any changed character changes the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

PREFIX = "b-"
MAX_ID = 2**63 - 1  # the store's ids are signed 64-bit integers
SECRET_BYTES = 32

_ID_BYTES = 8
_MAC_BYTES = 12
_TOKEN_CHARS = (_ID_BYTES + _MAC_BYTES) * 8 // 5
_CONTEXT = b"scriptmail-verp-v1\x00"  # keeps these MACs apart from any other use of the same secret
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def new_secret() -> bytes:
    """A fresh random key for the tokens (32 bytes)."""
    return secrets.token_bytes(SECRET_BYTES)


def encode(recipient_id: int, secret: bytes, domain: str) -> str:
    """The envelope sender for one recipient: ``b-<token>@<domain>``."""
    if isinstance(recipient_id, bool) or not isinstance(recipient_id, int) or not 0 <= recipient_id <= MAX_ID:
        raise ValueError(f"recipient id out of range 0..2**63-1: {recipient_id!r}")
    if not isinstance(secret, (bytes, bytearray)) or not secret:
        raise ValueError("the VERP secret must be non-empty bytes")
    if not isinstance(domain, str) or len(domain) > 253 or not _DOMAIN.fullmatch(domain):
        raise ValueError(f"not a bounce domain: {domain!r}")
    raw = recipient_id.to_bytes(_ID_BYTES, "big") + _mac(recipient_id, bytes(secret))
    token = base64.b32encode(raw).decode("ascii").lower()
    return f"{PREFIX}{token}@{domain.lower()}"


def decode(address: str, secret: bytes, domain: str) -> int | None:
    """The recipient id named by one of our VERP addresses; None for anything else (never raises)."""
    if not isinstance(address, str) or not isinstance(domain, str) or not isinstance(secret, (bytes, bytearray)):
        return None
    if not secret or len(address) > 512:
        return None
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, host = text.rpartition("@")
    if not at or not local.isascii() or _a_label(host) != domain.lower():
        return None
    local = local.lower()
    if not local.startswith(PREFIX):
        return None
    token = local[len(PREFIX) :]
    if len(token) != _TOKEN_CHARS or not _ALPHABET.issuperset(token):
        return None
    try:
        raw = base64.b32decode(token.upper())
    except (binascii.Error, ValueError):
        return None
    recipient_id = int.from_bytes(raw[:_ID_BYTES], "big")
    if recipient_id > MAX_ID:
        return None
    if not hmac.compare_digest(raw[_ID_BYTES:], _mac(recipient_id, bytes(secret))):
        return None
    return recipient_id


def _a_label(host: str) -> str:
    """The bounce domain as a client wrote it, as an A-label: inside SMTPUTF8 it may be a U-label."""
    if host.isascii():
        return host.lower()
    from scriptmail.international.addresses import AddressError, to_a_label  # only a Unicode name needs IDNA

    try:
        return to_a_label(host).lower()
    except AddressError:
        return ""


def _mac(recipient_id: int, secret: bytes) -> bytes:
    message = _CONTEXT + recipient_id.to_bytes(_ID_BYTES, "big")
    return hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]
