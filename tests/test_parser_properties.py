"""Property tests (hypothesis) for every parser that reads untrusted input: whatever arrives, each
one either answers or refuses with its own error, and what it accepts keeps its promises."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.delivery.wire import MAX_LINE, fold_long_lines
from scriptmail.domains import dmarc, spf
from scriptmail.intake.checks import Refused, check_address, check_data, normalize_newlines
from scriptmail.intake.headers import split_headers
from scriptmail.intake.sendmail_args import UsageError, parse_args
from scriptmail.intake.sendmail_protocol import ProtocolError, decode_request, parse_file
from tests.domains.zone import Zone

FAST = settings(max_examples=300, deadline=None)
wire_bytes = st.binary(max_size=3000) | st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"\x00", b"a", b" ", b":", b"X-H: v"]), max_size=200).map(b"".join)


@FAST
@given(st.text(max_size=300))
def test_accepted_addresses_carry_no_routing_tricks(address: str) -> None:
    try:
        check_address(address)
    except Refused as refused:
        assert refused.code == 553
        return
    local, _, domain = address.partition("@")
    assert address.count("@") == 1 and local and "." in domain
    assert not set(address) & set('%!"[]<>() \t\r\n\x00:,;\\')


@FAST
@given(wire_bytes)
def test_data_either_refused_or_free_of_bare_line_ends(data: bytes) -> None:
    try:
        check_data(data)
    except Refused as refused:
        assert refused.code == 554
        return
    stripped = data.replace(b"\r\n", b"")
    assert b"\r" not in stripped and b"\n" not in stripped and b"\x00" not in data


@FAST
@given(wire_bytes)
def test_sendmail_input_always_becomes_acceptable_data(data: bytes) -> None:
    check_data(normalize_newlines(data))


@FAST
@given(wire_bytes)
def test_header_splitting_never_loses_a_byte(data: bytes) -> None:
    data = normalize_newlines(data)
    block = split_headers(data)
    rebuilt = block.to_bytes()
    assert rebuilt == data or rebuilt.replace(b"\r\n\r\n", b"\r\n", 1) == data


@FAST
@given(st.lists(st.binary(min_size=0, max_size=2500).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=8))
def test_folding_keeps_every_line_short_and_the_body_intact(lines: list[bytes]) -> None:
    message = b"Subject: s\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    folded = fold_long_lines(message)
    assert all(len(line) <= MAX_LINE for line in folded.split(b"\r\n"))
    body = folded.split(b"\r\n\r\n", 1)[1]
    assert body.replace(b"\r\n", b"") == b"".join(lines)


@FAST
@given(st.lists(st.text(max_size=40) | st.sampled_from(["-t", "-i", "-oi", "-f", "-X", "-C", "-O", "--", "-bp", "-F", "-r"]), max_size=8))
def test_sendmail_arguments_parse_or_are_a_usage_error(args: list[str]) -> None:
    try:
        invocation = parse_args(args)
    except UsageError as error:
        assert error.code in (64, 65)
        return
    assert not any(arg.startswith(("-X", "-C", "-O")) for arg in args[: args.index("--") if "--" in args else len(args)])
    assert invocation is not None


@FAST
@given(st.binary(max_size=600))
def test_socket_and_maildrop_frames_parse_or_raise_protocol_error(raw: bytes) -> None:
    for parse in (lambda: decode_request(raw.split(b"\n")[0], 1024), lambda: parse_file(raw, 1024)):
        try:
            parse()
        except ProtocolError:
            pass


spf_words = st.lists(
    st.sampled_from(["v=spf1", "ip4:192.0.2.1/24", "ip6:2001:db8::/32", "a", "mx/24", "a:x.example//64", "include:",
                     "exists:%{i}.x.example", "%{d2}", "redirect=x.example", "exp=", "-all", "~", "?", "+", ":", "/", "=",
                     "%", "ptr", "x", " ", "\x00", "é"]),
    max_size=30,
).map("".join) | st.text(max_size=300)  # fmt: skip


@FAST
@given(spf_words)
def test_spf_records_parse_or_are_refused_with_a_permanent_error(text: str) -> None:
    try:
        record = spf.parse(spf.decode(("v=spf1 " + text).encode("utf-8")))
    except spf.PermanentError as error:
        assert str(error) and error.problem in spf.Problem
        return
    for term in record.terms:
        assert term.name in ("all", "ip4", "ip6", "a", "mx", "ptr", "include", "exists")
        assert term.cidr4 is None or 0 <= term.cidr4 <= 32
        assert term.cidr6 is None or 0 <= term.cidr6 <= 128


@FAST
@given(spf_words, st.sampled_from(["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"]))
def test_spf_evaluation_of_any_record_ends_in_a_result(text: str, address: str) -> None:
    zone = Zone({
        "shop.example": {"TXT": ["v=spf1 " + text], "A": ["192.0.2.1"], "MX": ["mx.shop.example"]},
        "x.example": {"TXT": ["v=spf1 " + text[::-1]]},
        "mx.shop.example": {"AAAA": ["2001:db8::1"]},
    })  # fmt: skip
    found = asyncio.run(spf.check_host(zone, address, "shop.example", "a@shop.example", "out.platform.example"))
    assert found.result in spf.Result and found.lookups <= spf.LOOKUP_LIMIT + 1
    assert (found.problem is not None) == (found.result == spf.Result.PERMERROR)
    assert len(zone.queries) <= 1 + (spf.LOOKUP_LIMIT + 1) * (1 + spf.MX_ADDRESS_LIMIT)


dmarc_words = st.lists(
    st.sampled_from(["v=DMARC1", ";", " ", "p=", "none", "reject", "sp=", "adkim=", "s", "r", "pct=", "100", "101",
                     "rua=", "mailto:a@b.example", ",", "!10m", "fo=", "1:d", "ri=", "=", "x"]),
    max_size=30,
).map("".join) | st.text(max_size=300)  # fmt: skip


@FAST
@given(dmarc_words)
def test_dmarc_records_parse_or_are_refused_with_a_syntax_error(text: str) -> None:
    try:
        policy = dmarc.parse(text)
    except dmarc.DmarcSyntaxError as error:
        assert str(error)
        return
    assert text.lstrip(" \t").startswith("v")
    assert policy.p in dmarc.POLICIES and (policy.sp is None or policy.sp in dmarc.POLICIES)
    assert policy.adkim in "rs" and policy.aspf in "rs" and 0 <= policy.pct <= 100
