"""What a customer is told about SPF and DMARC for a sending domain: the result, the record found,
the record to publish, and the advice in the hosting's language."""

from __future__ import annotations

import pytest

from scriptmail.config import Settings, load_settings
from scriptmail.domains import checks
from scriptmail.domains.checks import check_domain
from tests.domains.zone import Zone

PLATFORM_SPF = {"_spf.platform.example": {"TXT": ["v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:5::/48 -all"]}}


def settings(**domains: object) -> Settings:
    values: dict[str, object] = {"spf_include": "_spf.platform.example", "outbound_addresses": ["203.0.113.10", "2001:db8:5::10"]}
    values.update(domains)
    bounces = values.pop("bounce_domain", "")
    return load_settings(hostname="out.platform.example", domains=values, bounces={"domain": bounces})


async def run(records: dict[str, dict[str, list[str]]], dkim: str = "shop.example", **domains: object) -> checks.DomainChecks:
    return await check_domain("shop.example", settings(**domains), dkim, Zone({**PLATFORM_SPF, **records}))


async def test_a_domain_that_includes_the_platform_passes_both_checks() -> None:
    found = await run({
        "shop.example": {"TXT": ["v=spf1 mx include:_spf.platform.example -all"]},
        "_dmarc.shop.example": {"TXT": ["v=DMARC1; p=reject; rua=mailto:d@shop.example"]},
    })  # fmt: skip
    assert found.spf.result == "pass" and found.spf.publish is None
    assert found.spf.advice_text("en") == "The SPF record of shop.example authorises the platform's servers: nothing to do."
    assert found.dmarc.result == "pass" and found.dmarc.policy == "reject" and found.dmarc.aligned == "dkim"
    assert found.dmarc.as_json("en") == {
        "result": "pass",
        "name": "_dmarc.shop.example",
        "record": "v=DMARC1; p=reject; rua=mailto:d@shop.example",
        "policy": "reject",
        "aligned": "dkim",
        "publish": None,
        "advice": "Mail from the platform passes DMARC for shop.example: its DKIM signature by shop.example is aligned. "
        "Policy: p=reject.",
    }


async def test_no_records_at_all_gives_both_records_to_publish() -> None:
    found = await run({})
    assert found.spf.result == "none" and found.spf.record is None
    assert found.spf.publish == "v=spf1 include:_spf.platform.example ~all"
    assert "Publish this TXT record at shop.example: v=spf1 include:_spf.platform.example ~all" in found.spf.advice_text("en")
    assert found.dmarc.result == "none" and found.dmarc.publish == "v=DMARC1; p=none"
    assert found.dmarc.name == "_dmarc.shop.example" and found.dmarc.policy is None


@pytest.mark.parametrize(
    ("record", "result", "publish"),
    [
        ("v=spf1 mx -all", "fail", "v=spf1 mx include:_spf.platform.example -all"),
        ("v=spf1 mx ~all", "softfail", "v=spf1 mx include:_spf.platform.example ~all"),
        ("v=spf1 a mx", "neutral", "v=spf1 a mx include:_spf.platform.example"),
        ("v=spf1 a redirect=_spf.other.example", "fail", "v=spf1 a include:_spf.platform.example redirect=_spf.other.example"),
        ("v=spf1 -all include:_spf.platform.example", "fail", "v=spf1 include:_spf.platform.example -all"),
        ("v=spf1 ?include:_SPF.platform.example. ~all", "neutral", "v=spf1 include:_spf.platform.example ~all"),
    ],
)
async def test_a_record_that_leaves_the_platform_out_gets_the_include_before_all(record: str, result: str, publish: str) -> None:
    found = await run({"shop.example": {"TXT": [record], "A": ["198.51.100.1"], "MX": []}, "_spf.other.example": {"TXT": ["v=spf1 -all"]}})
    assert (found.spf.result, found.spf.record, found.spf.publish) == (result, record, publish)
    assert f"(result: {result}). Replace it with this TXT record: {publish}" in found.spf.advice_text("en")


async def test_a_record_that_passes_everyone_passes_with_a_warning() -> None:
    found = await run({"shop.example": {"TXT": ["v=spf1 mx +all"]}})
    assert found.spf.result == "pass" and found.spf.publish == "v=spf1 mx include:_spf.platform.example ~all"
    assert "authorises every server on the internet" in found.spf.advice_text("en")
    assert "autoriza a cualquier servidor" in found.spf.advice_text("es")


async def test_one_unauthorised_outbound_address_is_enough_to_fail() -> None:
    found = await run({"shop.example": {"TXT": ["v=spf1 ip4:203.0.113.0/24 ~all"]}})  # IPv4 only, the IPv6 address left out
    assert found.spf.result == "softfail"


