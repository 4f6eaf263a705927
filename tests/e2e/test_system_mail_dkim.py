"""The platform's own mail (notices to senders, owner notices, daily reports) is DKIM-signed with
the platform's signing domain where it is queued, since it does not pass through the Acceptor.
Checked by dkimpy's verifier (our signer makes the signature with OpenSSL, not dkimpy) against
keys it looks up, over real DNS, on a loopback DNS server."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

import dkim
import dns.exception
import dns.resolver
import httpx2
import pytest
from sqlalchemy import Engine, select

from scriptmail.config import DomainsSettings
from scriptmail.domains.keys import Algorithm
from scriptmail.domains.records import dkim_record
from scriptmail.store import domains as domain_store
from scriptmail.store import hostings as hosting_store
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import bodies, messages
from scriptmail.store.system_mail import queue_system_mail
from tests.e2e.test_dkim import check, publish
from tests.support.dns_server import DnsServer
from tests.support.gateway import RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink

PLATFORM = "mail.platform.test"
NOTICE = (
    b"From: postmaster@platform.test\r\nTo: owner@shop.example\r\nSubject: Your hosting was blocked\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + "Hola, tu alojamiento está bloqueado.\n".encode()
    + b"x" * 1500
    + b"\n"
)


@pytest.fixture
def dns_server():
    server = DnsServer({}).start()
    yield server
    server.stop()


@pytest.fixture
def domains(tmp_path: Path) -> DomainsSettings:
    return DomainsSettings(key_file=tmp_path / "master.key", dns_timeout=1.0, platform_domain=PLATFORM)


def verify(message: bytes, dns_port: int) -> list[str]:
    """dkimpy's verdict on each DKIM-Signature field: "domain/selector" of those that pass."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], dns_port, 3.0

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        except dns.exception.DNSException:
            return None
        return b"".join(answer[0].strings)

    checker = dkim.DKIM(message)
    found = []
    for index, (_, value) in enumerate(field for field in checker.headers if field[0].lower() == b"dkim-signature"):
        try:
            passed = checker.verify(idx=index, dnsfunc=txt)
        except dkim.ValidationError:
            passed = False
        if passed:
            tags = dict(part.strip().split(b"=", 1) for part in value.split(b";") if b"=" in part)
            found.append(f"{tags[b'd'].strip().decode()}/{tags[b's'].strip().decode()}")
    return found


def _stored(engine: Engine, queue_id: int) -> tuple[bytes, str]:
    with engine.connect() as connection:
        data = connection.execute(select(bodies.c.data).where(bodies.c.message_id == queue_id)).scalar_one()
        script = connection.execute(select(messages.c.script).where(messages.c.id == queue_id)).scalar_one()
    return bytes(data), script


def _serve_keys(engine: Engine, dns_server: DnsServer) -> None:
    with engine.connect() as connection:
        for key in domain_store.keys_to_check(connection, PLATFORM):
            record = dkim_record(key["selector"], PLATFORM, Algorithm(key["algorithm"]), key["public_key"])
            dns_server.records[(record.name + ".", "TXT")] = [" ".join(f'"{part}"' for part in record.strings)]


def _queue(engine: Engine, domains: DomainsSettings | None) -> int:
    with for_writing(engine).begin() as connection:
        return queue_system_mail(
            connection, "postmaster@platform.test", "owner@shop.example", NOTICE, "blocked", time.time(), "policy notice",
            domains=domains,
        )  # fmt: skip


def test_an_owner_notice_is_signed_by_the_platform_once_its_key_is_in_dns(engine: Engine, dns_server, domains) -> None:
    with for_writing(engine).begin() as connection:
        hosting_store.system_hosting_id(connection, "postmaster@platform.test")
    selector = publish(dns_server, engine, "_system", PLATFORM, domains, in_dns=False)
    unsigned, _ = _stored(engine, _queue(engine, domains))  # pending: DNS does not hold the key yet
    assert b"DKIM-Signature" not in unsigned
    _serve_keys(engine, dns_server)
    check(engine, dns_server, domains)
    data, script = _stored(engine, _queue(engine, domains))
    assert data.count(b"DKIM-Signature:") == 1 and script == "scriptmail policy notice"
    assert verify(data, dns_server.port) == [f"{PLATFORM}/{selector}"]
    assert verify(data.replace(b"Hola", b"Adios"), dns_server.port) == []  # the verifier can say no
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))  # folded before signing, as delivery sends it
    assert b"DKIM-Signature" not in _stored(engine, _queue(engine, None))[0]  # a caller without the settings


