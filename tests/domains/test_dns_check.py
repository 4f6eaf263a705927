"""The DKIM check against a real DNS server on loopback: found, wrong, truncated, missing, SERVFAIL, timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from scriptmail.config import DeliverySettings, DomainsSettings, Settings
from scriptmail.domains import dns_check
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.provision import new_keys
from scriptmail.domains.records import dkim_record
from scriptmail.scheduler.jobs import Scheduler
from scriptmail.store import domains as store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.writer import Writer
from tests.support.dns_server import DnsServer

NOW = 1_796_000_000.0


def txt(*strings: str) -> str:
    return " ".join(f'"{part}"' for part in strings)


@pytest.fixture
def dns_server():
    server = DnsServer({}).start()
    yield server
    server.stop()


@pytest.fixture
def setup(shop: Engine, tmp_path: Path, dns_server: DnsServer):
    settings = Settings(
        database_url="sqlite:///unused.db", hostname="gateway.test", node="n1",
        delivery=DeliverySettings(nameservers=["127.0.0.1"], dns_port=dns_server.port),
        domains=DomainsSettings(key_file=tmp_path / "master.key", dns_timeout=0.5),
    )  # fmt: skip
    with shop.begin() as connection:
        hosting = hosting_store.find_hosting(connection, name="shop.example")
        store.add_domain(connection, hosting.id, "shop.example", new_keys(settings.domains, NOW), NOW)
        (key,) = store.keys_to_check(connection)
    record = dkim_record(key["selector"], "shop.example", Algorithm.RSA, key["public_key"])
    return settings, record


async def run_check(engine: Engine, settings: Settings, now: float = NOW) -> dict[str, str]:
    async def write(operation):
        with engine.begin() as connection:
            return operation(connection)

    return await dns_check.check(engine, write, settings, now)


def state_of(engine: Engine) -> tuple[str, str]:
    with engine.connect() as connection:
        found = store.find_domain(connection, "shop.example")
    return found["state"], found["reason"]


async def test_a_published_record_verifies_the_domain_and_its_removal_makes_it_failing(shop, setup, dns_server) -> None:
    settings, record = setup
    assert await run_check(shop, settings) == {"shop.example": "pending"}
    assert "no TXT record" in state_of(shop)[1]
    dns_server.records[(record.name + ".", "TXT")] = [txt(*record.strings)]
    assert await run_check(shop, settings) == {"shop.example": "verified"}
    dns_server.records[(record.name + ".", "TXT")] = [txt(record.strings[0])]
    assert await run_check(shop, settings) == {"shop.example": "failing"}
    state, reason = state_of(shop)
    assert "cut short" in reason


async def test_servfail_and_timeouts_are_temporary_and_change_nothing(shop, setup, dns_server) -> None:
    settings, record = setup
    dns_server.records[(record.name + ".", "TXT")] = [txt(*record.strings)]
    assert await run_check(shop, settings) == {"shop.example": "verified"}
    dns_server.failures[record.name + "."] = "servfail"
    assert await run_check(shop, settings) == {"shop.example": "verified"}
    dns_server.failures[record.name + "."] = "drop"
    assert await run_check(shop, settings) == {"shop.example": "verified"}
    with shop.connect() as connection:
        (key,) = store.find_domain(connection, "shop.example")["keys"]
    assert "timed out" in key["reason"]


async def test_a_wrong_key_and_garbage_keep_a_new_domain_pending_with_the_reason(shop, setup, dns_server) -> None:
    settings, record = setup
    dns_server.records[(record.name + ".", "TXT")] = [txt("v=DKIM1; k=rsa; p=QUJD")]
    await run_check(shop, settings)
    assert state_of(shop) == ("pending", f"{record.name.split('.')[0]}: p= holds another key than ours")
    dns_server.records[(record.name + ".", "TXT")] = [txt("hello")]
    await run_check(shop, settings)
    assert "not a DKIM tag list" in state_of(shop)[1]


async def test_the_scheduled_check_runs_under_its_lease(shop, setup, dns_server) -> None:
    settings, record = setup
    dns_server.records[(record.name + ".", "TXT")] = [txt(*record.strings)]
    writer = Writer(shop)
    writer.start()
    try:
        scheduler = Scheduler(shop, writer, settings, clock=lambda: NOW)
        assert await scheduler.check_domains() == {"shop.example": "verified"}
        assert await Scheduler(shop, writer, settings.model_copy(update={"node": "n2"}), clock=lambda: NOW).check_domains() == {}
    finally:
        writer.stop()
