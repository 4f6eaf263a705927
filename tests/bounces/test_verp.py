"""VERP addresses: each recipient's envelope sender names it, and nothing else decodes."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.bounces import verp
from scriptmail.bounces.verp import MAX_ID, decode, encode, new_secret

SECRET = b"sample-secret-for-tests-only-000"
DOMAIN = "bounces.example.net"
FAST = settings(max_examples=300, deadline=None)

ids = st.integers(min_value=0, max_value=MAX_ID)
keys = st.binary(min_size=1, max_size=64)
domains = st.sampled_from([DOMAIN, "b.example.org", "bounce-1.mail.example.com", "x.y"])


def test_a_bounce_address_names_its_recipient() -> None:
    address = encode(4711, SECRET, DOMAIN)
    assert address == "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net"
    assert decode(address, SECRET, DOMAIN) == 4711


def test_the_local_part_is_short_lower_case_base32() -> None:
    local, _, domain = encode(MAX_ID, SECRET, "Bounces.Example.NET").partition("@")
    assert re.fullmatch(r"b-[a-z2-7]{32}", local) and len(local) < 64
    assert domain == DOMAIN


@pytest.mark.parametrize(
    "spelling",
    [
        "B-AAAAAAAAAAJGPE52AM5T6BPXXIWDNKLW@BOUNCES.EXAMPLE.NET",
        "<b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net>",
        "  <b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@Bounces.Example.Net>\r\n",
        " b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net ",
    ],
)
def test_case_angle_brackets_and_surrounding_spaces_are_tolerated(spelling: str) -> None:
    assert decode(spelling, SECRET, DOMAIN) == 4711
    assert decode(spelling, SECRET, "BOUNCES.example.net") == 4711


@pytest.mark.parametrize(
    "address",
    [
        "",
        "@",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.org",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@sub.bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net.",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net@bounces.example.net",
        "aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net",
        "c-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net",
        "b_aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw+extra@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw-x@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnkl@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklwa@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnkl1@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnkl=@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw======@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklẃ@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnk lw@bounces.example.net",
        '"b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw"@bounces.example.net',
        "<<b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net>>",
        "<b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net\x00",
        "b-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@bounces.example.net",
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bоunces.example.net",  # a Cyrillic о: not our domain
        "b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@\udcff.example.net",  # an undecodable byte
    ],
)
def test_anything_that_is_not_exactly_our_token_is_refused(address: str) -> None:
    assert decode(address, SECRET, DOMAIN) is None


def test_a_token_made_under_another_secret_is_refused() -> None:
    assert decode(encode(4711, b"another secret", DOMAIN), SECRET, DOMAIN) is None
    assert decode(encode(4711, SECRET, DOMAIN), b"", DOMAIN) is None


def test_an_id_beyond_the_signed_range_is_refused_even_with_a_good_mac() -> None:
    too_big = 2**63
    raw = too_big.to_bytes(8, "big") + verp._mac(too_big, SECRET)
    address = "b-" + base64.b32encode(raw).decode().lower() + "@" + DOMAIN
    assert decode(address, SECRET, DOMAIN) is None


@pytest.mark.parametrize("thing", [None, 4711, b"b-aaaaaaaaaajgpe52am5t6bpxxiwdnklw@bounces.example.net"])
def test_decode_answers_none_for_what_is_not_a_string(thing: object) -> None:
    assert decode(thing, SECRET, DOMAIN) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("recipient_id", "secret", "domain"),
    [(-1, SECRET, DOMAIN), (MAX_ID + 1, SECRET, DOMAIN), (True, SECRET, DOMAIN), (1, b"", DOMAIN),
     (1, SECRET, ""), (1, SECRET, "bounces example.net"), (1, SECRET, "a@bounces.example.net"), (1, SECRET, ".example.net")],
)
def test_encode_refuses_what_could_never_decode(recipient_id: int, secret: bytes, domain: str) -> None:
    with pytest.raises(ValueError):
        encode(recipient_id, secret, domain)


def test_new_secrets_are_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert len(first) == len(second) == 32 and first != second


@FAST
@given(ids, keys, domains)
def test_every_id_comes_back_from_its_address(recipient_id: int, secret: bytes, domain: str) -> None:
    address = encode(recipient_id, secret, domain)
    assert len(address.partition("@")[0]) < 64
    assert decode(address, secret, domain) == recipient_id
    assert decode(address.upper(), secret, domain.upper()) == recipient_id


@FAST
@given(ids, keys, st.data())
def test_any_single_changed_character_is_refused(recipient_id: int, secret: bytes, data: st.DataObject) -> None:
    address = encode(recipient_id, secret, DOMAIN)
    position = data.draw(st.integers(min_value=0, max_value=len(address) - 1))
    original = address[position]
    replacement = data.draw(st.characters().filter(lambda c: c.lower() != original.lower()))
    changed = address[:position] + replacement + address[position + 1 :]
    assert decode(changed, secret, DOMAIN) is None


@FAST
@given(ids, keys, keys)
def test_a_token_only_decodes_under_its_own_secret(recipient_id: int, secret: bytes, other: bytes) -> None:
    address = encode(recipient_id, secret, DOMAIN)
    assert decode(address, other, DOMAIN) == (recipient_id if other == secret else None)


@FAST
@given(st.text(max_size=120) | st.from_regex(r"\s*<?b-[a-zA-Z2-7]{30,34}@bounces\.example\.net>?\s*", fullmatch=True))
def test_decode_never_raises_and_what_it_accepts_is_ours(address: str) -> None:
    recipient_id = decode(address, SECRET, DOMAIN)
    if recipient_id is not None:
        assert address.strip().strip("<>").strip().lower() == encode(recipient_id, SECRET, DOMAIN)


def test_inside_smtputf8_the_bounce_domain_may_come_as_its_u_label() -> None:
    address = encode(4711, SECRET, "bounces.xn--bcher-kva.example")
    assert decode(address, SECRET, "bounces.xn--bcher-kva.example") == 4711
    assert decode(address.replace("xn--bcher-kva", "bücher"), SECRET, "bounces.xn--bcher-kva.example") == 4711
    assert decode(address.replace("xn--bcher-kva", "BÜCHER"), SECRET, "bounces.xn--bcher-kva.example") == 4711
    assert decode(address.replace("xn--bcher-kva", "buecher"), SECRET, "bounces.xn--bcher-kva.example") is None
