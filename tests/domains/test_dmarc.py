"""DMARC (RFC 7489): the strict parser, the organisational domain from the Public Suffix List,
discovery with its fallback, and alignment."""

from __future__ import annotations

import pytest

from scriptmail.domains import dmarc
from scriptmail.domains.dmarc import DmarcSyntaxError, Policy
from scriptmail.domains.spf import TemporaryDnsError
from tests.domains.zone import Zone


def test_a_full_record_is_read_with_every_tag() -> None:
    policy = dmarc.parse(
        "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=50; "
        "rua=mailto:dmarc@shop.example,mailto:agg@reports.example!10m; ruf=mailto:f@shop.example; fo=1:d; ri=3600; rf=afrf"
    )
    assert policy == Policy(
        p="reject", sp="quarantine", adkim="s", aspf="r", pct=50,
        rua=("mailto:dmarc@shop.example", "mailto:agg@reports.example!10m"), ruf=("mailto:f@shop.example",),
        fo="1:d", ri=3600,
    )  # fmt: skip
    assert policy.applied(subdomain=False) == "reject" and policy.applied(subdomain=True) == "quarantine"


def test_defaults_and_lenient_spacing() -> None:
    policy = dmarc.parse("v=DMARC1;p=none")
    assert (policy.p, policy.sp, policy.adkim, policy.aspf, policy.pct) == ("none", None, "r", "r", 100)
    assert policy.applied(subdomain=True) == "none"
    assert dmarc.parse("v=DMARC1 ;  p = Quarantine ; ").p == "quarantine"
    assert dmarc.parse("v=DMARC1; p=reject; future=tag").p == "reject"  # unknown tags are ignored


def test_a_missing_p_is_p_none_only_when_reports_go_somewhere() -> None:
    policy = dmarc.parse("v=DMARC1; rua=mailto:d@shop.example")
    assert policy.p == "none" and policy.p_missing
    with pytest.raises(DmarcSyntaxError, match="no p= tag"):
        dmarc.parse("v=DMARC1; adkim=s")
    with pytest.raises(DmarcSyntaxError, match="p=block"):
        dmarc.parse("v=DMARC1; p=block; rua=mailto:d@shop.example")


@pytest.mark.parametrize(
    ("record", "complaint"),
    [
        ("p=reject; v=DMARC1", "start with v=DMARC1"),
        ("v=DMARC2; p=reject", "start with v=DMARC1"),
        ("; v=DMARC1; p=reject", "start with v=DMARC1"),
        ("v=DMARC1; p=reject; p=none", "appears twice"),
        ("v=DMARC1; p=reject; adkim=x", "adkim=x"),
        ("v=DMARC1; p=reject; aspf=strict", "aspf=strict"),
        ("v=DMARC1; p=reject; pct=101", "pct=101"),
        ("v=DMARC1; p=reject; pct=-1", "pct=-1"),
        ("v=DMARC1; p=reject; sp=maybe", "sp=maybe"),
        ("v=DMARC1; p=reject; rua=dmarc@shop.example", "rua"),
        ("v=DMARC1; p=reject; rua=mailto:a@b.example,,", "rua"),
        ("v=DMARC1; p=reject; fo=2", "fo=2"),
        ("v=DMARC1; p=reject; ri=soon", "ri=soon"),
        ("v=DMARC1; p=reject; rf=iodef", "rf=iodef"),
        ("v=DMARC1; p=reject; just words", "not a tag=value"),
        ("v=DMARC1; p", "not a tag=value"),
    ],
)
def test_malformed_records_are_refused_with_the_tag_named(record: str, complaint: str) -> None:
    with pytest.raises(DmarcSyntaxError, match=complaint.replace("+", r"\+")):
        dmarc.parse(record)


@pytest.mark.parametrize(
    ("domain", "organisation"),
    [
        ("shop.example.com", "example.com"),
        ("mail.shop.example.co.uk", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("co.uk", "co.uk"),
        ("News.Shop.Example.", "shop.example"),  # a name the list does not know: its last label is the suffix
        ("xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
    ],
)
def test_the_organisational_domain_comes_from_the_public_suffix_list(domain: str, organisation: str) -> None:
    assert dmarc.organisational_domain(domain) == organisation


def test_alignment_is_exact_when_strict_and_organisational_when_relaxed() -> None:
    assert dmarc.aligned("shop.example.com", "shop.example.com", "s")
    assert not dmarc.aligned("mail.shop.example.com", "shop.example.com", "s")
    assert dmarc.aligned("mail.shop.example.com", "shop.example.com", "r")
    assert dmarc.aligned("bounces.example.com", "shop.example.com", "r")
    assert not dmarc.aligned("platform.example.net", "shop.example.com", "r")
    assert not dmarc.aligned("a.example.co.uk", "b.co.uk", "r")  # a public suffix is no shared organisation


async def test_discovery_reads_the_domain_then_falls_back_to_the_organisational_domain() -> None:
    zone = Zone({
        "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject; sp=quarantine"]},
        "_dmarc.own.example.com": {"TXT": ["v=DMARC1; p=none"]},
    })  # fmt: skip
    own = await dmarc.discover(zone, "own.example.com")
    assert own.name == "_dmarc.own.example.com" and own.policy is not None and own.policy.p == "none"
    inherited = await dmarc.discover(zone, "shop.example.com")
    assert inherited.name == "_dmarc.example.com" and inherited.policy is not None
    assert inherited.policy.applied(subdomain=True) == "quarantine"
    assert zone.queries[-2:] == [("_dmarc.shop.example.com", "TXT"), ("_dmarc.example.com", "TXT")]
    nothing = await dmarc.discover(zone, "other.example.org")
    assert nothing.count == 0 and nothing.record is None


async def test_discovery_keeps_only_dmarc_records_and_reports_bad_ones() -> None:
    zone = Zone({
        "_dmarc.one.example": {"TXT": ["some verification text", "v=DMARC1; p=reject", "v=dmarc1; p=none"]},
        "_dmarc.upper.example": {"TXT": ["V=DMARC1; P=Reject"]},
        "_dmarc.two.example": {"TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]},
        "_dmarc.bad.example": {"TXT": ["v=DMARC1; p=rejekt"]},
        "_dmarc.bytes.example": {"TXT": ["v=DMARC1; p=reject; rua=mailto:caf\xe9@bad.example"]},
    })  # fmt: skip
    assert (await dmarc.discover(zone, "one.example")).policy == Policy(p="reject")  # DMARC1 is case-sensitive
    assert (await dmarc.discover(zone, "upper.example")).policy == Policy(p="reject")  # tag names are not
    two = await dmarc.discover(zone, "two.example")
    assert two.count == 2 and two.policy is None and "more than one" in two.error
    bad = await dmarc.discover(zone, "bad.example")
    assert bad.policy is None and "p=rejekt" in bad.error and bad.record == "v=DMARC1; p=rejekt"
    hostile = await dmarc.discover(zone, "bytes.example")
    assert hostile.policy is None and "not ASCII" in hostile.error


async def test_a_dns_failure_is_raised_for_the_caller_to_report() -> None:
    with pytest.raises(TemporaryDnsError):
        await dmarc.discover(Zone({}, failing=("_dmarc.shop.example",)), "shop.example")
