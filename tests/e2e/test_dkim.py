"""DKIM over real SMTP: signed at intake, delivered to the sink, checked by Mail::DKIM against the
public keys served by a loopback DNS server (an independent verifier, not the library that signs)."""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from scriptmail.config import DeliverySettings, DomainsSettings, Settings
from scriptmail.domains import dns_check
from scriptmail.domains.keys import Algorithm, generate, load_private
from scriptmail.domains.provision import new_keys
from scriptmail.domains.records import dkim_record
from scriptmail.domains.signing import SigningKey, sign
from scriptmail.store import domains as store
from scriptmail.store import hostings as hosting_store
from tests.support.dkim_verifier import verifier_available, verify
from tests.support.dns_server import DnsServer
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, wait_status
from tests.support.sink import Sink

pytestmark = pytest.mark.slow
SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))
NOW = time.time()


@pytest.fixture
def dns_server():
    verifier_available()
    server = DnsServer({}).start()
    yield server
    server.stop()


def publish(server: DnsServer, engine: Engine, hosting: str, domain: str, settings: DomainsSettings, in_dns: bool = True) -> str:
    """Add `domain` to `hosting`, publish its record (or not) and mark it verified as the check would."""
    with engine.begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=hosting).id
        store.add_domain(connection, hosting_id, domain, new_keys(settings, NOW), NOW)
        keys = store.keys_to_check(connection, domain)
    for key in keys:
        record = dkim_record(key["selector"], domain, Algorithm(key["algorithm"]), key["public_key"])
        if in_dns:
            server.records[(record.name + ".", "TXT")] = [" ".join(f'"{part}"' for part in record.strings)]
    return keys[0]["selector"]


def check(engine: Engine, dns_server: DnsServer, domains: DomainsSettings) -> None:
    """One DNS check, as the scheduler runs it (before the gateway starts: SQLite has one writer)."""
    settings = Settings(
        database_url="sqlite:///unused.db", hostname="gateway.test", node="check",
        delivery=DeliverySettings(nameservers=["127.0.0.1"], dns_port=dns_server.port), domains=domains,
    )  # fmt: skip

    async def write(operation):
        with engine.begin() as connection:
            return operation(connection)

    asyncio.run(dns_check.check(engine, write, settings, time.time()))


@pytest.fixture
def domains(tmp_path: Path) -> DomainsSettings:
    return DomainsSettings(key_file=tmp_path / "master.key", dns_timeout=1.0)


@pytest.fixture
def signing_gateway(make_gateway, dns_server: DnsServer, domains: DomainsSettings):
    def start(platform: str = "", **extra) -> RunningGateway:
        update = {"key_file": domains.key_file, "platform_domain": platform, "dns_timeout": 1.0}
        return make_gateway(nameservers=["127.0.0.1"], dns_port=dns_server.port, domains=update, **extra)

    return start


