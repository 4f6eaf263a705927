"""Rotating a sending domain's key in Chromium: "Rotate the key" opens the confirmation in the
domains page's dialog (htmx), Escape and Cancel close it without a change, OK makes the next key
and the page shows its record. The records are served by a loopback DNS server; the page of its
own (without JavaScript) is tested in test_area_domain_rotation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from scriptmail.domains.keys import Algorithm
from scriptmail.domains.provision import new_keys
from scriptmail.domains.records import dkim_record
from scriptmail.store import domains as store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from tests.support.browser import log_in, owner_chromium
from tests.support.dns_server import DnsServer
from tests.support.gateway import HOSTING, RunningGateway

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer({}).start()
    yield server
    server.stop()


@pytest.fixture
def gateway(make_gateway, dns_server: DnsServer) -> RunningGateway:
    return make_gateway(nameservers=["127.0.0.1"], dns_port=dns_server.port, domains={"dns_timeout": 1.0})


@pytest.fixture
def browser(gateway: RunningGateway, database_url: str):
    yield from owner_chromium(gateway, database_url)


def _keys(gateway: RunningGateway) -> list[str]:
    with gateway.engine.connect() as connection:
        return sorted(key["selector"] for key in store.find_domain(connection, "shop.example")["keys"])


def test_the_rotation_is_confirmed_in_a_dialog_on_the_domains_page(gateway: RunningGateway, dns_server: DnsServer, browser) -> None:
    with for_writing(gateway.engine).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
        store.add_domain(connection, hosting_id, "shop.example", new_keys(gateway.settings.domains, time.time()), time.time())
        (key,) = store.keys_to_check(connection, "shop.example")
    record = dkim_record(key["selector"], "shop.example", Algorithm(key["algorithm"]), key["public_key"])
    dns_server.records[(record.name + ".", "TXT")] = [" ".join(f'"{part}"' for part in record.strings)]
    base = f"http://localhost:{gateway.gateway.web_port}"
    domains = f"{base}/hostings/{HOSTING}/domains"
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/login")
    log_in(page, base)
    page.goto(domains)
    page.get_by_role("button", name="Check now").click()
    page.wait_for_url(re.compile(re.escape(domains)))
    rotate = page.get_by_role("link", name="Rotate the key")
    playwright.expect(rotate).to_be_visible()  # verified: it may rotate

    dialog = page.locator("dialog#dialog")
    rotate.click()
    playwright.expect(dialog).to_be_visible()
    assert page.url.split("#")[0] == domains  # the dialog, not the page of its own (/domains/rotate)
    playwright.expect(dialog.get_by_role("heading")).to_have_text("Rotate the key of shop.example?")
    assert "Keep the old record 7 more days" in dialog.inner_text()
    playwright.expect(dialog.get_by_role("button", name="OK")).to_be_focused()
    page.keyboard.press("Escape")
    playwright.expect(dialog).to_be_hidden()
    rotate.click()
    dialog.get_by_role("link", name="Cancel").click()
    playwright.expect(dialog).to_be_hidden()
    assert page.url.split("#")[0] == domains and _keys(gateway) == [key["selector"]]  # closing it changed nothing

    rotate.click()
    dialog.get_by_role("button", name="OK").click()
    playwright.expect(page.locator(".flash")).to_contain_text("New key made for shop.example")
    assert page.url.startswith(domains)
    (new,) = [selector for selector in _keys(gateway) if selector != key["selector"]]
    playwright.expect(page.locator("article.domain")).to_contain_text("Next key (rotation)")
    assert f"{new}._domainkey.shop.example" in [field.input_value() for field in page.locator("input.copyable").all()]
