"""Our SPF evaluator against an independent one (pyspf, a test dependency), both asking the same
DNS server on loopback: for every record below they must reach the same result."""

from __future__ import annotations

from collections.abc import Iterator

import dns.resolver
import pytest
import spf as pyspf

from scriptmail.config import DeliverySettings
from scriptmail.domains import spf
from scriptmail.domains.lookup import DnsLookup
from tests.support.dns_server import DnsServer

# pyspf (2.0.14) still calls dnspython's query(), which warns in favour of resolve()
pytestmark = pytest.mark.filterwarnings("ignore:please use dns.resolver.resolve:DeprecationWarning")

ZONE = {
    ("_spf.platform.example.", "TXT"): ['"v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:5::/48 -all"'],
    ("soft.example.", "TXT"): ['"v=spf1 ip4:192.0.2.0/24 ~all"'],
    ("loop.example.", "TXT"): ['"v=spf1 include:loop2.example -all"'],
    ("loop2.example.", "TXT"): ['"v=spf1 include:loop.example -all"'],
    ("shop.example.", "MX"): ["10 mx.shop.example."],
    ("shop.example.", "A"): ["198.51.100.10"],
    ("mx.shop.example.", "A"): ["198.51.100.30"],
    ("web.shop.example.", "A"): ["198.51.100.20"],
    ("198.51.100.50.allow.shop.example.", "A"): ["127.0.0.2"],
    ("50.100.51.198.in-addr.arpa.", "PTR"): ["host.shop.example."],
    ("30.100.51.198.in-addr.arpa.", "PTR"): ["mx.elsewhere.example."],
    ("host.shop.example.", "A"): ["198.51.100.50"],
    ("mx.elsewhere.example.", "A"): ["198.51.100.30"],
    ("v6.shop.example.", "AAAA"): ["2001:db8:5::99"],
    **{(f"h{n}.shop.example.", "A"): ["192.0.2.200"] for n in range(12)},
}
NINE = " ".join(f"a:h{n}.shop.example" for n in range(9))
RECORDS = [
    "v=spf1 include:_spf.platform.example -all",
    "v=spf1 include:_spf.platform.example ~all",
    "v=spf1 mx a:web.shop.example include:_spf.platform.example ?all",
    "v=spf1 mx -all",
    "v=spf1 a/24 -all",
    "v=spf1 ip4:203.0.113.0/25 -ip4:203.0.113.0/24 ~all",
    "v=spf1 -ip4:203.0.113.10 include:_spf.platform.example -all",
    "v=spf1 include:soft.example -all",
    "v=spf1 include:soft.example",
    "v=spf1 redirect=_spf.platform.example",
    "v=spf1 ip4:198.51.100.1 redirect=soft.example",
    "v=spf1 ~all redirect=_spf.platform.example",
    "v=spf1 exists:%{i}.allow.shop.example -all",
    "v=spf1 ptr -all",
    "v=spf1 ptr:elsewhere.example ~all",
    "v=spf1 a:v6.shop.example//64 -all",
    "v=spf1 a:v6.shop.example -all",
    f"v=spf1 {NINE} include:_spf.platform.example -all",  # 10 DNS terms: allowed
    f"v=spf1 {NINE} a:h10.shop.example include:_spf.platform.example -all",  # 11: permerror where reached
    "v=spf1 a:void1.example a:void2.example a:void3.example include:_spf.platform.example -all",
    "v=spf1 include:loop.example -all",
    "v=spf1 include:nothing.example -all",
    "v=spf1 redirect=nothing.example",
    "v=spf1 include:_spf.platform.example foo:bar -all",
    "v=spf1 ip4:203.0.113.300 -all",
    "v=spf1 include:_spf.platform.example moo=cow -all",
    "v=spf1",
]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsServer]:
    server = DnsServer(dict(ZONE)).start()
    independent = dns.resolver.Resolver(configure=False)
    independent.nameservers = ["127.0.0.1"]
    independent.port = server.port
    monkeypatch.setattr(dns.resolver, "default_resolver", independent)  # pyspf asks dnspython's default resolver
    yield server
    server.stop()


@pytest.mark.parametrize("record", RECORDS)
@pytest.mark.parametrize("address", ["203.0.113.10", "198.51.100.30", "198.51.100.50", "2001:db8:5::1", "192.0.2.9"])
async def test_our_result_is_pyspfs(resolver: DnsServer, record: str, address: str) -> None:
    resolver.records[("shop.example.", "TXT")] = [f'"{record}"']
    lookup = DnsLookup(DeliverySettings(nameservers=["127.0.0.1"], dns_port=resolver.port))
    ours = await spf.check_host(lookup, address, "shop.example", "postmaster@shop.example", "out.platform.example")
    theirs, explanation = pyspf.check2(i=address, s="postmaster@shop.example", h="out.platform.example")
    assert str(ours.result) == theirs, (ours.reason, explanation)


async def test_two_records_and_none_agree(resolver: DnsServer) -> None:
    lookup = DeliverySettings(nameservers=["127.0.0.1"], dns_port=resolver.port)
    resolver.records[("shop.example.", "TXT")] = ['"v=spf1 -all"', '"v=spf1 +all"']
    assert str((await spf.check_host(DnsLookup(lookup), "192.0.2.1", "shop.example")).result) == "permerror"
    assert pyspf.check2(i="192.0.2.1", s="postmaster@shop.example", h="x.example")[0] == "permerror"
    resolver.records[("shop.example.", "TXT")] = ['"not spf"']
    assert str((await spf.check_host(DnsLookup(lookup), "192.0.2.1", "shop.example")).result) == "none"
    assert pyspf.check2(i="192.0.2.1", s="postmaster@shop.example", h="x.example")[0] == "none"
