"""DKIM keys: generation, their public value for DNS, and dated selectors.

RSA 2048 is the signature every receiver checks (RFC 8301 forbids less than 1024); Ed25519
(RFC 8463) is optional and always sent as a second signature, since not every receiver checks it.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

RSA_BITS = 2048


class Algorithm(enum.StrEnum):
    """The DKIM `a=` values we sign with."""

    RSA = "rsa-sha256"
    ED25519 = "ed25519-sha256"

    @property
    def key_type(self) -> str:
        """The `k=` tag of the DNS record."""
        return "rsa" if self is Algorithm.RSA else "ed25519"


class KeyUnreadable(ValueError):
    """A private key that cannot be read (corrupt, wrong type)."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    algorithm: Algorithm
    private_pem: bytes  # PKCS#8 PEM, unencrypted: it is encrypted before it is stored
    public: str  # the base64 `p=` value


def generate(algorithm: Algorithm, bits: int = RSA_BITS) -> KeyPair:
    """A fresh key pair for `algorithm`."""
    if algorithm is Algorithm.RSA:
        private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return KeyPair(algorithm, pem, public_value(private))


def public_value(private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    """`p=`: RSA as DER SubjectPublicKeyInfo (RFC 6376 §3.6.1), Ed25519 as the raw 32 bytes (RFC 8463 §4.2)."""
    public = private.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode("ascii")


def load_private(algorithm: Algorithm, pem: bytes) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """The private key object from its PEM; KeyUnreadable if it is not a key of that algorithm."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise KeyUnreadable(f"the private key cannot be read: {error}") from None
    wanted = rsa.RSAPrivateKey if algorithm is Algorithm.RSA else ed25519.Ed25519PrivateKey
    if not isinstance(key, wanted):
        raise KeyUnreadable(f"the private key is not an {algorithm.key_type} key")
    return key


def selector(day: dt.date, algorithm: Algorithm, taken: Iterable[str] = ()) -> str:
    """A dated selector, `smYYYYMMDD` (RSA) or `smYYYYMMDDe` (Ed25519), with -2, -3... if already used."""
    base = f"sm{day:%Y%m%d}{'e' if algorithm is Algorithm.ED25519 else ''}"
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"
