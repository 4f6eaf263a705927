"""Routing against a real DNS server on loopback: MX order, implicit MX, null MX, NXDOMAIN, routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scriptmail.config import DeliverySettings
from scriptmail.delivery.routing import Hop, RouteError, Router
from tests.support.dns_server import DnsServer


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer(
        {
            ("mail.test.", "MX"): ["20 backup.mail.test.", "10 primary.mail.test."],
            ("primary.mail.test.", "A"): ["127.0.0.1"],
            ("backup.mail.test.", "A"): ["127.0.0.2"],
            ("bare.test.", "A"): ["127.0.0.3"],
            ("nomail.test.", "MX"): ["0 ."],
            ("broken.test.", "TXT"): ['"no mail here"'],
        }
    ).start()
    yield server
    server.stop()


def router(server: DnsServer, **settings: object) -> Router:
    return Router(DeliverySettings(nameservers=["127.0.0.1"], dns_port=server.port, **settings))


async def test_mx_hosts_come_in_preference_order(dns_server: DnsServer) -> None:
    hops = await router(dns_server).hops("mail.test")
    assert hops == [Hop("primary.mail.test", 25), Hop("backup.mail.test", 25)]
    assert await router(dns_server).addresses("backup.mail.test") == ["127.0.0.2"]


async def test_domain_without_mx_uses_its_address(dns_server: DnsServer) -> None:
    assert await router(dns_server).hops("bare.test") == [Hop("bare.test", 25)]


@pytest.mark.parametrize("domain", ["nomail.test", "missing.test", "broken.test"])
async def test_undeliverable_domains_are_permanent_errors(dns_server: DnsServer, domain: str) -> None:
    with pytest.raises(RouteError) as error:
        await router(dns_server).hops(domain)
    assert error.value.permanent and error.value.code == 550


async def test_unreachable_dns_is_a_temporary_error() -> None:
    silent = Router(DeliverySettings(nameservers=["127.0.0.1"], dns_port=9))  # nothing listens there
    silent._resolver.lifetime = 1.0
    with pytest.raises(RouteError) as error:
        await silent.hops("mail.test")
    assert not error.value.permanent and error.value.code == 451


async def test_static_routes_win_over_relay_host_and_dns(dns_server: DnsServer) -> None:
    configured = router(dns_server, routes={"mail.test": "127.0.0.9:2600"}, relay_host="relay.test:587")
    assert await configured.hops("mail.test") == [Hop("127.0.0.9", 2600)]
    assert await configured.hops("other.test") == [Hop("relay.test", 587)]
    assert dns_server.queries == []


async def test_answers_are_cached(dns_server: DnsServer) -> None:
    resolver = router(dns_server)
    await resolver.hops("mail.test")
    await resolver.hops("mail.test")
    assert dns_server.queries.count(("mail.test.", "MX")) == 1


async def test_an_idn_domain_is_looked_up_by_its_a_label(dns_server: DnsServer) -> None:
    server = DnsServer({("xn--bcher-kva.test.", "MX"): ["10 mx.xn--bcher-kva.test."]}).start()
    try:
        resolver = router(server)
        expected = [Hop("mx.xn--bcher-kva.test", 25)]
        assert await resolver.hops("bücher.test") == expected
        assert await resolver.hops("BÜCHER.test") == expected  # from the cache: one spelling, one entry
        assert await resolver.hops("xn--bcher-kva.test") == expected
        assert server.queries == [("xn--bcher-kva.test.", "MX")]
    finally:
        server.stop()


async def test_a_route_written_in_unicode_serves_the_a_label_and_a_bad_name_is_permanent(dns_server: DnsServer) -> None:
    configured = router(dns_server, routes={"bücher.test": "127.0.0.9:2600"})
    assert await configured.hops("xn--bcher-kva.test") == [Hop("127.0.0.9", 2600)]
    with pytest.raises(RouteError) as error:
        await configured.hops("раypal.test")
    assert error.value.permanent and "mixes scripts" in str(error.value)
    assert dns_server.queries == []
