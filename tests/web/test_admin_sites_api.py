"""`/1.0/admin/sites` and `/1.0/admin/pools` on a running gateway over real HTTP: a site slowed by
a real 421 from a loopback receiving server shows its limits and why; the pools show their
addresses, EHLO name and the address the machine lacks; only operators' tokens read them."""

from __future__ import annotations

import time

import httpx2

from scriptmail.config import PoolRules, PoolSettings, SiteSettings
from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING, submit
from tests.support.sink import Behaviour, Sink

POOLS = {"main": PoolSettings(addresses=["127.0.0.2", "192.0.2.77"], helo_name="main-pool.gateway.test")}


def _tokens(engine) -> tuple[str, str]:
    with for_writing(engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        customer = accounts.add_user(connection, "a@users.test", "a long password")
        accounts.grant(connection, customer, HOSTING)
        return accounts.create_token(connection, operator, "ro", scope="read")[1], accounts.create_token(connection, customer, "mine")[1]


def test_operators_read_the_busy_sites_and_the_pools(make_gateway, sink: Sink) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "421 4.7.0 Try again later, rate limited")
    gateway = make_gateway(
        pools=POOLS, pool_for=PoolRules(default="main"), throttle_pause=30, slow_seconds=600,
        sites={"sinksite": SiteSettings(domains=["sink.test"], connections=4, per_minute=1200)},
    )  # fmt: skip
    read_token, customer_token = _tokens(gateway.engine)
    submit(gateway.smtp_port, b"Subject: hi\r\n\r\nx\r\n", ["reader@sink.test"])
    base = f"http://127.0.0.1:{gateway.gateway.web_port}"
    with httpx2.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {read_token}"}) as client:
        deadline = time.monotonic() + 20
        while True:
            answer = client.get("/1.0/admin/sites")
            assert answer.status_code == 200, answer.text
            sites = {site["name"]: site for site in answer.json()["items"]}
            # The slow-down is known at once; the live deferred count once the result is committed
            # and the count's few seconds of caching have passed.
            if sites.get("sinksite", {}).get("level") and sites["sinksite"]["deferred"]:
                break
            assert time.monotonic() < deadline, sites
            time.sleep(0.2)
        site = sites["sinksite"]
        assert site["configured"] == {"connections": 4, "messages_per_connection": 100, "per_minute": 1200, "per_hour": 0}
        assert site["limits"]["connections"] == 2 and site["limits"]["per_minute"] == 600  # halved once
        assert "421 4.7.0 Try again later" in site["reason"] and site["paused_for"] > 0
        assert site["deferred"] >= 1 and site["slowdowns"] == 1 and site["nodes"] == [gateway.gateway.settings.node]
        # The connection closed; its slot is kept a moment for the next one (KEEP_SLOT), then given back.
        deadline = time.monotonic() + 5
        while site["open_connections"]:
            assert time.monotonic() < deadline, site
            time.sleep(0.2)
            site = {s["name"]: s for s in client.get("/1.0/admin/sites").json()["items"]}["sinksite"]

        (pool,) = client.get("/1.0/admin/pools").json()["items"]
        assert pool["name"] == "main" and pool["helo_name"] == "main-pool.gateway.test"
        assert pool["addresses"] == ["127.0.0.2"] and pool["published"] is True
        assert [u["address"] for u in pool["unusable"]] == ["192.0.2.77"] and pool["unusable"][0]["error"]

        spec = client.get("/openapi.json").json()
        for path in ("/1.0/admin/sites", "/1.0/admin/pools"):
            assert set(spec["paths"][path]) == {"get"}
            assert {"401", "403", "429"} <= set(spec["paths"][path]["get"]["responses"])
    with httpx2.Client(base_url=base, timeout=30) as anonymous:
        for path in ("/1.0/admin/sites", "/1.0/admin/pools"):
            assert anonymous.get(path).status_code == 401
            assert anonymous.get(path, headers={"Authorization": f"Bearer {customer_token}"}).status_code == 403
            assert anonymous.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
            assert anonymous.get(path + "?x=%00", headers={"Authorization": f"Bearer {read_token}"}).status_code == 200


def test_with_no_pools_and_no_traffic_both_lists_are_empty(make_gateway) -> None:
    gateway = make_gateway()
    read_token, _ = _tokens(gateway.engine)
    with httpx2.Client(base_url=f"http://127.0.0.1:{gateway.gateway.web_port}", timeout=30, headers={"Authorization": f"Bearer {read_token}"}) as client:
        assert client.get("/1.0/admin/sites").json() == {"items": []}
        assert client.get("/1.0/admin/pools").json() == {"items": []}
