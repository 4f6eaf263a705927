"""Processes that share a store hear each other at once: mail accepted by an intake process is
delivered by a delivery process without waiting for its poll, and BLOCK answers as soon as
every running node has acted on it, not after the agents' one-second reread."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import Engine

from scriptmail.store import accounts
from scriptmail.store.hosting_control import STATE_REFRESH
from tests.support.daemon import Daemon, free_port, write_config
from tests.support.gateway import HOSTING, wait_status
from tests.support.sink import Sink

pytestmark = pytest.mark.slow

SLOW_POLL = 30  # without a push, delivery would notice new mail only after this long


def _config(tmp_path: Path, database_url: str, sink: Sink, smtp_port: int, web_port: int) -> Path:
    config = write_config(tmp_path / "scriptmail.toml", database_url, sink.port, smtp_port)
    text = config.read_text().replace("poll_interval = 0.1", f"poll_interval = {SLOW_POLL}")
    config.write_text(text.replace('[web]\nlisten = "127.0.0.1:0"', f'[web]\nlisten = "127.0.0.1:{web_port}"'))
    return config


def test_mail_accepted_by_one_process_is_delivered_by_another_at_once(
    shop: Engine, database_url: str, tmp_path: Path, sink: Sink
) -> None:
    smtp_port = free_port()
    config = _config(tmp_path, database_url, sink, smtp_port, free_port())
    outbound = Daemon(config, "out-1", parts="delivery").start()
    intake = Daemon(config, "in-1", parts="intake", port=smtp_port).start()
    try:
        time.sleep(0.5)  # the delivery agent has found nothing due and waits for news
        for number in range(3):
            started = time.monotonic()
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
                client.sendmail("web@shop.example", [f"buyer{number}@sink.test"], b"Subject: hi\r\n\r\nbody\r\n")
            wait_status(shop, "sent", number + 1, timeout=SLOW_POLL / 2)
            assert time.monotonic() - started < SLOW_POLL / 3
    finally:
        intake.stop()
        outbound.stop()
    assert sorted(m.recipients[0] for m in sink.messages) == ["buyer0@sink.test", "buyer1@sink.test", "buyer2@sink.test"]


def test_block_answers_as_soon_as_every_node_holds_it(shop: Engine, database_url: str, tmp_path: Path, sink: Sink) -> None:
    web_port = free_port()
    config = _config(tmp_path, database_url, sink, free_port(), web_port)
    with shop.begin() as connection:
        owner = accounts.add_user(connection, "owner@shop.example", "a-long-password-1")
        accounts.grant(connection, owner, HOSTING)
        _, token = accounts.create_token(connection, owner, "test")
    daemons = [Daemon(config, "out-1", parts="delivery").start(), Daemon(config, "out-2", parts="delivery").start()]
    daemons.append(Daemon(config, "web-1", parts="web", port=web_port).start())
    url = f"http://127.0.0.1:{web_port}/1.0/hosting/web/{HOSTING}/email/request"
    answered: list[float] = []
    try:
        with httpx2.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            for _ in range(5):
                started = time.monotonic()
                reply = client.post(url, json={"action": "BLOCK"})
                answered.append(time.monotonic() - started)
                assert reply.status_code == 200 and reply.json() == "ko"
                assert client.post(url, json={"action": "UNBLOCK"}).json() == "ok"
    finally:
        for daemon in daemons:
            daemon.stop()
    # Without every node's acknowledgement the answer would wait the agents' reread and more.
    assert sorted(answered)[2] < STATE_REFRESH, answered
