"""International addresses as pure values: what intake stores, what a server is sent, what people see."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.intake.checks import Refused, check_address
from scriptmail.international import smtputf8
from scriptmail.international.addresses import display, for_ascii_server, for_smtputf8, to_a_label


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("josé@bücher.example", "josé@xn--bcher-kva.example"),
        ("jose@XN--BCHER-KVA.example", "jose@xn--bcher-kva.example"),
        ("jose@BÜCHER.EXAMPLE", "jose@xn--bcher-kva.example"),  # UTS #46 maps case, as browsers do
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
        ("ひらがな@日本語カタカナ.jp", "ひらがな@xn--lcka3d1b3769bcvb2w6i.jp"),  # Han + Katakana: an allowed mix
        ("web@shop.example", "web@shop.example"),  # ASCII as before, case kept
    ],
)
def test_addresses_are_stored_with_the_domain_as_an_a_label(given: str, stored: str) -> None:
    assert check_address(given) == stored
    assert check_address(stored) == stored  # idempotent: the daemon checks again what the command checked


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("jos\udce9@shop.example", "not valid UTF-8"),  # an undecodable byte, as Python hands argv over
        ("jos\ufffd@shop.example", "not valid UTF-8"),  # a header decoded with errors="replace"
        ("web@раypal.example", "mixes scripts (Cyrillic, Latin)"),
        ("web@xn--zz.example", "not a valid internationalised name"),
        ("web@" + "ñ" * 60 + ".example", "Label too long"),
        ("w\u200beb@bücher.example", "U+200B"),
        ("w\u00a0eb@bücher.example", "U+00A0"),
        ("ñ" * 33 + "@bücher.example", "longer than 64 octets"),
        ("a..ñ@bücher.example", "invalid local part"),
        ("ñ%x@bücher.example", "'%' and '!' routing"),
        ('"ñ"@bücher.example', "quoted local parts"),
        ("ñ@[127.0.0.1]", "address literals"),
        ("ñ@bücher", "invalid domain"),
        ("ñ@ñ@bücher.example", "must be local@domain"),
    ],
)
def test_bad_international_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        check_address(address)
    assert refused.value.code == 553 and reason in refused.value.text


def test_a_domain_longer_than_253_octets_as_an_a_label_is_refused() -> None:
    name = ".".join(["ü" * 20] * 11) + ".example"  # short in Unicode, too long as punycode
    with pytest.raises(Refused) as refused:
        check_address(f"a@{name}")
    assert "(Domain too long)" in refused.value.text and len(refused.value.reply.encode()) < 300


def test_addresses_are_shown_and_sent_in_the_form_each_reader_takes() -> None:
    stored = "josé@xn--bcher-kva.example"
    assert display(stored) == "josé@bücher.example"
    assert for_smtputf8(stored) == "josé@bücher.example"
    assert for_ascii_server("info@bücher.example") == "info@xn--bcher-kva.example"
    assert display("web@xn--zz.example") == "web@xn--zz.example"  # undecodable: shown as stored
    assert display("") == "" and display(None) is None  # type: ignore[arg-type]
    assert to_a_label("bücher.example") == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("sender", "recipient", "data", "why"),
    [
        ("web@shop.example", "info@xn--bcher-kva.example", b"Subject: hi\r\n\r\n\xc3\xa9t\xc3\xa9\r\n", None),
        ("web@shop.example", "jürgen@xn--bcher-kva.example", b"Subject: hi\r\n\r\nx\r\n", "recipient's address"),
        ("josé@shop.example", "info@sink.test", b"Subject: hi\r\n\r\nx\r\n", "sender's address"),
        ("web@shop.example", "info@sink.test", "Subject: Grüße\r\n\r\nx\r\n".encode(), "header fields"),
    ],
)
def test_smtputf8_is_needed_for_utf8_local_parts_and_headers_only(
    sender: str, recipient: str, data: bytes, why: str | None
) -> None:
    found = smtputf8.reason(sender, recipient, smtputf8.header_block_needs_it(data))
    assert (found is None) if why is None else (why in found)


_LOCAL = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=20)
_DOMAIN = st.lists(st.text(alphabet=st.characters(), min_size=0, max_size=25), min_size=1, max_size=4).map(".".join)


@settings(max_examples=300, deadline=None)
@given(_LOCAL, _DOMAIN)
def test_any_text_is_either_refused_cleanly_or_stored_in_a_form_that_checks_again(local: str, domain: str) -> None:
    try:
        stored = check_address(f"{local}@{domain}")
    except Refused as refused:
        assert refused.code == 553 and len(refused.reply.encode("utf-8", "surrogateescape")) < 512
        return
    assert check_address(stored) == stored
    assert stored.rpartition("@")[2].isascii()  # the domain always as an A-label
    assert display(stored).rpartition("@")[0] == stored.rpartition("@")[0]
