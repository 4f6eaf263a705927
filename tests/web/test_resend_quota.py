"""Sending an email again counts as new mail for the hourly quota: with the hour's room spent, the
re-sent recipient waits in the queue instead of going out."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from scriptmail.config import PlanSettings
from scriptmail.control.states import Actor
from scriptmail.store.engine import for_writing
from scriptmail.store.hosting_control import change_plan
from scriptmail.store.schema import messages, recipients
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink
from tests.support.web_client import A

REFUSED: set[str] = set()


@pytest.fixture
def gateway(make_gateway) -> RunningGateway:
    REFUSED.clear()
    REFUSED.add("gone@sink.test")
    # The bounce notice to the sender keeps the body until it is written; written only hourly here,
    # so "send again" finds the body however slowly the machine runs.
    running = make_gateway(plans={"two": PlanSettings(hourly=2)}, control={"notice_interval": 3600})
    with for_writing(running.engine).begin() as connection:
        change_plan(connection, HOSTING, "two", Actor.OPERATOR, time.time())
    return running


def test_sending_again_counts_as_new_mail_for_the_hourly_quota(gateway: RunningGateway, area, sink: Sink) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "550 5.7.1 refused by policy" if address in REFUSED else "250 2.1.5 ok")
    # Two recipients spend the hour's room of 2.
    submit(gateway.smtp_port, b"Subject: order\r\n\r\nyour order\r\n", ["gone@sink.test", "kept@sink.test"])
    wait_status(gateway.engine, "bounced", 1)
    wait_status(gateway.engine, "sent", 1)
    with gateway.engine.connect() as connection:
        message_id = connection.execute(select(messages.c.id)).scalar_one()
    REFUSED.clear()  # the cause is fixed
    browser = area()
    browser.login(A)
    path = f"/hostings/{HOSTING}/mail/{message_id}"
    page = browser.get(f"{path}?confirm=resend")
    assert 'value="gone@sink.test"' in page.text  # the body is kept (the bounce notice to the sender holds it)
    done = browser.post(f"{path}/resend", {"csrf": browser.csrf(page), "confirm": "yes", "to": "gone@sink.test"})
    assert "sent again to 1 recipient" in browser.get(done.headers["location"]).text
    time.sleep(2.5)  # without the quota it would be delivered within this
    with gateway.engine.connect() as connection:
        status = connection.execute(select(recipients.c.status).where(recipients.c.address == "gone@sink.test")).scalar_one()
    assert status in ("queued", "deferred") and len(sink.messages) == 1, (status, len(sink.messages))
