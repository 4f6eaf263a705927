"""The operator's sites and pools page and the busy sites on the queue page, over real HTTP, from
what a running delivery agent publishes (its pools really bound, one address the machine lacks)."""

from __future__ import annotations

import html
import time

import pytest

from scriptmail.config import PoolSettings
from scriptmail.store import delivery_sites
from scriptmail.store.engine import for_writing
from tests.support.gateway import RunningGateway
from tests.support.web_client import OPERATOR, A

SLOWED = {
    "configured": {"connections": 10, "messages_per_connection": 50, "per_minute": 600, "per_hour": 0},
    "limits": {"connections": 5, "messages_per_connection": 25, "per_minute": 300, "per_hour": 0},
    "level": 1, "paused_for": 12.0, "recovers_in": 500.0, "reason": "421 4.7.0 <script>Try again later</script>",
    "connections": 2, "in_flight": 7, "sent": 40, "deferred": 3, "postponed": 9, "slowdowns": 1,
}  # fmt: skip


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    return make_gateway(pools={"fresh": PoolSettings(addresses=["127.0.0.2", "192.0.2.77"], helo_name="fresh.gateway.test")})


def test_the_operator_sees_slowed_sites_why_and_the_pools(gateway: RunningGateway, area) -> None:
    with for_writing(gateway.engine).begin() as connection:
        delivery_sites.publish(connection, "other-node", [("site", "microsoft", SLOWED)], time.time())
    browser = area()
    browser.login(OPERATOR)
    page = browser.get("/operator/sites")
    assert page.status_code == 200
    text = html.unescape(page.text)
    row = text.split('data-site="microsoft"')[1].split("</tr>")[0]
    assert "5 connections, 25 per connection, 300 a minute, — an hour" in row
    assert "Slowed (level 1): 421 4.7.0 <script>Try again later</script>. One step back to full speed in 500 s." in row
    assert "<script>" not in page.text  # the remote server's words are escaped
    # The running agent bound its pool: the address the machine lacks is shown with the reason.
    deadline = time.monotonic() + 10
    while (
        "Cannot assign requested address" not in html.unescape(browser.get("/operator/sites").text)
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    pool = html.unescape(browser.get("/operator/sites").text).split('data-pool="fresh"')[1].split("</tr>")[0]
    assert "127.0.0.2" in pool and "fresh.gateway.test" in pool and "192.0.2.77 (Cannot assign requested address)" in pool
    assert "google.com" in text  # the configured table
    queue = html.unescape(browser.get("/operator/queue").text)
    assert 'data-site="microsoft"' in queue and "Busy provider sites" in queue


def test_only_operators_see_the_sites(gateway: RunningGateway, area) -> None:
    visitor = area()
    answer = visitor.get("/operator/sites")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    customer = area()
    customer.login(A)
    assert customer.get("/operator/sites").status_code == 403
    assert customer.get("/operator/sites?level=%00%27").status_code == 403


def test_the_sites_page_speaks_the_operators_language(gateway: RunningGateway, area) -> None:
    browser = area()
    browser.login(OPERATOR)
    token = browser.csrf(browser.get("/operator"))
    browser.post("/language", {"language": "es", "next": "/operator", "csrf": token})
    page = html.unescape(browser.get("/operator/sites").text)
    assert "Sitios y grupos" in page and "Ningún sitio tiene actividad." in page and "Grupos de salida" in page


def test_metrics_per_site_and_pool(gateway: RunningGateway, area) -> None:
    with for_writing(gateway.engine).begin() as connection:
        delivery_sites.publish(connection, "other-node", [("site", "microsoft", SLOWED)], time.time())
    browser = area()
    deadline = time.monotonic() + 10
    while 'scriptmail_pool_addresses{pool="fresh",usable="no"} 1.0' not in (text := browser.get("/metrics").text):
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert 'scriptmail_site_slowdown_level{site="microsoft"} 1.0' in text
    assert 'scriptmail_site_limit{limit="per_minute",site="microsoft"} 300.0' in text
    assert 'scriptmail_site_postponed_total{site="microsoft"} 9.0' in text
    assert 'scriptmail_pool_addresses{pool="fresh",usable="yes"} 1.0' in text
    assert 'scriptmail_pool_sent_total{pool="fresh"} 0.0' in text
