"""A purge of 100,000 held recipients while another hosting keeps sending (issue 3).

The figures (purge time, the other hosting's accept latency) come from the benchmark
(`benchmarks/purge.py`); this test checks what must hold whatever the machine: the purge
completes, it deletes exactly the held mail, and the other hosting is never stalled by it.
"""

from __future__ import annotations

import smtplib
import threading
import time

from sqlalchemy import func, select

from scriptmail.control.states import Action, Actor
from scriptmail.model import HostingState, Origin, Submission
from scriptmail.store import hostings as hosting_store
from scriptmail.store import queue
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_state
from scriptmail.store.schema import recipients
from tests.e2e.test_sending_controls import cli
from tests.support.gateway import HOSTING, PASSWORD
from tests.support.sink import Sink

BULK = "bulk.example"
HELD = 100_000


def fill_held(engine, name: str, count: int, per_message: int = 10) -> None:
    """`count` held recipients for a blocked hosting, committed in chunks like a busy day would."""
    with for_writing(engine).begin() as connection:
        hosting = hosting_store.add_hosting(connection, name, f"owner@{name}", plan="unlimited")
        change_state(connection, name, Action.BLOCK, Actor.CUSTOMER, time.time())
    data = b"Subject: newsletter\r\n\r\n" + b"x" * 2000 + b"\r\n"
    for start in range(0, count, 10_000):
        with for_writing(engine).begin() as connection:
            queue.insert_submissions(
                connection,
                [
                    (
                        Submission(hosting.id, f"news@{name}", tuple(f"r{start + m + n}@far.test" for n in range(per_message)),
                                   data, Origin.SENDMAIL, "uid:1"),
                        time.time(),
                    )  # fmt: skip
                    for m in range(0, 10_000, per_message)
                ],
            )


def test_purging_100k_held_recipients_does_not_stall_another_hosting(make_gateway, sink: Sink, shop) -> None:
    fill_held(shop, BULK, HELD)
    gateway = make_gateway()
    latencies: list[float] = []
    stop = threading.Event()

    def other_hosting_sends() -> None:
        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
            client.login(HOSTING, PASSWORD)
            number = 0
            while not stop.is_set():
                began = time.monotonic()
                client.sendmail("web@shop.example", [f"o{number}@sink.test"], b"Subject: order\r\n\r\nthanks\r\n")
                latencies.append(time.monotonic() - began)
                number += 1

    loader = threading.Thread(target=other_hosting_sends)
    loader.start()
    try:
        started = time.monotonic()
        result = cli(gateway, "hosting", "purge", BULK).stdout
        purge_seconds = time.monotonic() - started
    finally:
        stop.set()
        loader.join(60)
    assert f"blocked -> purging -> active; {HELD} recipient(s) purged" in result
    with shop.connect() as connection:
        counts = dict(
            connection.execute(
                select(recipients.c.status, func.count())
                .where(recipients.c.hosting_id == hosting_store.find_hosting(connection, name=BULK).id)
                .group_by(recipients.c.status)
            ).all()
        )
        assert counts == {"purged": HELD}
        assert hosting_store.find_hosting(connection, name=BULK).state is HostingState.ACTIVE
    assert len(latencies) > 20, "the other hosting could hardly send during the purge"
    assert max(latencies) < 3.0, f"the other hosting waited {max(latencies):.2f} s for a 250 during the purge"
    print(f"purge of {HELD} in {purge_seconds:.1f} s; other hosting: {len(latencies)} accepted, max {max(latencies) * 1000:.0f} ms")
