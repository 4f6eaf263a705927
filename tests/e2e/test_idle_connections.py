"""A connection kept open between messages holds its site's slot: a receiving server behind a site
of one connection, reached for two routed domains, never sees two sessions at once, though
delivery parks each connection for the next message to its destination."""

from __future__ import annotations

import smtplib
import time

from sqlalchemy import Engine

from scriptmail.config import SiteSettings
from tests.support.gateway import HOSTING, PASSWORD, RunningGateway, node_settings, wait_status
from tests.support.sink import Sink


def send(port: int, number: int, domain: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login(HOSTING, PASSWORD)
        message = f"Subject: n{number}\r\nMessage-ID: <i{number}@shop.example>\r\n\r\nhello\r\n".encode()
        assert not client.sendmail("web@shop.example", [f"r{number}@{domain}"], message)


def test_a_parked_connection_counts_against_its_sites_limit(database_url: str, shop: Engine, tmp_path, sink: Sink) -> None:
    # Two names of one server: two destinations, so a connection parked for one does not serve the other.
    routes = {"one.test": f"127.0.0.1:{sink.port}", "two.test": f"localhost:{sink.port}"}
    settings = node_settings(
        database_url, tmp_path, routes=routes, idle_seconds=30,
        sites={"pair": SiteSettings(domains=["one.test", "two.test"], connections=1)},
    )  # fmt: skip
    gateway = RunningGateway(settings).start()
    try:
        # Each message leaves its connection parked for its own destination; the next one, to the
        # other domain of the site, needs a connection of its own.
        for number in range(6):
            send(gateway.smtp_port, number, ("one.test", "two.test")[number % 2])
            sink.wait_for(number + 1)
            time.sleep(0.2)
        wait_status(shop, "sent", 6)
        time.sleep(1.5)  # the last slot goes back after a second: its parked connection is closed with it
        print(f"\n{sink.connections} sessions for 6 messages, at most {sink.most_open} at once; {sink.open_now} open after")
        assert sink.most_open == 1  # the site's limit, though each destination had a connection parked
        assert sink.open_now == 0  # and none stays open once its slot has gone back
    finally:
        gateway.stop()


def test_a_site_of_two_connections_under_bursts_to_two_destinations_never_sees_three(
    database_url: str, shop: Engine, tmp_path, sink: Sink
) -> None:
    routes = {"one.test": f"127.0.0.1:{sink.port}", "two.test": f"localhost:{sink.port}"}
    settings = node_settings(
        database_url, tmp_path, routes=routes, idle_seconds=30, batch_size=4,
        sites={"pair": SiteSettings(domains=["one.test", "two.test"], connections=2)},
    )  # fmt: skip
    gateway = RunningGateway(settings).start()
    try:
        for burst in range(4):
            for number in range(burst * 6, burst * 6 + 6):
                send(gateway.smtp_port, number, ("one.test", "two.test")[number % 2])
            sink.wait_for(burst * 6 + 6)
            time.sleep(0.3 * burst)  # between bursts, connections stay parked for a while
        wait_status(shop, "sent", 24)
        time.sleep(1.5)
        print(f"\n{sink.connections} sessions for 24 messages in bursts, at most {sink.most_open} at once; {sink.open_now} open after")
        assert sink.most_open <= 2
        assert sink.open_now == 0
    finally:
        gateway.stop()
