"""The From domain the Acceptor signs and counts by: plain forms fast, the rest by the email package."""

from __future__ import annotations

import pytest

from scriptmail.intake.accept import _from_domain
from scriptmail.intake.headers import split_headers


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        (b"Shop <web@Shop.Example>", "shop.example"),
        (b"web@shop.example", "shop.example"),
        (b'"Doe, J" <j@x.example>', "x.example"),
        (b"j@x.example (the shop)", "x.example"),
        (b"a@one.example, b@two.example", "one.example"),
        (b"<web@b\xc3\xbccher.example>", "xn--bcher-kva.example"),
        (b"", ""),
        (b"undisclosed-recipients:;", ""),
        (b"web@[192.0.2.1]", ""),
        (b"web@bad_name.example", ""),
    ],
)
def test_the_first_from_address_gives_the_domain(value: bytes, domain: str) -> None:
    assert _from_domain(split_headers(b"From: " + value + b"\r\nTo: a@sink.test\r\n\r\nx\r\n")) == domain


def test_a_message_without_from_has_no_domain() -> None:
    assert _from_domain(split_headers(b"To: a@sink.test\r\n\r\nx\r\n")) == ""
