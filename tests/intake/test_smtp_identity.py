"""Who a client is: AUTH needs TLS except on loopback; source networks name a hosting."""

from __future__ import annotations

import ipaddress

import pytest

from scriptmail.intake.smtp_protocol import auth_needs_tls
from scriptmail.intake.smtp_server import TrustedNetworks


@pytest.mark.parametrize(
    ("address", "needs_tls"),
    [("127.0.0.1", False), ("127.10.0.3", False), ("::1", False), ("10.0.0.5", True), ("2001:db8::1", True), (None, True)],
)
def test_auth_in_clear_text_only_on_loopback(address: str | None, needs_tls: bool) -> None:
    assert auth_needs_tls(ipaddress.ip_address(address) if address else None) is needs_tls


def test_the_most_specific_trusted_network_wins() -> None:
    trusted = TrustedNetworks({"10.0.0.0/8": "platform", "10.1.2.0/24": "site-a", "2001:db8::/32": "site-v6"})
    assert trusted.hosting_for(ipaddress.ip_address("10.1.2.7")) == "site-a"
    assert trusted.hosting_for(ipaddress.ip_address("10.9.9.9")) == "platform"
    assert trusted.hosting_for(ipaddress.ip_address("2001:db8::5")) == "site-v6"
    assert trusted.hosting_for(ipaddress.ip_address("192.0.2.1")) is None
    assert trusted.hosting_for(None) is None
