"""Which endpoint URLs and addresses are refused (pure)."""

from __future__ import annotations

import ipaddress

import pytest

from scriptmail.webhooks.addresses import UrlRefused, parse_networks, parse_url, refusal
from scriptmail.webhooks.retry import next_attempt, success


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
     "100.64.0.1", "0.0.0.0", "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "::ffff:127.0.0.1", "224.0.0.1",
     "::ffff:10.0.0.1"],
)  # fmt: skip
def test_the_platforms_own_networks_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_operator_may_allow_a_private_network() -> None:
    allowed = parse_networks(["127.0.0.0/8", "fd00::/8"])
    assert refusal(ipaddress.ip_address("127.0.0.5"), allowed) is None
    assert refusal(ipaddress.ip_address("fd00::5"), allowed) is None
    assert "private" in refusal(ipaddress.ip_address("10.0.0.1"), allowed)
    with pytest.raises(ValueError, match="not a network"):
        parse_networks(["localhost"])


@pytest.mark.parametrize(
    "url",
    ["", "ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http://", "https://user:pw@example.com/",
     "https://example.com:99999/", "https://example.com:0/", "https://exa mple.com/", "https://example.com/\r\nX: y",
     "javascript:alert(1)", "https://" + "a" * 2000 + ".com/", "//example.com/", "http://[::1/"],
)  # fmt: skip
def test_malformed_or_hostile_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        parse_url(url)
    assert str(refused.value)


def test_a_url_keeps_its_path_query_and_host_header() -> None:
    target = parse_url("https://hooks.example.com:8443/in?x=1")
    assert (target.host, target.port, target.path, target.host_header) == ("hooks.example.com", 8443, "/in?x=1", "hooks.example.com:8443")
    assert target.url_for(ipaddress.ip_address("2001:db8::1")) == "https://[2001:db8::1]:8443/in?x=1"
    assert parse_url("http://example.com").host_header == "example.com"


def test_retries_grow_and_stop_24_hours_after_the_event() -> None:
    delays = (5, 300, 1800, 7200, 18000, 36000)
    created = 1000.0
    now, times = created, []
    attempts = 0
    while (later := next_attempt(attempts + 1, created, now, delays, 86400)) is not None:
        attempts += 1
        times.append(later - now)
        now = later
    assert times[:6] == [5, 300, 1800, 7200, 18000, 36000]
    assert now == created + 86400 and attempts == 7  # 8 attempts in all, the last one at 24 h
    assert success(200) and success(204) and not success(307) and not success(500) and not success(None)
