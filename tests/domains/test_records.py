"""Keys, dated selectors and the exact TXT record a customer publishes."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from scriptmail.domains.keys import Algorithm, KeyUnreadable, generate, load_private, selector
from scriptmail.domains.records import dkim_record, split_strings


def test_rsa_record_is_split_into_strings_of_at_most_255_octets() -> None:
    pair = generate(Algorithm.RSA)
    record = dkim_record("sm20261201", "xn--bcher-kva.example", Algorithm.RSA, pair.public)
    assert record.name == "sm20261201._domainkey.xn--bcher-kva.example"
    assert record.value == f"v=DKIM1; k=rsa; p={pair.public}"
    assert len(record.strings) == 2 and all(len(part.encode()) <= 255 for part in record.strings)
    assert "".join(record.strings) == record.value
    assert record.zone_line().startswith('sm20261201._domainkey.xn--bcher-kva.example. IN TXT ( "v=DKIM1; k=rsa; p=')
    # 2048 bits: the DER SubjectPublicKeyInfo is 294 bytes.
    assert len(base64.b64decode(pair.public)) == 294


def test_ed25519_record_is_one_string_with_the_raw_key() -> None:
    pair = generate(Algorithm.ED25519)
    record = dkim_record("sm20261201e", "shop.example", Algorithm.ED25519, pair.public)
    assert record.value.startswith("v=DKIM1; k=ed25519; p=") and len(record.strings) == 1
    assert len(base64.b64decode(pair.public)) == 32


def test_split_keeps_exact_boundaries() -> None:
    assert split_strings("a" * 510) == ("a" * 255, "a" * 255)
    assert split_strings("a" * 511) == ("a" * 255, "a" * 255, "a")


def test_selectors_carry_the_date_and_never_repeat() -> None:
    day = dt.date(2026, 12, 1)
    assert selector(day, Algorithm.RSA) == "sm20261201"
    assert selector(day, Algorithm.ED25519) == "sm20261201e"
    assert selector(day, Algorithm.RSA, ["sm20261201"]) == "sm20261201-2"
    assert selector(day, Algorithm.RSA, ["sm20261201", "sm20261201-2"]) == "sm20261201-3"


def test_a_corrupt_or_mismatched_private_key_is_refused() -> None:
    with pytest.raises(KeyUnreadable):
        load_private(Algorithm.RSA, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyUnreadable):
        load_private(Algorithm.RSA, generate(Algorithm.ED25519).private_pem)