async def test_without_outbound_addresses_the_record_must_name_the_include() -> None:
    included = await run({"shop.example": {"TXT": ["v=spf1 include:_spf.platform.example -all"]}}, outbound_addresses=[])
    assert included.spf.result == "pass"
    left_out = await run({"shop.example": {"TXT": ["v=spf1 mx -all"]}}, outbound_addresses=[])
    assert left_out.spf.result == "neutral" and left_out.spf.publish == "v=spf1 mx include:_spf.platform.example -all"
    unconfigured = await run({"shop.example": {"TXT": ["v=spf1 mx -all"]}}, outbound_addresses=[], spf_include="")
    assert "has not configured" in unconfigured.spf.advice_text("en") and unconfigured.spf.publish is None


async def test_without_an_include_name_the_addresses_are_published() -> None:
    found = await run({}, spf_include="")
    assert found.spf.publish == "v=spf1 ip4:203.0.113.10 ip6:2001:db8:5::10 ~all"


async def test_broken_spf_records_are_explained_not_patched() -> None:
    two = await run({"shop.example": {"TXT": ["v=spf1 mx -all", "v=spf1 include:_spf.platform.example -all"]}})
    assert two.spf.result == "permerror" and two.spf.publish is None
    assert "more than one SPF record" in two.spf.advice_text("en") and "v=spf1 mx -all | v=spf1 include" in str(two.spf.record)
    many = " ".join(f"a:h{n}.shop.example" for n in range(11))
    hosts = {f"h{n}.shop.example": {"A": ["192.0.2.1"]} for n in range(11)}
    too_many = await run({"shop.example": {"TXT": [f"v=spf1 {many} include:_spf.platform.example -all"]}, **hosts})
    assert too_many.spf.result == "permerror" and "needs too many DNS lookups (more than 10" in too_many.spf.advice_text("en")
    bad = await run({"shop.example": {"TXT": ["v=spf1 include:_spf.platform.example ip4:1.2.3 -all"]}})
    assert bad.spf.result == "permerror" and "'1.2.3' is not an IPv4 address" in bad.spf.advice_text("en")


async def test_a_dns_failure_is_a_temporary_error_of_each_check() -> None:
    zone = Zone(PLATFORM_SPF, failing=("shop.example", "_dmarc.shop.example"))
    found = await check_domain("shop.example", settings(), "shop.example", zone)
    assert found.spf.result == "temperror" and "did not answer" in found.spf.advice_text("en")
    assert found.dmarc.result == "temperror" and "SERVFAIL" in found.dmarc.advice_text("en")


async def test_mail_signed_by_the_platform_fails_a_reject_policy_and_says_what_to_do() -> None:
    found = await run(
        {"shop.example": {"TXT": ["v=spf1 include:_spf.platform.example -all"]}, "_dmarc.shop.example": {"TXT": ["v=DMARC1; p=reject"]}},
        dkim="sign.platform.example",
        bounce_domain="bounces.platform.example",
    )
    assert found.spf.result == "pass"
    assert found.dmarc.result == "fail" and found.dmarc.policy == "reject" and found.dmarc.aligned is None
    text = found.dmarc.advice_text("en")
    assert "signed with the platform's domain sign.platform.example" in text
    assert "envelope domain bounces.platform.example is not within shop.example" in text
    assert text.endswith("Receivers refuse such mail.")


async def test_spf_aligns_when_the_envelope_is_the_customers_own_domain() -> None:
    records = {"shop.example": {"TXT": ["v=spf1 include:_spf.platform.example -all"]}, "_dmarc.shop.example": {"TXT": ["v=DMARC1; p=quarantine"]}}
    found = await run(records, dkim="sign.platform.example")  # no VERP domain: the envelope is the sender's
    assert found.dmarc.result == "pass" and found.dmarc.aligned == "spf"
    strict = {**records, "_dmarc.shop.example": {"TXT": ["v=DMARC1; p=quarantine; aspf=s"]}}
    assert (await run(strict, dkim="sign.platform.example")).dmarc.result == "pass"  # the very same domain
    unauthorised = {**records, "shop.example": {"TXT": ["v=spf1 -all"]}}
    failed = await run(unauthorised, dkim="sign.platform.example")
    assert failed.dmarc.result == "fail" and "SPF does not pass for the envelope domain shop.example" in failed.dmarc.advice_text("en")
    assert failed.dmarc.advice_text("en").endswith("Receivers put such mail in the spam folder.")


