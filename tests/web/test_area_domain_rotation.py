"""Rotating a sending domain's key from the customer area, over real HTTP, with the records served
by a loopback DNS server: confirmed first, the new selector's record shown beside the old one,
which keeps signing until DNS holds the new key and stays listed for the overlap."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest

from scriptmail.domains.keys import Algorithm
from scriptmail.domains.records import dkim_record
from scriptmail.store import domains as store
from tests.support.dns_server import DnsServer
from tests.support.gateway import HOSTING, RunningGateway
from tests.support.web_client import OTHER, A, B

PAGE = f"/hostings/{HOSTING}/domains"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer({}).start()
    yield server
    server.stop()


@pytest.fixture
def gateway(make_gateway, dns_server: DnsServer) -> RunningGateway:
    return make_gateway(nameservers=["127.0.0.1"], dns_port=dns_server.port, domains={"dns_timeout": 1.0})


def _publish(gateway: RunningGateway, dns_server: DnsServer, domain: str) -> list[str]:
    with gateway.engine.connect() as connection:
        keys = store.keys_to_check(connection, domain)
    for key in keys:
        record = dkim_record(key["selector"], domain, Algorithm(key["algorithm"]), key["public_key"])
        dns_server.records[(record.name + ".", "TXT")] = [" ".join(f'"{part}"' for part in record.strings)]
    return [key["selector"] for key in keys]


def _signing(gateway: RunningGateway) -> list[str]:
    with gateway.engine.connect() as connection:
        return [selector for _, _, domain, selector, _, _ in store.signing_keys(connection) if domain == "shop.example"]


def test_a_customer_rotates_a_verified_key_after_confirming_and_never_signs_with_an_unpublished_one(
    gateway: RunningGateway, dns_server: DnsServer, area
) -> None:
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get(PAGE))
    assert browser.post(PAGE, {"csrf": csrf, "domain": "shop.example"}).status_code == 303
    assert "Rotate the key" not in browser.get(PAGE).text  # pending: nothing to rotate yet
    (old,) = _publish(gateway, dns_server, "shop.example")
    assert browser.post(f"{PAGE}/check", {"csrf": csrf, "domain": "shop.example"}).status_code == 303
    page = browser.get(PAGE).text
    assert "Verified" in page and f"{PAGE}/rotate?domain=shop.example" in page and _signing(gateway) == [old]

    confirm = browser.get(f"{PAGE}/rotate", params={"domain": "shop.example"})
    assert confirm.status_code == 200
    text = html.unescape(confirm.text)
    assert "Rotate the key of shop.example?" in text and "Keep the old record 7 more days" in text
    assert 'name="confirm" value="yes"' in text
    unconfirmed = browser.post(f"{PAGE}/rotate", {"csrf": csrf, "domain": "shop.example"})
    assert unconfirmed.status_code == 303 and "Confirm the action first." in browser.get(PAGE).text
    with gateway.engine.connect() as connection:
        assert len(store.find_domain(connection, "shop.example")["keys"]) == 1

    assert browser.post(f"{PAGE}/rotate", {"csrf": csrf, "domain": "shop.example", "confirm": "yes"}).status_code == 303
    page = html.unescape(browser.get(PAGE).text)
    with gateway.engine.connect() as connection:
        selectors = [key["selector"] for key in store.find_domain(connection, "shop.example")["keys"]]
    (new,) = [selector for selector in selectors if selector != old]
    assert "New key made for shop.example" in page and "Signs your mail" in page and "Next key (rotation)" in page
    assert f"{old}._domainkey.shop.example" in page and f"{new}._domainkey.shop.example" in page
    assert _signing(gateway) == [old]  # DNS does not hold the new key: it does not sign
    again = browser.post(f"{PAGE}/rotate", {"csrf": csrf, "domain": "shop.example", "confirm": "yes"})
    assert again.status_code == 409 and "already waiting for its new record" in again.text

    _publish(gateway, dns_server, "shop.example")
    assert browser.post(f"{PAGE}/check", {"csrf": csrf, "domain": "shop.example"}).status_code == 303
    page = html.unescape(browser.get(PAGE).text)
    assert _signing(gateway) == [new]
    assert "Old key, keep it until" in page and f"{old}._domainkey.shop.example" in page  # still shown for the overlap


def test_rotation_refuses_pending_unknown_and_foreign_domains_forged_forms_and_bad_names(gateway: RunningGateway, area) -> None:
    owner_b = area()
    owner_b.login(B)
    assert (
        owner_b.post(
            f"/hostings/{OTHER}/domains",
            {"csrf": owner_b.csrf(owner_b.get(f"/hostings/{OTHER}/domains")), "domain": "theirs.example"},
        ).status_code
        == 303
    )  # noqa: E501
    browser = area()
    browser.login(A)
    csrf = browser.csrf(browser.get(PAGE))
    browser.post(PAGE, {"csrf": csrf, "domain": "shop.example"})
    pending = browser.post(f"{PAGE}/rotate", {"csrf": csrf, "domain": "shop.example", "confirm": "yes"})
    assert pending.status_code == 409 and "Publish and verify the current record" in pending.text
    shown = browser.get(f"{PAGE}/rotate", params={"domain": "shop.example"})
    assert shown.status_code == 200 and "Not available" in shown.text and 'name="confirm"' not in shown.text
    for domain in ("theirs.example", "nowhere.example", "not a domain<script>", "", "x" * 300):
        answer = browser.post(f"{PAGE}/rotate", {"csrf": csrf, "domain": domain, "confirm": "yes"})
        assert answer.status_code == 404 and "This domain is not in the list." in answer.text, domain
        assert "<script>" not in answer.text.split("<main", 1)[-1]
        assert browser.get(f"{PAGE}/rotate", params={"domain": domain}).status_code == 404
    assert browser.post(f"{PAGE}/rotate", {"csrf": csrf, "domain": "x" * 400, "confirm": "yes"}).status_code == 422
    assert browser.post(f"{PAGE}/rotate", {"csrf": "forged", "domain": "shop.example", "confirm": "yes"}).status_code == 403
    assert (
        browser.post(
            f"/hostings/{OTHER}/domains/rotate", {"csrf": csrf, "domain": "theirs.example", "confirm": "yes"}
        ).status_code
        == 404
    )
    with gateway.engine.connect() as connection:
        assert len(store.find_domain(connection, "theirs.example")["keys"]) == 1
        assert len(store.find_domain(connection, "shop.example")["keys"]) == 1
