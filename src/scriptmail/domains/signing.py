"""DKIM signing (RFC 6376, RFC 8463) of a message's final bytes: relaxed/relaxed, From oversigned.

dkimpy does the canonicalization and the header hashing (the subtle part, shared with its
verifier and widely used); the signature itself is made by OpenSSL through `cryptography`, which
is many times faster than dkimpy's pure-Python RSA (see benchmarks/dkim_timing.py). Pure: the keys
come in as objects, the time as a number.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim import MessageFormatError, hash_headers, rfc822_parse
from dkim.canonicalization import Relaxed

from scriptmail.domains.keys import Algorithm

# The header fields RFC 6376 §5.4.1 suggests signing, when the message has them.
SIGNED_FIELDS = frozenset(
    {
        "from", "sender", "reply-to", "subject", "date", "message-id", "to", "cc", "mime-version",
        "content-type", "content-transfer-encoding", "content-id", "content-description", "resent-date",
        "resent-from", "resent-sender", "resent-to", "resent-cc", "resent-message-id", "in-reply-to",
        "references", "list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post",
        "list-owner", "list-archive", "list-unsubscribe-post",
    }
)  # fmt: skip
OVERSIGNED = ("from",)  # listed once more than they occur: nobody can add one unnoticed


class SigningError(Exception):
    """The message cannot be signed (its header block cannot be parsed); it goes out unsigned."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str  # d=, the A-label
    selector: str  # s=
    algorithm: Algorithm
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def sign(data: bytes, keys: Sequence[SigningKey], now: float) -> bytes:
    """`data` with one DKIM-Signature field per key prepended (the first key's on top)."""
    end = data.find(b"\r\n\r\n")
    head, body = (data[: end + 2], data[end + 4 :]) if end >= 0 else (data, b"")
    try:
        headers = rfc822_parse(head)[0]
    except MessageFormatError as error:
        raise SigningError(str(error)[:200]) from None
    names = [name.lower() for name, _ in headers]
    if b"from" not in names:
        raise SigningError("the message has no From field")
    include = [name for name in names if name.decode("ascii", "replace") in SIGNED_FIELDS]
    include += [name.encode() for name in OVERSIGNED]
    canonical = Relaxed.canonicalize_headers(headers)
    body_hash = base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(body)).digest()).decode("ascii")
    fields = [_signature(key, include, canonical, body_hash, int(now)) for key in keys]
    return b"".join(fields) + data


def _signature(key: SigningKey, include: list[bytes], canonical: list, body_hash: str, now: int) -> bytes:
    h = _fold(":".join(name.decode("ascii") for name in include), ":")
    value = (
        f" v=1; a={key.algorithm.value}; c=relaxed/relaxed;\r\n\td={key.domain}; s={key.selector}; t={now};\r\n"
        f"\th={h};\r\n\tbh={body_hash};\r\n\tb="
    ).encode("ascii")
    hasher = hashlib.sha256()
    hash_headers(hasher, Relaxed, canonical, include, (b"DKIM-Signature", value), None)
    digest = hasher.digest()
    if isinstance(key.key, rsa.RSAPrivateKey):
        signature = key.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    else:
        signature = key.key.sign(digest)  # RFC 8463: Ed25519 over the SHA-256 of the header data
    b64 = base64.b64encode(signature).decode("ascii")
    folded = "\r\n\t".join(b64[i : i + 72] for i in range(0, len(b64), 72))
    return b"DKIM-Signature:" + value + folded.encode("ascii") + b"\r\n"


def _fold(text: str, at: str, width: int = 70) -> str:
    """Break a long tag value after `at` characters so no line of the field grows past ~78."""
    lines, line = [], ""
    for part in text.split(at):
        piece = part if not line else at + part
        if line and len(line) + len(piece) > width:
            lines.append(line + at)
            line = part
        else:
            line += piece
    lines.append(line)
    return "\r\n\t ".join(lines)