def test_a_missing_or_corrupt_master_key_queues_the_mail_unsigned(engine: Engine, dns_server, domains, tmp_path: Path) -> None:
    with for_writing(engine).begin() as connection:
        hosting_store.system_hosting_id(connection, "postmaster@platform.test")
    publish(dns_server, engine, "_system", PLATFORM, domains)
    check(engine, dns_server, domains)
    for broken in (tmp_path / "nowhere.key", tmp_path / "corrupt.key"):
        if broken.name == "corrupt.key":
            broken.write_bytes(b"not a fernet key")
        data, _ = _stored(engine, _queue(engine, domains.model_copy(update={"key_file": broken})))
        assert b"DKIM-Signature" not in data


def _dkim_metrics(gateway: RunningGateway) -> dict[str, float]:
    """The DKIM counter's series as /metrics serves them, by their label text."""
    text = httpx2.get(f"http://127.0.0.1:{gateway.gateway.web_port}/metrics", timeout=30).text
    prefix = "scriptmail_dkim_messages_total{"
    return {line[len(prefix) : line.index("}")]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)}


def test_the_platforms_own_mail_is_counted_apart_in_the_dkim_metric(make_gateway, shop: Engine, dns_server, domains, tmp_path: Path) -> None:
    with for_writing(shop).begin() as connection:
        hosting_store.system_hosting_id(connection, "postmaster@platform.test")
    publish(dns_server, shop, "_system", PLATFORM, domains, in_dns=False)
    _queue(shop, domains)  # its key is not in DNS yet: unsigned, not set up
    _serve_keys(shop, dns_server)
    check(shop, dns_server, domains)
    _queue(shop, domains)
    _queue(shop, domains)  # signed twice
    (tmp_path / "corrupt.key").write_bytes(b"not a fernet key")
    _queue(shop, domains.model_copy(update={"key_file": tmp_path / "corrupt.key"}))  # no usable key: as not set up
    gateway = make_gateway(parts=("web",))
    series = _dkim_metrics(gateway)
    assert series['mail="platform",reason="platform",result="signed"'] == 2.0
    assert series['mail="platform",reason="not-set-up",result="unsigned"'] == 2.0
    assert series['mail="platform",reason="error",result="unsigned"'] == 0.0
    assert all(value == 0.0 for labels, value in series.items() if labels.startswith('mail="hosting"'))  # not a customer's mail


@pytest.mark.slow
def test_a_notice_to_a_sender_arrives_signed_by_the_platform_over_smtp(
    make_gateway, sink: Sink, shop, dns_server, domains
) -> None:
    with shop.begin() as connection:
        hosting_store.system_hosting_id(connection, "postmaster@platform.test")
    selector = publish(dns_server, shop, "_system", PLATFORM, domains)
    check(shop, dns_server, domains)
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.1.1 User unknown" if address.startswith("gone") else "250 2.1.5 ok")
    gateway: RunningGateway = make_gateway(
        nameservers=["127.0.0.1"], dns_port=dns_server.port, control={"notice_interval": 0.2},
        domains={"key_file": domains.key_file, "platform_domain": PLATFORM, "dns_timeout": 1.0},
    )  # fmt: skip
    submit(
        gateway.smtp_port,
        b"Subject: newsletter\r\nMessage-ID: <n1@sink.test>\r\n\r\nhello\r\n",
        ["gone@sink.test"],
        sender="web@sink.test",
    )
    wait_status(gateway.engine, "bounced", 1)
    deadline = time.monotonic() + 20
    while not (notices := [m for m in sink.messages if m.mail_from == ""]):
        assert time.monotonic() < deadline, "no notice arrived"
        time.sleep(0.05)
    (notice,) = notices
    parsed = email.message_from_bytes(notice.data, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert verify(notice.data, dns_server.port) == [f"{PLATFORM}/{selector}"]
    series = _dkim_metrics(gateway)
    assert series['mail="platform",reason="platform",result="signed"'] == 1.0  # the notice, signed as it was queued
    assert series['mail="hosting",reason="platform",result="signed"'] == 0.0