def sendmail(gateway: RunningGateway, data: bytes, *args: str) -> None:
    env = os.environ | {"SCRIPTMAIL_SOCKET": str(gateway.settings.intake.socket), "SCRIPTMAIL_MAILDROP": str(gateway.settings.intake.maildrop)}
    done = subprocess.run([SENDMAIL, *args], input=data, capture_output=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr


def passing(result: dict) -> list[str]:
    return [f"{s['domain']}/{s['selector']}" for s in result["signatures"] if s["result"] == "pass"]


def test_php_mail_with_8bit_body_long_lines_lf_and_bcc_is_signed_and_verifies(signing_gateway, sink: Sink, shop, dns_server, domains) -> None:
    selector = publish(dns_server, shop, HOSTING, "shop.example", domains)
    check(shop, dns_server, domains)
    gateway = signing_gateway()
    long_line = b"x" * 1500
    message = (
        b"From: Tienda <ventas@shop.example>\nTo: buyer@sink.test\nBcc: audit@sink.test\n"
        b"Subject: =?utf-8?q?Pedido_n=C2=BA_7?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        b"Gracias por su compra, se\xc3\xb1or.\n" + long_line + b"\n.\nfin\n"
    )
    sendmail(gateway, message, "-t", "-i")
    received = sink.wait_for(1)
    assert sorted(received[0].recipients) == ["audit@sink.test", "buyer@sink.test"]
    for one in received:
        assert b"Bcc:" not in one.data and b"\r\n" + b"x" * 998 + b"\r\n" in one.data  # folded before signing
        assert one.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        result = verify(one.data, dns_server.port)
        assert result["result"] == "pass", result
        assert passing(result) == [f"shop.example/{selector}"]
    wait_status(shop, "sent", 2)


def test_a_signature_the_script_made_is_kept_and_both_verify_with_verp_on(signing_gateway, sink: Sink, shop, dns_server, domains) -> None:
    selector = publish(dns_server, shop, HOSTING, "shop.example", domains)
    check(shop, dns_server, domains)
    gateway = signing_gateway(bounces={"domain": "bounces.gateway.test"})
    own = generate(Algorithm.RSA)  # the script's own key (PHPMailer can sign), under its own selector
    theirs = dkim_record("phpmailer", "shop.example", Algorithm.RSA, own.public)
    dns_server.records[(theirs.name + ".", "TXT")] = [" ".join(f'"{part}"' for part in theirs.strings)]
    original = (
        b"From: web@shop.example\r\nTo: reader@sink.test\r\nSubject: signed by the script\r\n"
        b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <php-1@shop.example>\r\n\r\nHello.\r\n"
    )
    script_signed = sign(original, [SigningKey("shop.example", "phpmailer", Algorithm.RSA, load_private(Algorithm.RSA, own.private_pem))], time.time())
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        client.sendmail("web@shop.example", ["reader@sink.test"], script_signed)
    (received,) = sink.wait_for(1)
    assert received.mail_from.startswith("b-") and received.mail_from.endswith("@bounces.gateway.test")  # VERP
    assert received.data.count(b"DKIM-Signature:") == 2
    assert received.data.endswith(script_signed)  # the script's signature and everything it covers, untouched
    result = verify(received.data, dns_server.port)
    assert sorted(passing(result)) == sorted([f"shop.example/{selector}", "shop.example/phpmailer"]), result


def test_mail_from_a_domain_not_set_up_is_signed_by_the_platform_and_a_pending_key_never_signs(
    signing_gateway, sink: Sink, shop, dns_server, domains
) -> None:
    with shop.begin() as connection:
        hosting_store.system_hosting_id(connection, "postmaster@platform.test")
    platform_selector = publish(dns_server, shop, "_system", "mail.platform.test", domains)
    publish(dns_server, shop, HOSTING, "shop.example", domains, in_dns=False)  # the customer has not published yet
    check(shop, dns_server, domains)
    gateway = signing_gateway(platform="mail.platform.test")
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        client.sendmail("web@shop.example", ["a@sink.test"], b"From: web@shop.example\r\nTo: a@sink.test\r\nSubject: one\r\n\r\nBody.\r\n")
        client.sendmail("web@news.example", ["b@sink.test"], b"From: web@news.example\r\nTo: b@sink.test\r\nSubject: two\r\n\r\nBody.\r\n")
    received = sink.wait_for(2)
    for one in received:
        assert one.data.count(b"DKIM-Signature:") == 1
        result = verify(one.data, dns_server.port)
        assert passing(result) == [f"mail.platform.test/{platform_selector}"], result
    with shop.connect() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
        rows = {row["domain"]: row for row in store.list_domains(connection, hosting_id)}
        totals = store.signing_totals(connection)
    assert rows["shop.example"]["state"] == "pending" and rows["news.example"]["state"] == "not-set-up"
    assert totals["hosting", "platform"] == 2


def test_ed25519_is_a_second_signature_that_rspamd_verifies(signing_gateway, sink: Sink, shop, dns_server, tmp_path, request) -> None:
    from tests.support.dkim_verifier import DkimRspamd

    ed_domains = DomainsSettings(key_file=tmp_path / "master.key", ed25519=True)
    publish(dns_server, shop, HOSTING, "shop.example", ed_domains)
    check(shop, dns_server, ed_domains)
    with shop.connect() as connection:
        selectors = {key["algorithm"]: key["selector"] for key in store.keys_to_check(connection, "shop.example")}
    gateway = signing_gateway()
    with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        client.sendmail("web@shop.example", ["e@sink.test"], b"From: web@shop.example\r\nTo: e@sink.test\r\nSubject: two\r\n\r\nBody.\r\n")
    (received,) = sink.wait_for(1)
    assert received.data.count(b"DKIM-Signature:") == 2
    assert passing(verify(received.data, dns_server.port)) == [f"shop.example/{selectors['rsa-sha256']}"]  # Mail::DKIM: RSA
    cache = request.config.cache.mkdir("rspamd-hyperscan") if getattr(request.config, "cache", None) else None
    rspamd = DkimRspamd(tmp_path / "rspamd", dns_server.port, hyperscan_cache=cache).start()
    try:
        verdicts = rspamd.verdicts(received.data)
    finally:
        rspamd.stop()
    # Both signatures pass: rspamd lists each allowed signature by domain and selector.
    assert "R_DKIM_REJECT" not in verdicts and "R_DKIM_PERMFAIL" not in verdicts, verdicts
    assert sorted(verdicts["R_DKIM_ALLOW"]) == sorted(f"shop.example:s={s}" for s in selectors.values()), verdicts
