"""Looking up the DKIM records of sending domains (dnspython, through `delivery.nameservers`) and
recording what they mean; a timeout or SERVFAIL is a temporary finding that changes no state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver
from sqlalchemy import Connection, Engine

from scriptmail.config import Settings
from scriptmail.domains.answers import Finding, Verdict, judge
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.records import record_name
from scriptmail.store import domains as store

log = logging.getLogger(__name__)

Write = Callable[[Callable[[Connection], Any]], Awaitable[Any]]


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    delivery = settings.delivery
    resolver = dns.asyncresolver.Resolver(configure=not delivery.nameservers)
    if delivery.nameservers:
        resolver.nameservers = list(delivery.nameservers)
    resolver.port = delivery.dns_port
    resolver.timeout = settings.domains.dns_timeout
    resolver.lifetime = settings.domains.dns_timeout
    return resolver


async def lookup(resolver: dns.asyncresolver.Resolver, name: str, algorithm: Algorithm, public: str) -> Verdict:
    """What DNS holds at `name` now, judged against our key."""
    try:
        answer = await resolver.resolve(name + ".", "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return judge(name, None, algorithm, public)
    except dns.exception.Timeout:
        return Verdict(Finding.TEMPORARY, f"the DNS lookup of {name} timed out; it is tried again later")
    except dns.resolver.NoNameservers:
        return Verdict(Finding.TEMPORARY, f"the DNS servers failed to answer for {name} (SERVFAIL); it is tried again later")
    except dns.exception.DNSException as error:
        return Verdict(Finding.TEMPORARY, f"the DNS lookup of {name} failed ({error.__class__.__name__}); it is tried again later")
    return judge(name, [list(rdata.strings) for rdata in answer], algorithm, public)


async def check(engine: Engine, write: Write, settings: Settings, now: float, domain: str | None = None) -> dict[str, str]:
    """Check every key DNS should hold (of one domain, or all); the domains' new states."""
    with engine.connect() as connection:
        keys = store.keys_to_check(connection, domain)
    resolver = make_resolver(settings)
    states: dict[str, str] = {}
    for key in keys:
        name = record_name(key["selector"], key["domain"])
        verdict = await lookup(resolver, name, Algorithm(key["algorithm"]), key["public_key"])
        state = await write(
            lambda c, key=key, verdict=verdict: store.record_check(c, key["id"], verdict, now, settings.domains.rotation_overlap)
        )
        if state is not None:
            states[key["domain"]] = state
        if not verdict.ok:
            log.info("DKIM record %s: %s (%s)", name, verdict.finding.value, verdict.reason)
    await write(lambda c: store.retire_keys(c, now))
    return states
