"""Policies kept in the store (both backends): a restarted delivery still enforces a domain's
policy while the attacker blocks its DNS record and its policy host."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from scriptmail.config import DeliverySettings
from scriptmail.mta_sts.cache import Cached
from scriptmail.mta_sts.policy import Mode, Policy
from scriptmail.mta_sts.source import PolicySource
from scriptmail.store import mta_sts as stored
from scriptmail.store.writer import Writer
from tests.mta_sts.test_source import BODY, DOMAIN, HOST, PATH, Clock
from tests.support.certificates import CertificateAuthority
from tests.support.dns_server import DnsServer
from tests.support.https_server import HttpsServer, Reply


@pytest.fixture
def writer(engine: Engine) -> Iterator[Writer]:
    running = Writer(engine)
    running.start()
    yield running
    running.stop()


def test_save_load_replace_and_forget(engine: Engine) -> None:
    first = Cached(Policy(Mode.ENFORCE, ("mx1.example.com", "*.example.com"), 86400), "one", 1000.5)
    second = Cached(Policy(Mode.NONE, (), 0), "two", 2000.0)
    with engine.begin() as connection:
        assert stored.load(connection, "example.com") is None
        stored.save(connection, "example.com", first)
        assert stored.load(connection, "example.com") == first
        stored.save(connection, "example.com", second)
        assert stored.load(connection, "example.com") == second
        stored.forget(connection, "example.com")
        assert stored.load(connection, "example.com") is None


def test_a_restarted_source_keeps_enforcing_while_dns_and_the_policy_host_are_blocked(
    engine: Engine, writer: Writer, tmp_path: Path
) -> None:
    authority = CertificateAuthority(tmp_path / "ca")
    dns_server = DnsServer({(f"_mta-sts.{DOMAIN}.", "TXT"): ['"v=STSv1; id=one"'], (f"{HOST}.", "A"): ["127.0.0.1"]}).start()
    https = HttpsServer(*authority.issue(HOST)).start()
    https.replies[f"{HOST}{PATH}"] = Reply(body=BODY)
    settings = DeliverySettings(
        nameservers=["127.0.0.1"], dns_port=dns_server.port, mta_sts_port=https.port, tls_ca_file=authority.ca_path
    )
    clock = Clock()

    async def one_run() -> Policy | None:
        source = PolicySource(settings, clock, stored.StoredPolicies(engine, writer))
        try:
            return await source.policy(DOMAIN)
        finally:
            await source.close()

    try:
        before = asyncio.run(one_run())
        dns_server.failures[f"_mta-sts.{DOMAIN}."] = "servfail"
        https.replies[f"{HOST}{PATH}"] = Reply(503, b"blocked")
        clock.now += 3600
        after_restart = asyncio.run(one_run())
        clock.now += 86400  # past max_age: the stored policy is no longer in force
        expired = asyncio.run(one_run())
    finally:
        https.stop()
        dns_server.stop()
    assert before == after_restart == Policy(Mode.ENFORCE, ("mx.customer.test",), 86400)
    assert expired is None
    assert len(https.requests) == 1
    with engine.connect() as connection:
        assert stored.load(connection, DOMAIN) is None  # forgotten once past max_age with no record
