"""Does mail from the platform pass SPF and DMARC for a customer's domain, and what must the customer
publish or fix? `check_domain()` does the lookups; `spf_check()` and `dmarc_check()` decide (pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name

from scriptmail.config import DomainsSettings, Settings
from scriptmail.domains import advice, dmarc, spf
from scriptmail.domains.advice import Sentence
from scriptmail.domains.lookup import DnsLookup

# An address of TEST-NET-1 (RFC 5737): evaluating the record for it reads the record and its errors
# when the platform has configured no outbound address to evaluate.
_PROBE = "192.0.2.1"
DMARC_TO_PUBLISH = "v=DMARC1; p=none"


@dataclass(frozen=True, slots=True)
class SpfCheck:
    """Whether `domain`'s SPF record authorises the platform's addresses. `record` is what was found,
    `publish` the whole record to publish in its place (None: nothing to publish)."""

    domain: str
    result: spf.Result
    record: str | None
    publish: str | None
    advice: tuple[Sentence, ...]
    reason: str = ""

    def advice_text(self, language: str) -> str:
        return advice.render(self.advice, language)

    def as_json(self, language: str) -> dict[str, Any]:
        return {"result": str(self.result), "record": self.record, "publish": self.publish, "advice": self.advice_text(language)}


@dataclass(frozen=True, slots=True)
class DmarcCheck:
    """Whether platform mail from `domain` passes DMARC. `name` is where the record was looked for or
    found, `policy` the policy applied to the domain (None without a valid record), `aligned` which
    identifier aligns ("dkim", "spf" or None)."""

    domain: str
    result: dmarc.Result
    name: str
    record: str | None
    policy: str | None
    publish: str | None
    advice: tuple[Sentence, ...]
    aligned: str | None = None

    def advice_text(self, language: str) -> str:
        return advice.render(self.advice, language)

    def as_json(self, language: str) -> dict[str, Any]:
        return {
            "result": str(self.result),
            "name": self.name,
            "record": self.record,
            "policy": self.policy,
            "aligned": self.aligned,
            "publish": self.publish,
            "advice": self.advice_text(language),
        }


@dataclass(frozen=True, slots=True)
class DomainChecks:
    spf: SpfCheck
    dmarc: DmarcCheck

    def as_json(self, language: str) -> dict[str, Any]:
        """The "spf" and "dmarc" members of `domain show --json` and of the API's answer."""
        return {"spf": self.spf.as_json(language), "dmarc": self.dmarc.as_json(language)}


async def check_domain(
    domain: str, settings: Settings, dkim_domain: str, lookup: spf.Lookup | None = None
) -> DomainChecks:
    """Look up and judge `domain`'s SPF and DMARC records for mail the platform sends as it.

    `domain` is the From domain (Unicode or punycode); `dkim_domain` is the d= its mail
    will carry: the domain itself once its DKIM key is verified, else the platform's signing
    domain. Call it as `await check_domain("shop.example", settings, "shop.example")` (or
    `asyncio.run(...)` from the CLI), then read `.spf.result`, `.spf.record`,
    `.spf.advice_text("es")`, `.dmarc.result`, `.dmarc.policy`, or `.as_json(lang)` for
    `{"spf": {"result", "record", "publish", "advice"}, "dmarc": {"result", "name", "record",
    "policy", "aligned", "publish", "advice"}}`. Never raises for DNS trouble (that is result
    temperror); a malformed name raises ValueError before any lookup.
    """
    name = ascii_domain(domain)
    dkim_domain = ascii_domain(dkim_domain)
    lookup = lookup or DnsLookup(settings.delivery)
    evaluations = await _evaluate_spf(lookup, name, settings)
    spf_result = spf_check(name, evaluations, settings.domains)
    envelope = settings.bounces.domain or name
    if envelope == name:
        envelope_passes = spf_result.result == spf.Result.PASS
    else:
        evaluations = await _evaluate_spf(lookup, envelope, settings)
        envelope_passes = spf_check(envelope, evaluations, settings.domains).result == spf.Result.PASS
    try:
        found: dmarc.Found | spf.TemporaryDnsError = await dmarc.discover(lookup, name)
    except spf.TemporaryDnsError as error:
        found = error
    return DomainChecks(spf_result, dmarc_check(name, found, dkim_domain, envelope, envelope_passes))


