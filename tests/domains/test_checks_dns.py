"""The SPF and DMARC checks of a sending domain end to end: dnspython asks a real DNS server on
loopback, including one that fails (SERVFAIL), one that never answers, and hostile answers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from scriptmail.config import Settings, load_settings
from scriptmail.domains.checks import check_domain
from scriptmail.domains.lookup import DnsLookup
from tests.support.dns_server import DnsServer

PLATFORM = {
    ("_spf.platform.example.", "TXT"): ['"v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:5::/48 -all"'],
    ("bounces.platform.example.", "TXT"): ['"v=spf1 include:_spf.platform.example -all"'],
}


def strings(text: str) -> str:
    """A TXT value in zone-file form, split into strings of at most 255 octets."""
    return " ".join(f'"{text[start:start + 255]}"' for start in range(0, len(text), 255))


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[DnsServer] = []

    def start(records: dict[tuple[str, str], list[str]], failures: dict[str, str] | None = None) -> DnsServer:
        server = DnsServer({**PLATFORM, **records}).start()
        server.failures.update(failures or {})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def settings(server: DnsServer, bounce_domain: str = "") -> Settings:
    return load_settings(
        hostname="out.platform.example",
        delivery={"nameservers": ["127.0.0.1"], "dns_port": server.port},
        domains={"spf_include": "_spf.platform.example", "outbound_addresses": ["203.0.113.10", "2001:db8:5::10"]},
        bounces={"domain": bounce_domain},
    )


async def test_a_customer_who_published_everything_passes_through_a_real_resolver(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve({
        ("shop.example.", "TXT"): ['"v=spf1 mx include:mailer.shop.example -all"', '"site-verification=abc"'],
        ("shop.example.", "MX"): ["10 mx.shop.example."],
        ("mx.shop.example.", "A"): ["198.51.100.7"],
        ("mailer.shop.example.", "TXT"): ['"v=spf1 include:_spf.platform.example ~all"'],
        ("_dmarc.shop.example.", "TXT"): ['"v=DMARC1; p=reject; rua=mailto:dmarc@shop.example"'],
    })  # fmt: skip
    found = await check_domain("shop.example", settings(server, "bounces.platform.example"), "shop.example")
    assert found.spf.result == "pass" and found.spf.record == "v=spf1 mx include:mailer.shop.example -all"
    assert found.dmarc.result == "pass" and found.dmarc.policy == "reject" and found.dmarc.aligned == "dkim"
    # each name was asked once, though two outbound addresses were evaluated (one check, one cache)
    assert server.queries.count(("shop.example.", "TXT")) == 1
    assert ("_spf.platform.example.", "TXT") in server.queries and ("bounces.platform.example.", "TXT") in server.queries


async def test_no_records_and_a_parent_policy_through_the_organisational_domain(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve({
        ("shop.example.co.uk.", "A"): ["198.51.100.1"],
        ("_dmarc.example.co.uk.", "TXT"): ['"v=DMARC1; p=quarantine; sp=reject"'],
    })  # fmt: skip
    found = await check_domain("shop.example.net", settings(server), "sign.platform.example")
    assert found.spf.result == "none" and found.spf.publish == "v=spf1 include:_spf.platform.example ~all"
    assert found.dmarc.result == "none" and found.dmarc.publish == "v=DMARC1; p=none"
    assert ("_dmarc.shop.example.net.", "TXT") in server.queries and ("_dmarc.example.net.", "TXT") in server.queries
    # shop.example.co.uk publishes no DMARC record: the organisation's, with its sp=, applies
    inherited = await check_domain("shop.example.co.uk", settings(server), "sign.platform.example")
    assert inherited.dmarc.name == "_dmarc.example.co.uk" and inherited.dmarc.policy == "reject"
    assert inherited.dmarc.result == "fail" and "Receivers refuse such mail." in inherited.dmarc.advice_text("en")
    own = await check_domain("shop.example.co.uk", settings(server), "example.co.uk")  # signed by the organisation
    assert own.dmarc.result == "pass" and own.dmarc.aligned == "dkim"


async def test_servfail_is_a_temporary_error_for_each_check(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(
        {("shop.example.", "TXT"): ['"v=spf1 include:down.example -all"']},
        {"down.example.": "servfail", "_dmarc.shop.example.": "servfail"},
    )
    found = await check_domain("shop.example", settings(server), "shop.example")
    assert found.spf.result == "temperror" and found.spf.record == "v=spf1 include:down.example -all"
    assert "SERVFAIL" in found.spf.reason
    assert found.dmarc.result == "temperror" and "no se repetirá" not in found.dmarc.advice_text("es")
    assert "se repetirá más tarde" in found.dmarc.advice_text("es")


async def test_a_server_that_never_answers_is_a_temporary_error_in_bounded_time(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve({}, {"shop.example.": "drop", "_dmarc.shop.example.": "drop"})
    config = settings(server)
    started = time.monotonic()
    found = await check_domain("shop.example", config, "shop.example", DnsLookup(config.delivery, timeout=0.3))
    assert time.monotonic() - started < 5
    assert found.spf.result == "temperror" and "did not answer in time" in found.spf.reason
    assert found.dmarc.result == "temperror"


async def test_a_check_whose_lookups_take_too_long_stops_with_a_temporary_error(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve({("shop.example.", "TXT"): ['"v=spf1 include:_spf.platform.example -all"']})
    config = settings(server)
    found = await check_domain("shop.example", config, "shop.example", DnsLookup(config.delivery, budget=0))
    assert found.spf.result == "temperror" and "took too long" in found.spf.reason
    assert found.dmarc.result == "temperror" and server.queries == []


async def test_a_long_record_in_many_strings_comes_over_tcp_and_is_evaluated(serve) -> None:  # type: ignore[no-untyped-def]
    filler = " ".join(f"ip4:198.51.{n // 250}.{n % 250}" for n in range(150))  # ~3 KB: too big for UDP
    record = f"v=spf1 {filler} include:_spf.platform.example -all"
    server = serve({("shop.example.", "TXT"): [strings(record)]})
    found = await check_domain("shop.example", settings(server), "shop.example")
    assert found.spf.result == "pass" and found.spf.record == record
    assert ("shop.example.", "TXT") in server.tcp_queries  # the UDP answer was truncated


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (strings("v=spf1 " + "ip4:192.0.2.1 " * 2000 + "-all"), "bytes long"),  # ~28 KB in 110 strings
        ('"v=spf1 include:_spf.platform.example caf\\233 -all"', "not ASCII"),
        ('"v=spf1 include:_spf.platform.example\\010-all"', "control characters"),
        # strings are joined without a space: this names the domain "_spf.platform.example-all"
        ('"v=spf1 include:_spf.platform.example" "-all"', "include:_spf.platform.example-all: no SPF record there"),
    ],
)
async def test_hostile_spf_answers_are_permerrors_with_the_record_shown(serve, value: str, complaint: str) -> None:  # type: ignore[no-untyped-def]
    server = serve({("shop.example.", "TXT"): [value]})
    found = await check_domain("shop.example", settings(server), "shop.example")
    assert found.spf.result == "permerror" and complaint in found.spf.reason
    assert found.spf.record is not None and found.spf.record.isprintable() and len(found.spf.record) <= 4100
    assert found.spf.publish is None and found.spf.advice_text("fr")


async def test_many_txt_records_and_hostile_dmarc_answers(serve) -> None:  # type: ignore[no-untyped-def]
    noise = [f'"verification-{n}={"x" * 200}"' for n in range(60)]
    server = serve({
        ("shop.example.", "TXT"): [*noise, '"v=spf1 include:_spf.platform.example -all"'],
        ("_dmarc.shop.example.", "TXT"): ['"v=DMARC1; p=reject; rua=mailto:r\\195\\169@shop.example"'],
        ("_dmarc.two.example.", "TXT"): ['"v=DMARC1; p=none"', '"v=DMARC1; p=reject"'],
    })  # fmt: skip
    found = await check_domain("shop.example", settings(server), "shop.example")
    assert found.spf.result == "pass"  # found among 61 records (a 13 KB answer, over TCP)
    assert found.dmarc.result == "none" and "not ASCII" in found.dmarc.advice_text("en")
    assert found.dmarc.record is not None and found.dmarc.record.isascii()
    two = await check_domain("two.example", settings(server), "two.example")
    assert two.dmarc.result == "none" and "more than one DMARC record" in two.dmarc.advice_text("en")
