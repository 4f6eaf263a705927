"""Delivery by MX lookup against a DNS server on loopback, with fallback to the next MX host."""

from __future__ import annotations

from sqlalchemy import select

from scriptmail.store.schema import attempts
from tests.support.dns_server import DnsServer
from tests.support.gateway import submit, wait_status
from tests.support.sink import Sink


def test_mail_follows_mx_records_and_falls_back_to_the_next_host(make_gateway, sink: Sink) -> None:
    dns_server = DnsServer(
        {
            ("customer.test.", "MX"): ["10 dead.customer.test.", "20 alive.customer.test."],
            ("dead.customer.test.", "A"): ["127.0.0.2"],  # nothing listens there
            ("alive.customer.test.", "A"): ["127.0.0.1"],
            ("gone.test.", "TXT"): ['"no mail"'],
        }
    ).start()
    try:
        gateway = make_gateway(nameservers=["127.0.0.1"], dns_port=dns_server.port, smtp_port=sink.port, connect_timeout=2)
        submit(gateway.smtp_port, b"Subject: via MX\r\n\r\nhello\r\n", ["buyer@customer.test", "nobody@gone.test"])

        (received,) = sink.wait_for(1)
        assert received.recipients == ["buyer@customer.test"]
        wait_status(gateway.engine, "sent", 1)
        (bounced,) = wait_status(gateway.engine, "bounced", 1)
        assert bounced["recipient"] == "nobody@gone.test" and "no MX and no address" in bounced["last_text"]
        with gateway.engine.connect() as connection:
            hosts = {row.mx_host for row in connection.execute(select(attempts.c.mx_host, attempts.c.code)) if row.code == 250}
        assert hosts == {f"alive.customer.test[127.0.0.1]:{sink.port}"}
    finally:
        dns_server.stop()