def ascii_domain(domain: str) -> str:
    """A domain name as the DNS asks for it: lower case, punycode (IDNA 2008), no final dot;
    ValueError when it is not a domain name of two labels or more."""
    name = domain.strip().rstrip(".").lower()
    try:
        if not name.isascii():
            name = dns.name.from_unicode(name).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError):
        raise ValueError(f"{domain!r} is not a domain name") from None
    if not spf.valid_domain(name):
        raise ValueError(f"{domain!r} is not a domain name")
    return name


async def _evaluate_spf(lookup: spf.Lookup, domain: str, settings: Settings) -> list[spf.Evaluation]:
    addresses = settings.domains.outbound_addresses or [_PROBE]
    return [
        await spf.check_host(lookup, address, domain, f"postmaster@{domain}", settings.hostname)
        for address in addresses
    ]


def spf_check(domain: str, evaluations: list[spf.Evaluation], settings: DomainsSettings) -> SpfCheck:
    """Judge the SPF evaluations of the platform's outbound addresses (one each, in order)."""
    values = {"domain": domain, "include": settings.spf_include}
    worst = _worst(evaluations)
    record = next((e.record for e in evaluations if e.record is not None), None)
    if worst.result == spf.Result.TEMPERROR:
        return SpfCheck(domain, worst.result, record, None, (Sentence(advice.SPF_TEMPORARY, {**values, "reason": worst.reason}),), worst.reason)
    if not settings.spf_include and not settings.outbound_addresses:
        return SpfCheck(domain, worst.result, record, None, (Sentence(advice.SPF_UNCONFIGURED, values),), worst.reason)
    if worst.result == spf.Result.NONE:
        publish = f"v=spf1 {' '.join(_platform_terms(settings))} ~all"
        return SpfCheck(domain, worst.result, None, publish, (Sentence(advice.SPF_NONE, {**values, "record": publish}),), worst.reason)
    assert record is not None  # every other result comes from a record
    if worst.result == spf.Result.PERMERROR:
        if worst.problem == spf.Problem.RECORDS:
            sentence = Sentence(advice.SPF_TWO, {**values, "include": _platform_terms(settings)[0]})
        elif worst.problem == spf.Problem.LOOKUPS:
            sentence = Sentence(advice.SPF_TOO_MANY, {**values, "reason": worst.reason})
        else:
            sentence = Sentence(advice.SPF_INVALID, {**values, "reason": worst.reason})
        return SpfCheck(domain, worst.result, record, None, (sentence,), worst.reason)
    authorised = worst.result == spf.Result.PASS if settings.outbound_addresses else _names_include(record, settings.spf_include)
    if authorised and _open(record):
        publish = with_platform(" ".join(_closed(part) for part in record.split(" ")), settings)
        sentence = Sentence(advice.SPF_OPEN, {**values, "record": publish})
        return SpfCheck(domain, spf.Result.PASS, record, publish, (sentence,), worst.reason)
    if authorised:
        return SpfCheck(domain, spf.Result.PASS, record, None, (Sentence(advice.SPF_PASS, values),), worst.reason)
    result = worst.result if settings.outbound_addresses else spf.Result.NEUTRAL
    publish = with_platform(record, settings)
    sentence = Sentence(advice.SPF_ADD, {**values, "result": str(result), "record": publish})
    return SpfCheck(domain, result, record, publish, (sentence,), worst.reason)


_ORDER = [spf.Result.TEMPERROR, spf.Result.PERMERROR, spf.Result.NONE, spf.Result.FAIL, spf.Result.SOFTFAIL, spf.Result.NEUTRAL, spf.Result.PASS]


def _worst(evaluations: list[spf.Evaluation]) -> spf.Evaluation:
    return min(evaluations, key=lambda evaluation: _ORDER.index(evaluation.result))


def _platform_terms(settings: DomainsSettings) -> list[str]:
    """What authorises the platform: its include name, else its addresses one by one."""
    if settings.spf_include:
        return [f"include:{settings.spf_include}"]
    return [("ip4:" if ":" not in address else "ip6:") + address for address in settings.outbound_addresses]


def _open(record: str) -> bool:
    """Does the record pass every address (+all)?"""
    return any(term.name == "all" and term.qualifier == spf.Result.PASS for term in spf.parse(record).terms)


def _closed(part: str) -> str:
    return "~all" if part.lower() in ("all", "+all") else part


