"""Signing the final bytes: relaxed/relaxed, From oversigned, one field per key, nothing else changed.

The independent verifier (Mail::DKIM) checks these over real SMTP in tests/e2e/test_dkim.py; here
dkimpy's verifier checks the fields as a quick self-test of the layout.
"""

from __future__ import annotations

import dkim
import pytest

from scriptmail.domains.keys import Algorithm, generate, load_private
from scriptmail.domains.records import record_value
from scriptmail.domains.signing import SigningError, SigningKey, sign

RSA = generate(Algorithm.RSA)
MESSAGE = (
    b"Received: from x by y; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
    b"From: Shop <web@shop.example>\r\nTo: a@sink.test\r\nSubject: Pedido  recibido\r\n"
    b"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@shop.example>\r\nX-Mailer: php\r\n\r\n"
    b"Hola,\r\n\r\ngracias   por su pedido.  \r\n\r\n\r\n"
)


def key(pair=RSA, algorithm=Algorithm.RSA, selector="sm20261201") -> SigningKey:
    return SigningKey("shop.example", selector, algorithm, load_private(algorithm, pair.private_pem))


def dns_of(pair, selector="sm20261201", algorithm=Algorithm.RSA):
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        wanted = f"{selector}._domainkey.shop.example.".encode()
        return record_value(algorithm, pair.public).encode() if name == wanted else None

    return lookup


def test_signature_is_prepended_and_the_message_is_untouched() -> None:
    signed = sign(MESSAGE, [key()], 1_796_000_000)
    field, rest = signed.split(b"\r\nReceived:", 1)
    assert b"Received:" + rest == MESSAGE
    assert field.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n\td=shop.example; s=sm20261201;")
    assert b"h=from:to:subject:date:message-id:from;" in field  # Received and X-Mailer are not signed
    assert b"t=1796000000;" in field
    assert max(len(line) for line in field.split(b"\r\n")) <= 78
    assert dkim.verify(signed, dnsfunc=dns_of(RSA))


def test_a_second_from_added_later_breaks_the_signature() -> None:
    signed = sign(MESSAGE, [key()], 1_796_000_000)
    tampered = signed.replace(b"X-Mailer: php\r\n", b"X-Mailer: php\r\nFrom: ceo@shop.example\r\n")
    assert not dkim.verify(tampered, dnsfunc=dns_of(RSA))


def test_relaxed_canonicalization_survives_whitespace_changes_in_transit() -> None:
    signed = sign(MESSAGE, [key()], 1_796_000_000)
    assert dkim.verify(signed.replace(b"Subject: Pedido  recibido", b"subject:   Pedido recibido"), dnsfunc=dns_of(RSA))


def test_a_message_without_a_body_is_signed() -> None:
    bare = b"From: web@shop.example\r\nTo: a@sink.test\r\nSubject: x\r\n"
    assert dkim.verify(sign(bare, [key()], 1_796_000_000), dnsfunc=dns_of(RSA))


def test_ed25519_signature_is_a_second_field() -> None:
    ed = generate(Algorithm.ED25519)
    signed = sign(MESSAGE, [key(), key(ed, Algorithm.ED25519, "sm20261201e")], 1_796_000_000)
    assert signed.count(b"DKIM-Signature:") == 2
    assert signed.index(b"a=rsa-sha256") < signed.index(b"a=ed25519-sha256")
    assert dkim.verify(signed, dnsfunc=dns_of(RSA))  # the first (RSA) signature


@pytest.mark.parametrize("message", [b"To: a@sink.test\r\n\r\nno from\r\n", b"From: a@b.example\r\nbad header line\r\n\r\nx\r\n"])
def test_a_message_that_cannot_be_signed_says_why(message: bytes) -> None:
    with pytest.raises(SigningError):
        sign(message, [key()], 1_796_000_000)
