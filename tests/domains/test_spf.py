"""SPF evaluation (RFC 7208) of a customer's record for the platform's outbound addresses, over a DNS
table: every mechanism and qualifier, includes, redirect, the limits, and records that are wrong."""

from __future__ import annotations

import pytest

from scriptmail.domains import spf
from scriptmail.domains.spf import Result
from tests.domains.zone import Zone

PLATFORM = {"_spf.platform.example": {"TXT": ["v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:5::/48 -all"]}}


async def check(records: dict[str, dict[str, list[str]]], address: str, domain: str = "shop.example", **kw: object) -> spf.Evaluation:
    return await spf.check_host(Zone({**PLATFORM, **records}), address, domain, **kw)  # type: ignore[arg-type]


def txt(record: str) -> dict[str, list[str]]:
    return {"TXT": [record]}


async def test_the_platform_include_passes_its_addresses_and_all_decides_the_rest() -> None:
    record = txt("v=spf1 include:_spf.platform.example -all")
    assert (await check({"shop.example": record}, "203.0.113.9")).result == Result.PASS
    assert (await check({"shop.example": record}, "2001:db8:5::25")).result == Result.PASS
    found = await check({"shop.example": record}, "198.51.100.1")
    assert found.result == Result.FAIL and found.record == "v=spf1 include:_spf.platform.example -all"
    assert "-all matched" in found.reason


@pytest.mark.parametrize(
    ("qualifier", "result"),
    [("", Result.PASS), ("+", Result.PASS), ("-", Result.FAIL), ("~", Result.SOFTFAIL), ("?", Result.NEUTRAL)],
)
async def test_each_qualifier_gives_its_result(qualifier: str, result: Result) -> None:
    assert (await check({"shop.example": txt(f"v=spf1 {qualifier}all")}, "198.51.100.1")).result == result


async def test_softfail_all_and_fail_all_differ_only_for_unauthorised_addresses() -> None:
    for ending, outsider in (("-all", Result.FAIL), ("~all", Result.SOFTFAIL)):
        records = {"shop.example": txt(f"v=spf1 ip4:198.51.100.0/24 {ending}")}
        assert (await check(records, "198.51.100.200")).result == Result.PASS
        assert (await check(records, "192.0.2.1")).result == outsider


async def test_no_term_matching_and_no_all_is_neutral() -> None:
    assert (await check({"shop.example": txt("v=spf1 ip4:198.51.100.1")}, "192.0.2.1")).result == Result.NEUTRAL
    assert (await check({"shop.example": txt("v=spf1")}, "192.0.2.1")).result == Result.NEUTRAL


@pytest.mark.parametrize(
    ("term", "inside", "outside"),
    [
        ("ip4:198.51.100.7", "198.51.100.7", "198.51.100.8"),
        ("ip4:198.51.100.0/25", "198.51.100.127", "198.51.100.128"),
        ("ip4:0.0.0.0/0", "192.0.2.1", "2001:db8::1"),
        ("ip6:2001:db8::/32", "2001:db8:ffff::1", "2001:db9::1"),
        ("ip6:2001:DB8::1", "2001:db8::1", "2001:db8::2"),
        ("a", "198.51.100.10", "198.51.100.11"),
        ("a/31", "198.51.100.11", "198.51.100.12"),
        ("a:web.shop.example", "198.51.100.20", "198.51.100.10"),
        ("a:web.shop.example/24", "198.51.100.99", "198.51.101.1"),
        ("a//64", "2001:db8:1::99", "2001:db8:2::1"),
        ("mx", "198.51.100.30", "198.51.100.10"),
        ("mx:other.example", "198.51.100.40", "198.51.100.30"),
        ("mx/24//48", "2001:db8:3:ff::1", "2001:db8:4::1"),
        ("exists:%{i}.allow.shop.example", "198.51.100.50", "198.51.100.51"),
        ("include:_spf.platform.example", "203.0.113.1", "203.0.114.1"),
        ("ptr", "198.51.100.60", "198.51.100.61"),
        ("ptr:shop.example", "198.51.100.60", "198.51.100.62"),
    ],
)
async def test_every_mechanism_matches_what_it_names(term: str, inside: str, outside: str) -> None:
    records = {
        "shop.example": {"TXT": [f"v=spf1 {term} -all"], "A": ["198.51.100.10"], "AAAA": ["2001:db8:1::1"], "MX": ["mx.shop.example"]},
        "web.shop.example": {"A": ["198.51.100.20"]},
        "mx.shop.example": {"A": ["198.51.100.30"], "AAAA": ["2001:db8:3::1"]},
        "other.example": {"MX": ["mx.other.example"]},
        "mx.other.example": {"A": ["198.51.100.40"]},
        "198.51.100.50.allow.shop.example": {"A": ["127.0.0.2"]},
        "198.51.100.60": {"PTR": ["host.shop.example"]},
        "198.51.100.62": {"PTR": ["host.elsewhere.example"]},
        "host.shop.example": {"A": ["198.51.100.60"]},
        "host.elsewhere.example": {"A": ["198.51.100.62"]},
    }
    assert (await check(records, inside)).result == Result.PASS, term
    assert (await check(records, outside)).result == Result.FAIL, term