def _names_include(record: str, include: str) -> bool:
    """Without addresses to evaluate: does the record pass-include the platform before any `all`?"""
    for term in spf.parse(record).terms:
        if term.name == "all":
            return False
        if term.name == "include" and term.argument.lower().rstrip(".") == include and term.qualifier == spf.Result.PASS:
            return True
    return False


def with_platform(record: str, settings: DomainsSettings) -> str:
    """The record with the platform's terms added before its `all` (or before its modifiers, or at
    its end), and any earlier mention of them moved there."""
    terms = _platform_terms(settings)
    parts = [part for part in record.split(" ") if part]
    kept = [parts[0]] + [part for part in parts[1:] if part.lstrip("+-~?").lower().rstrip(".") not in terms]
    position = len(kept)
    for index, part in enumerate(kept[1:], start=1):
        name = part.lstrip("+-~?").split(":")[0].split("/")[0].lower()
        if name == "all" or "=" in part.split(":")[0]:
            position = index
            break
    return " ".join(kept[:position] + terms + kept[position:])


def dmarc_check(
    domain: str, found: dmarc.Found | spf.TemporaryDnsError, dkim_domain: str, envelope: str, envelope_passes: bool
) -> DmarcCheck:
    """Judge what DMARC discovery found for mail with From `domain`, DKIM d=`dkim_domain` (the
    signature is assumed valid: the platform makes it) and SPF identity `envelope`."""
    values = {"domain": domain, "signing": dkim_domain, "envelope": envelope}
    if isinstance(found, spf.TemporaryDnsError):
        name = f"_dmarc.{domain}"
        sentence = Sentence(advice.DMARC_TEMPORARY, {**values, "name": name, "reason": str(found)})
        return DmarcCheck(domain, dmarc.Result.TEMPERROR, name, None, None, None, (sentence,))
    values["name"] = found.name
    if found.count == 0:
        publish_at = f"_dmarc.{domain}"
        sentence = Sentence(advice.DMARC_NONE, {**values, "name": publish_at, "record": DMARC_TO_PUBLISH})
        return DmarcCheck(domain, dmarc.Result.NONE, publish_at, None, None, DMARC_TO_PUBLISH, (sentence,))
    if found.count > 1:
        return DmarcCheck(domain, dmarc.Result.NONE, found.name, found.record, None, None, (Sentence(advice.DMARC_TWO, values),))
    if found.policy is None:
        sentence = Sentence(advice.DMARC_INVALID, {**values, "reason": found.error, "record": DMARC_TO_PUBLISH})
        return DmarcCheck(domain, dmarc.Result.NONE, found.name, found.record, None, DMARC_TO_PUBLISH, (sentence,))
    policy = found.policy
    subdomain = found.name != f"_dmarc.{domain}"
    applied = policy.applied(subdomain)
    values["policy"] = f"p={applied}"
    notes = (Sentence(advice.DMARC_NO_P, values),) if policy.p_missing else ()
    if dmarc.aligned(dkim_domain, domain, policy.adkim):
        sentence = Sentence(advice.DMARC_PASS_DKIM, values)
        return DmarcCheck(domain, dmarc.Result.PASS, found.name, found.record, applied, None, (sentence, *notes), "dkim")
    if envelope_passes and dmarc.aligned(envelope, domain, policy.aspf):
        sentence = Sentence(advice.DMARC_PASS_SPF, values)
        return DmarcCheck(domain, dmarc.Result.PASS, found.name, found.record, applied, None, (sentence, *notes), "spf")
    why = [Sentence(advice.DMARC_FAIL, values)]
    if dmarc.aligned(dkim_domain, domain, "r"):
        why.append(Sentence(advice.DMARC_STRICT_DKIM, values))
    else:
        why.append(Sentence(advice.DMARC_UNSIGNED, values))
    if not dmarc.aligned(envelope, domain, "r"):
        why.append(Sentence(advice.DMARC_SPF_FOREIGN, values))
    elif not envelope_passes:
        why.append(Sentence(advice.DMARC_SPF_FAILS, values))
    else:
        why.append(Sentence(advice.DMARC_STRICT_SPF, values))
    why.append(Sentence(advice.EFFECTS[applied], values))
    return DmarcCheck(domain, dmarc.Result.FAIL, found.name, found.record, applied, None, (*why, *notes))
