"""A site's deferred count is what waits now: a loopback receiving server, reached through MX
records on a loopback DNS server, answers 451 for two domains hosted at one provider site; the
operator's figures count their deferred recipients under that site, live, from any reader."""

from __future__ import annotations

import time

from sqlalchemy import update

from scriptmail.config import SiteSettings
from scriptmail.store import site_deferred
from scriptmail.store.schema import recipients
from tests.support.dns_server import DnsServer
from tests.support.gateway import submit, wait_status
from tests.support.sink import Behaviour, Sink


def test_deferred_recipients_count_under_the_site_their_mx_hosts_belong_to(make_gateway, sink: Sink) -> None:
    dns_server = DnsServer(
        {
            ("shop-customer.test.", "MX"): ["10 mx1.bigmail.test."],
            ("club-customer.test.", "MX"): ["10 mx2.bigmail.test."],
            ("own-server.test.", "MX"): ["10 mail.own-server.test."],
            ("mx1.bigmail.test.", "A"): ["127.0.0.1"],
            ("mx2.bigmail.test.", "A"): ["127.0.0.1"],
            ("mail.own-server.test.", "A"): ["127.0.0.1"],
        }
    ).start()
    sink.behaviour = Behaviour(
        rcpt=lambda address: "250 2.1.5 ok" if address.endswith("@sink.test") else "451 4.3.0 temporary failure"
    )
    try:
        gateway = make_gateway(
            nameservers=["127.0.0.1"], dns_port=dns_server.port, smtp_port=sink.port, backoff_min=600, backoff_max=1200,
            sites={"bigmail": SiteSettings(mx=["bigmail.test"])},
        )  # fmt: skip
        to = ["a@shop-customer.test", "b@shop-customer.test", "c@club-customer.test", "d@own-server.test", "e@sink.test"]
        submit(gateway.smtp_port, b"Subject: later\r\n\r\nhello\r\n", to)
        wait_status(gateway.engine, "deferred", 4)
        wait_status(gateway.engine, "sent", 1)
        table = gateway.settings.delivery.site_table()
        deadline = time.monotonic() + 15  # the node writes the domains' sites with its next snapshot
        while True:
            with gateway.engine.connect() as connection:
                shown = {row["name"]: row for row in site_deferred.current_sites(connection, table, time.time(), max_age=0)}
            if shown.get("bigmail", {}).get("deferred") == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print(f"\ndeferred per site: { {name: row['deferred'] for name, row in shown.items()} }")
        assert shown["bigmail"]["deferred"] == 3  # two domains, one site: found from their MX hosts
        assert shown["own-server.test"]["deferred"] == 1  # a domain with its own MX is its own site
        assert "sink.test" not in shown or shown["sink.test"]["deferred"] == 0  # sent: not waiting
        # It is what waits now: once they are no longer deferred, they are no longer counted.
        with gateway.engine.begin() as connection:
            connection.execute(
                update(recipients).where(recipients.c.domain == "shop-customer.test").values(status="sent", next_attempt_at=0)
            )
        with gateway.engine.connect() as connection:
            assert site_deferred.by_site(connection, table, max_age=0).get("bigmail") == 1
    finally:
        dns_server.stop()
