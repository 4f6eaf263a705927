"""Block, hold, unblock and purge with a real sink (issue 3's first scenarios)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import select

from scriptmail.store.schema import recipients
from tests.support.daemon import SCRIPTMAIL
from tests.support.gateway import HOSTING, RunningGateway, submit, wait_status
from tests.support.sink import Behaviour, Sink


def cli(gateway: RunningGateway, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    config = Path(gateway.settings.intake.socket).parent / "cli.toml"
    lines = [f'database_url = "{gateway.settings.database_url}"']
    for name, plan in gateway.settings.plans.items():  # the CLI must know the gateway's plans
        lines.append(f"[plans.{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in plan.model_dump().items())
    config.write_text("\n".join(lines) + "\n")
    result = subprocess.run([SCRIPTMAIL, "--config", str(config), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


def statuses(gateway: RunningGateway) -> list[str]:
    with gateway.engine.connect() as connection:
        return sorted(connection.execute(select(recipients.c.status)).scalars())


def test_block_holds_new_mail_and_unblock_delivers_it_exactly_once(gateway: RunningGateway, sink: Sink) -> None:
    assert "active -> blocked" in cli(gateway, "hosting", "block", HOSTING).stdout
    for number in range(50):
        submit(gateway.smtp_port, f"Subject: held {number}\r\n\r\nx\r\n".encode(), [f"r{number}@sink.test"])
    time.sleep(1.5)
    assert sink.messages == []
    assert statuses(gateway) == ["held"] * 50
    held = json.loads(cli(gateway, "queue", "--held", "--json").stdout)
    assert len(held) == 50 and {row["status"] for row in held} == {"held"}

    assert "50 recipient(s) back in the queue" in cli(gateway, "hosting", "unblock", HOSTING).stdout
    sink.wait_for(50)
    wait_status(gateway.engine, "sent", 50)
    time.sleep(0.5)
    assert sorted(address for message in sink.messages for address in message.recipients) == sorted(f"r{n}@sink.test" for n in range(50))


def test_block_then_purge_deletes_the_held_mail_and_sending_resumes(gateway: RunningGateway, sink: Sink) -> None:
    cli(gateway, "hosting", "block", HOSTING)
    for number in range(20):
        submit(gateway.smtp_port, f"Subject: spam {number}\r\n\r\nx\r\n".encode(), [f"r{number}@sink.test"])
    purged = cli(gateway, "hosting", "purge", HOSTING).stdout
    assert "blocked -> purging -> active; 20 recipient(s) purged" in purged
    assert statuses(gateway) == ["purged"] * 20
    submit(gateway.smtp_port, b"Subject: after the purge\r\n\r\nx\r\n", ["fresh@sink.test"])
    (received,) = sink.wait_for(1)
    assert received.recipients == ["fresh@sink.test"]
    history = json.loads(cli(gateway, "hosting", "history", HOSTING, "--json").stdout)
    assert [(row["action"], row["from_state"], row["to_state"]) for row in history] == [
        ("purge-done", "purging", "active"), ("purge", "blocked", "purging"), ("block", "active", "blocked")
    ]
    assert history[0]["actor"] == "system" and history[0]["reason"] == "20 recipient(s) purged"


def test_refused_actions_say_why_and_change_nothing(gateway: RunningGateway) -> None:
    assert "block sending first" in cli(gateway, "hosting", "purge", HOSTING, expect=1).stderr
    assert "not blocked" in cli(gateway, "hosting", "unblock", HOSTING, expect=1).stderr
    assert "no hosting named" in cli(gateway, "hosting", "block", "ghost.example", expect=1).stderr
    assert json.loads(cli(gateway, "hosting", "history", HOSTING, "--json").stdout) == []
    cli(gateway, "hosting", "state", HOSTING, "spam", "--reason", "abuse report 4711")
    assert "purge the held mail first" not in cli(gateway, "hosting", "unblock", HOSTING).stderr  # operators may


def test_block_takes_effect_under_load(make_gateway, sink: Sink) -> None:
    """Once BLOCK returns, no new SMTP transaction for the hosting reaches the sink."""
    gateway = make_gateway(per_destination=2)
    sink.behaviour = Behaviour(delay=0.05)
    stop = threading.Event()

    def load() -> None:
        number = 0
        while not stop.is_set():
            submit(gateway.smtp_port, f"Subject: load {number}\r\n\r\nx\r\n".encode(), [f"l{number}@sink.test"])
            number += 1

    loader = threading.Thread(target=load)
    loader.start()
    try:
        sink.wait_for(10)
        cli(gateway, "hosting", "block", HOSTING)
        blocked_at = time.time()
        time.sleep(2)
    finally:
        stop.set()
        loader.join(30)
    # The sink records a message when its reply to the final dot is due; a transaction that
    # started before BLOCK returned may end just after it, by at most the sink's delay.
    late = [message for message in sink.messages if message.at > blocked_at + 0.2]
    assert late == []
    assert "held" in statuses(gateway)


def test_the_gateway_expires_mail_held_too_long(make_gateway, sink: Sink) -> None:
    gateway = make_gateway(control={"sweep_interval": 0.2})
    cli(gateway, "hosting", "block", HOSTING)
    submit(gateway.smtp_port, b"Subject: stuck\r\n\r\nx\r\n", ["late@sink.test"])
    with gateway.engine.begin() as connection:  # as if it had been held 73 hours ago
        connection.exec_driver_sql("UPDATE recipients SET held_at = held_at - 73 * 3600")
    (expired,) = wait_status(gateway.engine, "expired", 1)
    assert expired["last_text"].startswith("held for 72 h")
    cli(gateway, "hosting", "unblock", HOSTING)
    time.sleep(1)
    assert sink.messages == []  # expired mail is not sent when the hosting sends again
