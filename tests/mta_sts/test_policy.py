"""What a domain publishes for MTA-STS, read as RFC 8461 §3 says, hostile input included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scriptmail.mta_sts.policy import MAX_POLICY_BYTES, Mode, Policy, PolicyError, mx_matches, parse_policy, parse_record

GOOD = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.backup.example.com\r\nmax_age: 604800\r\n"


def test_a_policy_with_crlf_lines_and_two_mx_patterns_is_read() -> None:
    assert parse_policy(GOOD) == Policy(Mode.ENFORCE, ("mx1.example.com", "*.backup.example.com"), 604800)


def test_lf_lines_spaces_case_of_mx_unknown_keys_and_a_final_dot_are_accepted() -> None:
    body = b"version:STSv1\nmode:  testing \nmx: MX.Example.COM.\nfuture: ignored\nmax_age:86400"
    assert parse_policy(body) == Policy(Mode.TESTING, ("mx.example.com",), 86400)


def test_mode_none_needs_no_mx() -> None:
    assert parse_policy(b"version: STSv1\nmode: none\nmax_age: 0\n") == Policy(Mode.NONE, (), 0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"mode: enforce\nmx: mx.example.com\nmax_age: 1\n", "version"),
        (b"version: STSv2\nmode: enforce\nmx: mx.example.com\nmax_age: 1\n", "version"),
        (b"version: STSv1\nmode: strict\nmx: mx.example.com\nmax_age: 1\n", "mode"),
        (b"version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
        (b"version: STSv1\nmode: enforce\nmx: mx.example.com\n", "max_age"),
        (b"version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: -1\n", "max_age"),
        (b"version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 31557601\n", "above"),
        (b"version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: \xd9\xa1\n", "max_age"),
        (b"version: STSv1\nmode: enforce\nmx: mx..example.com\nmax_age: 1\n", "mx"),
        (b"version: STSv1\nmode: enforce\nmx: *.*.example.com\nmax_age: 1\n", "mx"),
        (b"version: STSv1\nmode: enforce\nmx: mx.example.com:25\nmax_age: 1\n", "mx"),
        (b"version: STSv1\nmode: enforce\nmx: -mx.example.com\nmax_age: 1\n", "mx"),
        (b"version: STSv1\nmode enforce\nmx: mx.example.com\nmax_age: 1\n", "key: value"),
        (b"version: STSv1\nmode: enforce\x00\nmx: mx.example.com\nmax_age: 1\n", "control"),
        (b"version: STSv1\n\xff\xfe\n", "UTF-8"),
        (b"<html><body>Welcome to nginx!</body></html>", "key: value"),
        (b"version: STSv1\n" + b"x" * MAX_POLICY_BYTES, "larger"),
    ],
)
def test_malformed_policies_are_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        parse_policy(body)


@given(st.binary(max_size=400))
def test_any_bytes_give_a_policy_or_a_policy_error(body: bytes) -> None:
    try:
        policy = parse_policy(body)
    except PolicyError:
        return
    assert policy.mode is Mode.NONE or policy.mx


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mx.example.com", "mx.example.com", True),
        ("mx.example.com", "MX.example.com.", True),
        ("mx.example.com", "mx2.example.com", False),
        ("*.example.com", "mx.example.com", True),
        ("*.example.com", "a.b.example.com", False),  # one label only (§4.1)
        ("*.example.com", "example.com", False),
        ("*.example.com", ".example.com", False),
        ("*.example.com", "mx.example.com.evil.test", False),
    ],
)
def test_mx_patterns_match_the_host_or_one_label_before_the_suffix(pattern: str, host: str, matches: bool) -> None:
    assert mx_matches(pattern, host) is matches


@pytest.mark.parametrize(
    ("texts", "policy_id"),
    [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=STSv1; id=abc; ext_1=value-x"], "abc"),
        (["v=spf1 -all", "v=STSv1; id=abc"], "abc"),  # other TXT records are ignored
        (["v=STSv1; id=abc", "v=STSv1; id=def"], None),  # two policies: none (§3.1)
        (["v=STSv1"], None),
        (["v=STSv1; id="], None),
        (["v=STSv1; id=has-dash"], None),
        (["v=STSv1; id=" + "a" * 33], None),
        (["v=STSv1; id=a; id=b"], None),
        (["v=STSv1; id=a; broken"], None),
        (["v=STSv1; id=a; bad=va lue"], None),
        (["id=abc; v=STSv1"], None),
        (["V=STSv1; id=abc"], None),
        ([], None),
    ],
)
def test_the_txt_record_gives_the_policy_id_or_no_policy(texts: list[str], policy_id: str | None) -> None:
    assert parse_record(texts) == policy_id


@given(st.lists(st.text(max_size=80), max_size=4))
def test_any_txt_answer_gives_an_id_or_none(texts: list[str]) -> None:
    policy_id = parse_record(texts)
    assert policy_id is None or (policy_id.isalnum() and len(policy_id) <= 32)
