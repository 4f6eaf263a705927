"""The daily report and a delivery's bounces become webhook events, through a running gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from scriptmail.reports.schedule import due_at
from scriptmail.store import webhooks
from scriptmail.store.engine import for_writing
from scriptmail.store.schema import webhook_messages
from tests.e2e.test_daily_reports import UTC, _clock_at, _failing_day, _today
from tests.e2e.test_sending_policy import Clock
from tests.support.gateway import HOSTING
from tests.support.sink import Sink
from tests.support.webhook_receiver import WebhookReceiver


def _wait(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.1)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()


def test_bounces_and_the_daily_report_reach_the_receiver(make_gateway, sink: Sink, receiver: WebhookReceiver) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock, webhooks={"allow_networks": ["127.0.0.0/8"], "poll_interval": 0.2})
    with for_writing(gateway.engine).begin() as connection:
        _, receiver.secret = webhooks.create_endpoint(connection, HOSTING, receiver.url, "message.bounced,report.sent", clock())
    webhooks.invalidate()
    _failing_day(gateway, sink)
    _wait(lambda: len(receiver.received) >= 2)  # the bounces, sent while the clock is right
    _clock_at(clock, due_at(_today().date(), 6, UTC) + 60)
    assert len(gateway.call(gateway.gateway.scheduler.send_due_reports())) == 1
    _wait(lambda: any(request.body["type"] == "report.sent" for request in receiver.received))
    with gateway.engine.connect() as connection:
        types = sorted(connection.execute(select(webhook_messages.c.event_type)).scalars())
    assert types == ["message.bounced", "message.bounced", "report.sent"]
    report = next(request.body for request in receiver.received if request.body["type"] == "report.sent")
    assert report["data"] | {"queue_id": 0} == {
        "hosting": HOSTING, "day": _today().date().isoformat(), "failures": 2, "to": "owner@sink.test", "queue_id": 0, "late": False,
    }  # fmt: skip
    bounced = {request.body["data"]["to"] for request in receiver.received if request.body["type"] == "message.bounced"}
    assert bounced == {"bad1@sink.test", "bad2@sink.test"}
    # Signed with the gateway's clock, moved to the next morning: only the bounces' stamps are current.
    assert all(request.verified for request in receiver.received if request.body["type"] == "message.bounced")
