"""`serve --processes N`: copies sharing the SMTP port, one owner for the socket and maildrop,
a dead copy started again, and everything stopped by one SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from scriptmail.store.schema import nodes
from tests.support.daemon import SCRIPTMAIL, free_port, write_config
from tests.support.gateway import wait_status
from tests.support.sink import Sink

pytestmark = pytest.mark.slow


def _wait_nodes(engine: Engine, count: int, timeout: float = 30) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            found = dict(connection.execute(select(nodes.c.name, nodes.c.pid)).all())
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nodes registered: {found}")


def test_copies_share_the_work_and_a_dead_copy_comes_back(shop: Engine, database_url: str, tmp_path: Path, sink: Sink) -> None:
    port = free_port()
    config = write_config(tmp_path / "scriptmail.toml", database_url, sink.port, port)
    env = os.environ | {"SCRIPTMAIL_NODE": "mx"}
    parent = subprocess.Popen(
        [SCRIPTMAIL, "--config", str(config), "serve", "--no-demo", "--processes", "2"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        registered = _wait_nodes(shop, 2)
        assert set(registered) == {"mx-0", "mx-1"}
        time.sleep(0.5)
        for number in range(20):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("web@shop.example", [f"r{number}@sink.test"], f"Subject: {number}\r\n\r\nx\r\n".encode())
        sendmail = str(Path(sys.executable).with_name("scriptmail-sendmail"))
        dropped = subprocess.run(
            [sendmail, "-t", "-i"], input=b"To: php@sink.test\nSubject: php\n\nx\n", capture_output=True, timeout=30,
            env=os.environ | {"SCRIPTMAIL_SOCKET": str(tmp_path / "intake.sock")},
        )  # fmt: skip
        assert dropped.returncode == 0, dropped.stderr
        sink.wait_for(21)
        wait_status(shop, "sent", 21)

        os.kill(registered["mx-1"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _wait_nodes(shop, 2)["mx-1"] == registered["mx-1"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _wait_nodes(shop, 2)["mx-1"] != registered["mx-1"]
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(40)
    assert parent.returncode == 0
    with shop.connect() as connection:
        assert connection.execute(select(nodes)).all() == []  # every copy unregistered on the way out


def test_several_processes_need_a_fixed_port(tmp_path: Path) -> None:
    config = tmp_path / "scriptmail.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "x.db"}"\n[intake]\nlisten = "127.0.0.1:0"\n')
    result = subprocess.run([SCRIPTMAIL, "--config", str(config), "serve", "--processes", "2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "fixed port" in result.stderr
