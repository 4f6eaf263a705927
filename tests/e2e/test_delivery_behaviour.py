"""How delivery treats the receiving server: STARTTLS, a slow final reply, giving up, long lines."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scriptmail.intake.tls import ensure_self_signed, server_context
from tests.support.gateway import submit, wait_status
from tests.support.sink import Behaviour, Sink


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    """This module's sink offers STARTTLS with a self-signed certificate."""
    cert, key = ensure_self_signed(tmp_path / "sink-tls", "sink.test")
    running = Sink(tls=server_context(cert, key)).start()
    yield running
    running.stop()


def test_starttls_is_used_when_the_server_offers_it(gateway, sink: Sink) -> None:
    submit(gateway.smtp_port, b"Subject: private\r\n\r\nsecret\r\n", ["alice@sink.test"])
    (received,) = sink.wait_for(1)
    assert received.tls


def test_a_slow_answer_to_the_final_dot_is_awaited_not_retried(make_gateway, sink: Sink) -> None:
    """RFC 5321 §4.5.3.2.6: giving up early on the final reply causes duplicate deliveries."""
    gateway = make_gateway(command_timeout=1, data_timeout=30)
    sink.behaviour = Behaviour(delay=3)
    submit(gateway.smtp_port, b"Subject: slow\r\n\r\nwait for me\r\n", ["alice@sink.test"])
    (sent,) = wait_status(gateway.engine, "sent", 1, timeout=30)
    assert sent["attempts"] == 1
    assert len(sink.messages) == 1


def test_temporary_failures_past_the_lifetime_expire(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(lifetime=60, backoff_min=1, backoff_max=1)
    sink.behaviour = Behaviour(rcpt=lambda address: "450 4.2.1 mailbox busy")
    submit(gateway.smtp_port, b"Subject: never\r\n\r\nbody\r\n", ["busy@sink.test"])
    wait_status(gateway.engine, "deferred", 1)
    with gateway.engine.begin() as connection:  # make the message look two minutes old
        connection.exec_driver_sql("UPDATE recipients SET queued_at = queued_at - 120")
    (expired,) = wait_status(gateway.engine, "expired", 1, timeout=30)
    assert expired["last_code"] == 450
    assert expired["last_text"].startswith("gave up") and "4.2.1 mailbox busy" in expired["last_text"]


def test_lines_longer_than_998_octets_are_folded_on_the_wire(gateway, sink: Sink) -> None:
    sendmail = str(Path(sys.executable).with_name("scriptmail-sendmail"))
    long_line = "word " * 700  # 3,500 octets in one line, as some PHP scripts write HTML
    message = f"To: reader@sink.test\nSubject: long\n\n{long_line}\n".encode()
    env = os.environ | {"SCRIPTMAIL_SOCKET": str(gateway.settings.intake.socket)}
    result = subprocess.run([sendmail, "-t", "-i", "-f", "web@shop.example"], input=message, env=env, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    (received,) = sink.wait_for(1)
    lines = received.raw.split(b"\r\n")
    assert max(map(len, lines)) <= 998
    body = received.data.split(b"\r\n\r\n", 1)[1]
    assert body.replace(b"\r\n", b"") == long_line.encode()