async def test_the_first_matching_term_wins() -> None:
    records = {"shop.example": txt("v=spf1 -ip4:198.51.100.1 ip4:198.51.100.0/24 -all")}
    assert (await check(records, "198.51.100.1")).result == Result.FAIL
    assert (await check(records, "198.51.100.2")).result == Result.PASS


async def test_an_include_chain_passes_only_on_the_inner_pass() -> None:
    records = {
        "shop.example": txt("v=spf1 include:mailer.example ~all"),
        "mailer.example": txt("v=spf1 include:_spf.platform.example include:soft.example -all"),
        "soft.example": txt("v=spf1 ip4:192.0.2.0/24 ~all"),
    }
    assert (await check(records, "203.0.113.77")).result == Result.PASS  # two levels down
    # soft.example's ~all does not match inside the include: mailer's -all does, so no match at the top
    assert (await check(records, "198.51.100.1")).result == Result.SOFTFAIL


async def test_an_include_without_record_or_with_an_error_is_a_permerror() -> None:
    missing = await check({"shop.example": txt("v=spf1 include:nothing.example -all")}, "203.0.113.1")
    assert missing.result == Result.PERMERROR and "no SPF record" in missing.reason
    broken = await check({"shop.example": txt("v=spf1 include:bad.example -all"), "bad.example": txt("v=spf1 foo:x")}, "203.0.113.1")
    assert broken.result == Result.PERMERROR


async def test_redirect_applies_when_nothing_matched_and_all_wins_over_it() -> None:
    records = {"shop.example": txt("v=spf1 ip4:198.51.100.1 redirect=_spf.platform.example")}
    assert (await check(records, "203.0.113.1")).result == Result.PASS
    assert (await check(records, "198.51.100.1")).result == Result.PASS
    assert (await check(records, "192.0.2.1")).result == Result.FAIL  # the target's -all
    with_all = {"shop.example": txt("v=spf1 ~all redirect=_spf.platform.example")}
    assert (await check(with_all, "203.0.113.1")).result == Result.SOFTFAIL
    nowhere = await check({"shop.example": txt("v=spf1 redirect=nothing.example")}, "192.0.2.1")
    assert nowhere.result == Result.PERMERROR


async def test_loops_end_in_permerror() -> None:
    include_loop = {"shop.example": txt("v=spf1 include:loop.example -all"), "loop.example": txt("v=spf1 include:shop.example -all")}
    assert (await check(include_loop, "192.0.2.1")).result == Result.PERMERROR
    redirect_loop = {"shop.example": txt("v=spf1 redirect=loop.example"), "loop.example": txt("v=spf1 redirect=shop.example")}
    found = await check(redirect_loop, "192.0.2.1")
    assert found.result == Result.PERMERROR and "more than 10" in found.reason


async def test_ten_dns_terms_are_allowed_and_the_eleventh_is_a_permerror() -> None:
    hosts = {f"h{n}.shop.example": {"A": ["192.0.2.200"]} for n in range(11)}
    ten = " ".join(f"a:h{n}.shop.example" for n in range(10))
    allowed = await check({"shop.example": txt(f"v=spf1 {ten} ip4:198.51.100.1 -all"), **hosts}, "198.51.100.1")
    assert allowed.result == Result.PASS and allowed.lookups == 10
    eleven = ten + " a:h10.shop.example"
    over = await check({"shop.example": txt(f"v=spf1 {eleven} ip4:198.51.100.1 -all"), **hosts}, "198.51.100.1")
    assert over.result == Result.PERMERROR and "more than 10" in over.reason and over.problem == spf.Problem.LOOKUPS
    # ip4, ip6 and all query nothing: they do not count, and matching early stops counting
    assert (await check({"shop.example": txt(f"v=spf1 ip4:198.51.100.1 {eleven} -all"), **hosts}, "198.51.100.1")).result == Result.PASS


async def test_lookups_inside_includes_count_too() -> None:
    chain = {f"i{n}.example": txt(f"v=spf1 include:i{n + 1}.example") for n in range(11)}
    chain["i11.example"] = txt("v=spf1 +all")
    found = await check({"shop.example": txt("v=spf1 include:i0.example -all"), **chain}, "192.0.2.1")
    assert found.result == Result.PERMERROR


async def test_more_than_two_void_lookups_is_a_permerror() -> None:
    two = await check({"shop.example": txt("v=spf1 a:void1.example a:void2.example -all")}, "192.0.2.1")
    assert two.result == Result.FAIL
    three = await check({"shop.example": txt("v=spf1 a:void1.example a:void2.example mx:void3.example -all")}, "192.0.2.1")
    assert three.result == Result.PERMERROR and "void" in three.reason


