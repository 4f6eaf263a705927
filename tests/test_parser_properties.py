"""Property tests (hypothesis) for every parser that reads untrusted input: whatever arrives, each
one either answers or refuses with its own error, and what it accepts keeps its promises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scriptmail.delivery.wire import MAX_LINE, fold_long_lines
from scriptmail.intake.checks import Refused, check_address, check_data, normalize_newlines
from scriptmail.intake.headers import split_headers
from scriptmail.intake.sendmail_args import UsageError, parse_args
from scriptmail.intake.sendmail_protocol import ProtocolError, decode_request, parse_file

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
