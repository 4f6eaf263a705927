"""Delivery to a domain with an MTA-STS policy (RFC 8461), against a loopback DNS server, a
loopback HTTPS policy host and a receiving server whose certificate a test CA signed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from scriptmail.intake.tls import ensure_self_signed, server_context
from scriptmail.store.schema import mta_sts_policies
from tests.support.certificates import CertificateAuthority
from tests.support.dns_server import DnsServer
from tests.support.gateway import submit, wait_status
from tests.support.https_server import HttpsServer, Reply
from tests.support.sink import Sink
from tests.support.stores import store_url

POLICY_URL = "mta-sts.customer.test/.well-known/mta-sts.txt"


def policy(mode: str, mx: str = "*.customer.test") -> Reply:
    return Reply(body=f"version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n".encode())


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only: what is decided here happens before the store is written, the same on both."""
    with store_url("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


@pytest.fixture
def sink(authority: CertificateAuthority) -> Iterator[Sink]:
    """The MX host mx.customer.test, offering STARTTLS with a certificate the test CA signed."""
    running = Sink(tls=server_context(*authority.issue("mx.customer.test"))).start()
    yield running
    running.stop()


@pytest.fixture
def world(authority: CertificateAuthority) -> Iterator[tuple[DnsServer, HttpsServer]]:
    dns_server = DnsServer(
        {
            ("customer.test.", "MX"): ["10 mx.customer.test."],
            ("mx.customer.test.", "A"): ["127.0.0.1"],
            ("_mta-sts.customer.test.", "TXT"): ['"v=STSv1; id=20261201"'],
            ("mta-sts.customer.test.", "A"): ["127.0.0.1"],
        }
    ).start()
    https = HttpsServer(*authority.issue("mta-sts.customer.test")).start()
    yield dns_server, https
    https.stop()
    dns_server.stop()


@pytest.fixture
def start(make_gateway, sink: Sink, world, authority: CertificateAuthority):
    dns_server, https = world

    def started(**delivery: object):
        return make_gateway(
            nameservers=["127.0.0.1"], dns_port=dns_server.port, smtp_port=sink.port, connect_timeout=5,
            mta_sts_port=https.port, tls_ca_file=authority.ca_path, backoff_min=300, backoff_max=600, **delivery,
        )  # fmt: skip

    return started


def self_signed(tmp_path: Path):
    return server_context(*ensure_self_signed(tmp_path / "self-signed", "mx.customer.test"))


def test_enforce_delivers_over_tls_to_a_listed_mx_with_a_valid_certificate(start, world, sink: Sink) -> None:
    world[1].replies[POLICY_URL] = policy("enforce")
    gateway = start()
    submit(gateway.smtp_port, b"Subject: safe\r\n\r\nhello\r\n", ["buyer@customer.test"])
    (received,) = sink.wait_for(1)
    assert received.tls
    wait_status(gateway.engine, "sent", 1)


def test_enforce_defers_when_the_mx_certificate_is_not_valid(start, world, sink: Sink, tmp_path: Path) -> None:
    world[1].replies[POLICY_URL] = policy("enforce")
    sink.tls = self_signed(tmp_path)
    gateway = start()
    submit(gateway.smtp_port, b"Subject: not to a fake\r\n\r\nhello\r\n", ["buyer@customer.test"])
    (deferred,) = wait_status(gateway.engine, "deferred", 1)
    assert deferred["last_text"].startswith("MTA-STS policy of customer.test (enforce): ")
    assert "has no valid certificate for mx.customer.test" in deferred["last_text"]
    assert deferred["last_code"] is None
    assert sink.messages == []


def test_enforce_defers_when_the_mx_offers_no_starttls(start, world, sink: Sink) -> None:
    world[1].replies[POLICY_URL] = policy("enforce")
    sink.tls = None
    gateway = start()
    submit(gateway.smtp_port, b"Subject: plain\r\n\r\nhello\r\n", ["buyer@customer.test"])
    (deferred,) = wait_status(gateway.engine, "deferred", 1)
    assert "does not offer STARTTLS" in deferred["last_text"]
    assert sink.messages == []


def test_enforce_defers_when_no_mx_is_listed_in_the_policy(start, world, sink: Sink) -> None:
    world[1].replies[POLICY_URL] = policy("enforce", mx="mail.elsewhere.test")
    gateway = start()
    submit(gateway.smtp_port, b"Subject: hijacked MX\r\n\r\nhello\r\n", ["buyer@customer.test"])
    (deferred,) = wait_status(gateway.engine, "deferred", 1)
    assert "none of the MX hosts (mx.customer.test) is listed in the policy" in deferred["last_text"]
    assert sink.connections == 0


def test_testing_mode_delivers_and_reports_the_invalid_certificate(start, world, sink: Sink, tmp_path: Path, caplog) -> None:
    world[1].replies[POLICY_URL] = policy("testing", mx="mail.elsewhere.test")
    sink.tls = self_signed(tmp_path)
    with caplog.at_level(logging.WARNING, "scriptmail"):
        gateway = start()
        submit(gateway.smtp_port, b"Subject: trial\r\n\r\nhello\r\n", ["buyer@customer.test"])
        (received,) = sink.wait_for(1)
        wait_status(gateway.engine, "sent", 1)
    assert received.tls  # opportunistic TLS as without a policy
    assert "MTA-STS policy of customer.test (testing) does not list MX host(s) mx.customer.test" in caplog.text
    assert "MTA-STS policy of customer.test (testing): mx.customer.test[127.0.0.1]" in caplog.text
    assert "has no valid certificate for mx.customer.test" in caplog.text


def test_with_mta_sts_off_no_policy_is_fetched_and_mail_goes_as_before(start, world, sink: Sink, tmp_path: Path) -> None:
    world[1].replies[POLICY_URL] = policy("enforce")
    sink.tls = self_signed(tmp_path)
    gateway = start(mta_sts=False)
    submit(gateway.smtp_port, b"Subject: off\r\n\r\nhello\r\n", ["buyer@customer.test"])
    sink.wait_for(1)
    wait_status(gateway.engine, "sent", 1)
    assert world[1].requests == []


def test_a_host_that_does_not_answer_is_not_reported_as_a_tls_failure(start, world, sink: Sink, caplog) -> None:
    dns_server, https = world
    dns_server.records[("customer.test.", "MX")] = ["10 dead.customer.test.", "20 mx.customer.test."]
    dns_server.records[("dead.customer.test.", "A")] = ["127.0.0.2"]  # nothing listens there
    https.replies[POLICY_URL] = policy("testing")
    with caplog.at_level(logging.WARNING, "scriptmail"):
        gateway = start()
        submit(gateway.smtp_port, b"Subject: next host\r\n\r\nhello\r\n", ["buyer@customer.test"])
        sink.wait_for(1)
        wait_status(gateway.engine, "sent", 1)
    assert "dead.customer.test" not in caplog.text  # skipped like any unreachable host, not "delivering without"


def test_the_gateway_refreshes_a_policy_in_the_background_when_its_id_changes(start, world, sink: Sink) -> None:
    dns_server, https = world
    https.replies[POLICY_URL] = policy("testing")
    gateway = start(mta_sts_refresh=0.3)
    submit(gateway.smtp_port, b"Subject: one\r\n\r\nhello\r\n", ["buyer@customer.test"])
    sink.wait_for(1)
    wait_status(gateway.engine, "sent", 1)
    assert len(https.requests) == 1

    # The domain publishes a new policy; no mail goes to it meanwhile.
    https.replies[POLICY_URL] = policy("enforce", "mx.customer.test")
    dns_server.records[("_mta-sts.customer.test.", "TXT")] = ['"v=STSv1; id=20261202"']
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _stored_policy(gateway) != ("20261202", "enforce"):
        time.sleep(0.1)
    assert _stored_policy(gateway) == ("20261202", "enforce")  # kept for every node and past restarts
    assert len(https.requests) == 2 and len(sink.messages) == 1

    # The policy host fails from now on: the refreshed policy stays in force, nothing is dropped.
    https.replies[POLICY_URL] = Reply(500, b"down")
    dns_server.records[("_mta-sts.customer.test.", "TXT")] = ['"v=STSv1; id=20261203"']
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(https.requests) < 3:
        time.sleep(0.1)
    assert len(https.requests) == 3  # tried once, then paused (FAILURE_PAUSE)
    assert _stored_policy(gateway) == ("20261202", "enforce")


def _stored_policy(gateway) -> tuple[str, str] | None:
    with gateway.engine.connect() as connection:
        row = connection.execute(select(mta_sts_policies.c.policy_id, mta_sts_policies.c.mode)).first()
    return (row.policy_id, row.mode) if row else None