async def test_an_mx_with_more_than_ten_hosts_is_a_permerror() -> None:
    records = {"shop.example": {"TXT": ["v=spf1 mx -all"], "MX": [f"mx{n}.shop.example" for n in range(11)]}}
    assert (await check(records, "192.0.2.1")).result == Result.PERMERROR


async def test_no_record_is_none() -> None:
    assert (await check({}, "192.0.2.1")).result == Result.NONE
    other_txt = {"shop.example": {"TXT": ["google-site-verification=abc", "v=spf10 -all", "v=spf1x"]}}
    assert (await check(other_txt, "192.0.2.1")).result == Result.NONE
    assert (await check({}, "192.0.2.1", domain="localhost")).result == Result.NONE  # one label: no query
    assert (await check({}, "192.0.2.1", domain="a..example")).result == Result.NONE


async def test_two_spf_records_are_a_permerror() -> None:
    records = {"shop.example": {"TXT": ["v=spf1 include:_spf.platform.example -all", "v=spf1 mx -all"]}}
    found = await check(records, "203.0.113.1")
    assert found.result == Result.PERMERROR and "2 SPF records" in found.reason
    assert found.problem == spf.Problem.RECORDS


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 foo -all",
        "v=spf1 ip4:300.1.1.1 -all",
        "v=spf1 ip4:198.51.100.0/33 -all",
        "v=spf1 ip6:2001:db8::/129 -all",
        "v=spf1 ip4 -all",
        "v=spf1 ip4:198.51.100.0/024 -all",
        "v=spf1 include -all",
        "v=spf1 include: -all",
        "v=spf1 exists -all",
        "v=spf1 all:shop.example",
        "v=spf1 -all redirect=a.example redirect=b.example",
        "v=spf1 a:shop -all",
        "v=spf1 a:shop.example/40 -all",
        "v=spf1 include:bad%macro.example -all",
        "v=spf1 *all",
        "v=spf1 include:shop.example/24 -all",
        "v=spf1 ip4:198.51.100.1\t-all",
    ],
)
async def test_malformed_records_are_a_permerror_even_after_a_match(record: str) -> None:
    # The syntax of the whole record is checked first (RFC 7208 §4.6): a match before the error does not help.
    found = await check({"shop.example": txt(record.replace("v=spf1 ", "v=spf1 +ip4:203.0.113.1 ", 1))}, "203.0.113.1")
    assert found.result == Result.PERMERROR and found.problem == spf.Problem.SYNTAX, record
    assert found.record is not None and found.reason


async def test_unknown_modifiers_are_ignored_and_case_does_not_matter() -> None:
    record = "V=SPF1 IP4:203.0.113.1 Include:_spf.platform.example moo=cow exp=explain.shop.example -ALL"
    assert (await check({"shop.example": txt(record)}, "203.0.113.50")).result == Result.PASS


async def test_hostile_records_are_permerrors_not_crashes() -> None:
    for record in ("v=spf1 ip4:203.0.113.1 caf\xe9 -all", "v=spf1 " + "ip4:192.0.2.1 " * 400 + "-all", "v=spf1 \x00all"):
        found = await check({"shop.example": txt(record)}, "203.0.113.1")
        assert found.result == Result.PERMERROR, record[:40]


async def test_a_dns_failure_is_a_temperror_wherever_it_happens() -> None:
    zone = Zone({"shop.example": txt("v=spf1 include:down.example -all")}, failing=("down.example",))
    found = await spf.check_host(zone, "203.0.113.1", "shop.example")
    assert found.result == Result.TEMPERROR and found.record == "v=spf1 include:down.example -all"
    assert (await spf.check_host(Zone({}, failing=("shop.example",)), "203.0.113.1", "shop.example")).result == Result.TEMPERROR


async def test_macros_expand_the_sender_and_the_address() -> None:
    records = {
        "shop.example": txt("v=spf1 exists:%{l}.%{o}.%{ir}.%{v}._spf.%{d2} -all"),
        "bob.shop.example.1.100.51.198.in-addr._spf.shop.example": {"A": ["127.0.0.2"]},
    }
    found = await check(records, "198.51.100.1", sender="bob@shop.example")
    assert found.result == Result.PASS
    # IPv6 is dotted nibbles; r reverses them, then 4 keeps the rightmost four: those of 2001
    six = {"shop.example": txt("v=spf1 exists:%{i4r}.shop.example -all"), "1.0.0.2.shop.example": {"A": ["127.0.0.2"]}}
    assert (await check(six, "2001:db8::89b")).result == Result.PASS
    assert (await check(six, "2002:db8::89b")).result == Result.FAIL


async def test_an_ipv4_mapped_address_is_checked_as_ipv4() -> None:
    assert (await check({"shop.example": txt("v=spf1 ip4:198.51.100.1 -all")}, "::ffff:198.51.100.1")).result == Result.PASS
