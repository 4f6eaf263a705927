"""Address and data checks as pure functions."""

from __future__ import annotations

import pytest

from scriptmail.intake.checks import Refused, check_address, check_data, check_size, normalize_newlines


@pytest.mark.parametrize("address", ["a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie", "x@a-b.example"])
def test_plain_addresses_pass(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("", "null"),
        ("<>", "null"),
        ("user%dom@host.test", "'%'"),
        ("dom!user", "bang"),
        ("dom!user@host.test", "'!'"),
        ('"user@dom"@host.test', "quoted"),
        ("@a.test:user@dom.test", "source route"),
        ("user@[127.0.0.1]", "literal"),
        ("user@dom@host.test", "local@domain"),
        ("user@localhost", "invalid domain"),
        ("us er@dom.test", "spaces"),
        ("user@dom.test\r\nRCPT TO:<x@y.test>", "control"),
        ("a" * 65 + "@dom.test", "local part"),
        ("a@" + "b" * 300 + ".test", "longer than"),
        (".a@dom.test", "local part"),
        ("a..b@dom.test", "local part"),
        ("a@-dom.test", "invalid domain"),
    ],
)
def test_relay_tricks_and_malformed_addresses_are_refused(address: str, why: str) -> None:
    with pytest.raises(Refused) as refused:
        check_address(address)
    assert refused.value.code == 553
    assert why in refused.value.text


def test_sender_refusals_use_the_sender_enhanced_code() -> None:
    with pytest.raises(Refused) as refused:
        check_address("bad address@x.test", role="sender")
    assert refused.value.reply.startswith("553 5.1.7")


@pytest.mark.parametrize("data", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\n\x00.\r\n", b"\n.\n", b"a\r\r\n"])
def test_bare_line_ends_and_nul_are_refused(data: bytes) -> None:
    with pytest.raises(Refused) as refused:
        check_data(data)
    assert refused.value.code == 554


def test_clean_data_passes() -> None:
    check_data(b"Subject: x\r\n\r\nline one\r\nline two\r\n")


def test_sendmail_input_gets_crlf_and_loses_nul() -> None:
    assert normalize_newlines(b"a\nb\rc\r\nd\x00e\n") == b"a\r\nb\r\nc\r\nde\r\n"


def test_size_limit() -> None:
    check_size(10, 10)
    with pytest.raises(Refused) as refused:
        check_size(11, 10)
    assert refused.value.code == 552