async def test_a_verp_bounce_domain_of_the_same_organisation_aligns_only_when_relaxed() -> None:
    records = {
        "shop.example": {"TXT": ["v=spf1 -all"]},
        "bounces.shop.example": {"TXT": ["v=spf1 include:_spf.platform.example -all"]},
        "_dmarc.shop.example": {"TXT": ["v=DMARC1; p=reject; aspf=r"]},
    }
    relaxed = await run(records, dkim="sign.platform.example", bounce_domain="bounces.shop.example")
    assert relaxed.dmarc.result == "pass" and relaxed.dmarc.aligned == "spf"
    unknown_addresses = await run(records, dkim="sign.platform.example", bounce_domain="bounces.shop.example", outbound_addresses=[])
    assert unknown_addresses.dmarc.result == "pass"  # the bounce domain's record names the platform's include
    records["_dmarc.shop.example"] = {"TXT": ["v=DMARC1; p=reject; aspf=s"]}
    strict = await run(records, dkim="sign.platform.example", bounce_domain="bounces.shop.example")
    assert strict.dmarc.result == "fail" and "strict SPF alignment (aspf=s)" in strict.dmarc.advice_text("en")


async def test_strict_dkim_alignment_refuses_a_parent_domains_signature() -> None:
    records = {"_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject; sp=none; adkim=s"]}}
    found = await check_domain("news.example.com", settings(), "example.com", Zone(records))
    assert found.dmarc.result == "fail" and found.dmarc.name == "_dmarc.example.com"
    assert found.dmarc.policy == "none"  # sp= governs the subdomain
    assert "strict DKIM alignment (adkim=s)" in found.dmarc.advice_text("en")
    records["_dmarc.example.com"] = {"TXT": ["v=DMARC1; p=reject; adkim=r"]}
    relaxed = await check_domain("news.example.com", settings(), "example.com", Zone(records))
    assert relaxed.dmarc.result == "pass" and relaxed.dmarc.policy == "reject"


async def test_broken_dmarc_records_are_no_policy_with_a_fix() -> None:
    bad = await run({"_dmarc.shop.example": {"TXT": ["v=DMARC1; p=rejected"]}})
    assert bad.dmarc.result == "none" and bad.dmarc.record == "v=DMARC1; p=rejected" and bad.dmarc.publish == "v=DMARC1; p=none"
    assert "is invalid (p=rejected: p must be none, quarantine or reject)" in bad.dmarc.advice_text("en")
    two = await run({"_dmarc.shop.example": {"TXT": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]}})
    assert two.dmarc.result == "none" and "Keep only one" in two.dmarc.advice_text("en")
    no_p = await run({"_dmarc.shop.example": {"TXT": ["v=DMARC1; rua=mailto:d@shop.example"]}})
    assert no_p.dmarc.result == "pass" and no_p.dmarc.policy == "none" and "no valid p= tag" in no_p.dmarc.advice_text("en")


async def test_internationalised_names_are_checked_in_punycode_and_bad_names_refused() -> None:
    zone = Zone({**PLATFORM_SPF, "xn--bcher-kva.example": {"TXT": ["v=spf1 include:_spf.platform.example -all"]}})
    found = await check_domain("Bücher.Example.", settings(), "bücher.example", zone)
    assert found.spf.result == "pass" and found.spf.domain == "xn--bcher-kva.example"
    assert found.dmarc.aligned is None and ("_dmarc.xn--bcher-kva.example", "TXT") in zone.queries
    for bad in ("", "localhost", "a b.example", "shop..example", "x" * 64 + ".example", "-shop.example", "shop.exa\nmple", "shop.example\x00"):
        with pytest.raises(ValueError, match="is not a domain name"):
            await check_domain(bad, settings(), "shop.example", Zone({}))
    with pytest.raises(ValueError):
        await check_domain("shop.example", settings(), "not a domain", Zone({}))


@pytest.mark.parametrize(
    ("language", "spf_words", "dmarc_words"),
    [
        ("es", "no tiene registro SPF", "no tiene registro DMARC"),
        ("fr", "n'a pas d'enregistrement SPF", "n'a pas d'enregistrement DMARC"),
        ("en", "has no SPF record", "has no DMARC record"),
        ("de", "hat keinen SPF-Eintrag", "hat keinen DMARC-Eintrag"),
        ("ja", "has no SPF record", "has no DMARC record"),  # a language without catalogue: English
    ],
)
async def test_the_advice_is_in_the_hostings_language(language: str, spf_words: str, dmarc_words: str) -> None:
    found = await run({})
    assert spf_words in found.spf.advice_text(language)
    assert dmarc_words in found.dmarc.advice_text(language)
    assert "v=spf1 include:_spf.platform.example ~all" in found.spf.advice_text(language)  # records are never translated
    assert found.spf.as_json(language)["advice"] == found.spf.advice_text(language)
    shown = found.as_json(language)
    assert shown["spf"] == {"result": "none", "record": None, "publish": "v=spf1 include:_spf.platform.example ~all", "advice": found.spf.advice_text(language)}
    assert shown["dmarc"]["policy"] is None and shown["dmarc"]["advice"] == found.dmarc.advice_text(language)
