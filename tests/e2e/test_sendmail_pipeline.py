"""PHP's way in: `scriptmail-sendmail -t -i` to a running gateway, and to a stopped one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scriptmail.store import log as store_log
from tests.support.gateway import RunningGateway, wait_status
from tests.support.sink import Behaviour, Sink

SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))

PHP_MESSAGE = (
    b"To: buyer@sink.test\n"
    b"Bcc: audit@sink.test\n"
    b"Subject: Contact form\n"
    b"X-PHP-Originating-Script: 1000:contact.php\n"
    b"\n"
    b"Hello from PHP.\n"
    b".\n"
    b"The dot above is text.\n"
)


def sendmail(gateway: RunningGateway, *args: str, data: bytes = PHP_MESSAGE, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {
        "SCRIPTMAIL_SOCKET": str(gateway.settings.intake.socket),
        "SCRIPTMAIL_MAILDROP": str(gateway.settings.intake.maildrop),
    }
    return subprocess.run([SENDMAIL, *args], input=data, capture_output=True, env=env, timeout=30, cwd=cwd)


def test_php_mail_is_delivered_with_crlf_and_without_bcc(gateway: RunningGateway, sink: Sink, tmp_path: Path) -> None:
    result = sendmail(gateway, "-t", "-i", "-f", "web@shop.example", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    (received,) = sink.wait_for(1)
    assert sorted(received.recipients) == ["audit@sink.test", "buyer@sink.test"]
    assert received.mail_from == "web@shop.example"
    assert b"Bcc" not in received.data
    assert received.data.endswith(b"Hello from PHP.\r\n.\r\nThe dot above is text.\r\n")
    assert b"\r\n..\r\n" in received.raw  # the lone dot is text, dot-stuffed on the wire
    rows = wait_status(gateway.engine, "sent", 2)
    assert {row["origin"] for row in rows} == {"sendmail"}
    assert {row["script"] for row in rows} == {"1000:contact.php"}


def test_injection_options_are_refused_and_nothing_is_queued(gateway: RunningGateway, sink: Sink) -> None:
    result = sendmail(gateway, "-t", "-i", "-X/var/www/shell.php", "-OQueueDirectory=/tmp")
    assert result.returncode == 64
    assert b"-X" in result.stderr
    with gateway.engine.connect() as connection:
        assert store_log.recent(connection) == []


def test_mail_written_while_the_daemon_is_down_is_delivered_when_it_returns(make_gateway, sink: Sink) -> None:
    gateway = make_gateway()
    gateway.stop()
    result = sendmail(gateway, "-t", "-i")
    assert result.returncode == 0, result.stderr
    assert len(list((gateway.settings.intake.maildrop / "new").iterdir())) == 1

    restarted = make_gateway()
    (received,) = sink.wait_for(1)
    assert b"Subject: Contact form" in received.data
    rows = wait_status(restarted.engine, "sent", 2)
    assert {row["origin"] for row in rows} == {"maildrop"}
    assert list((gateway.settings.intake.maildrop / "new").iterdir()) == []


def test_sendmail_bp_lists_only_the_callers_waiting_mail(gateway: RunningGateway, sink: Sink) -> None:
    sink.behaviour = Behaviour(rcpt=lambda address: "451 4.7.1 greylisted, come back later")
    assert sendmail(gateway, "-t", "-i", "-f", "web@shop.example").returncode == 0
    wait_status(gateway.engine, "deferred", 2)

    listing = sendmail(gateway, "-bp", data=b"")
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout.decode()
    assert "web@shop.example" in text and "buyer@sink.test" in text and "audit@sink.test" in text
    assert "(4.7.1 greylisted, come back later)" in text
    assert text.rstrip().endswith("in 1 Request.")
