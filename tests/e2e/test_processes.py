"""`serve --processes N`: copies sharing the SMTP port, one owner for the socket and maildrop,
a dead copy started again, and everything stopped by one SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from scriptmail.store.schema import attempts, nodes
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


def _wait_listening(port: int, timeout: float = 30) -> None:
    """A node registers before its listeners open: wait for the port itself."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


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
        _wait_listening(port)
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


def _niceness(pid: int) -> int:
    """Field 19 of /proc/PID/stat (after the parenthesised command name)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def test_several_processes_need_a_fixed_port(tmp_path: Path) -> None:
    config = tmp_path / "scriptmail.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "x.db"}"\n[intake]\nlisten = "127.0.0.1:0"\n')
    result = subprocess.run([SCRIPTMAIL, "--config", str(config), "serve", "--processes", "2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "fixed port" in result.stderr



def test_split_serves_from_processes_of_their_own_and_none_outlives_the_supervisor(
    shop: Engine, database_url: str, tmp_path: Path, sink: Sink
) -> None:
    port, web_port = free_port(), free_port()
    config = write_config(tmp_path / "scriptmail.toml", database_url, sink.port, port)
    config.write_text(config.read_text().replace('[web]\nlisten = "127.0.0.1:0"', f'[web]\nlisten = "127.0.0.1:{web_port}"'))
    parent = subprocess.Popen(
        [SCRIPTMAIL, "--config", str(config), "serve", "--no-demo", "--split"],
        env=os.environ | {"SCRIPTMAIL_NODE": "mx"}, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        registered = _wait_nodes(shop, 3, timeout=90)  # three interpreters start at once
        assert set(registered) == {"mx-0", "mx-delivery-0", "mx-web"}
        assert len(set(registered.values())) == 3  # three processes
        _wait_listening(port)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("web@shop.example", ["split@sink.test"], b"Subject: split\r\n\r\nx\r\n")
        wait_status(shop, "sent", 1)
        with shop.connect() as connection:
            assert connection.execute(select(attempts.c.node)).scalars().all() == ["mx-delivery-0"]
        _wait_listening(web_port)
        assert b"scriptmail_" in urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=10).read()
        # The web process gives way to intake and delivery (web.nice, 10 by default).
        base = os.nice(0)  # the suite may itself run niced
        assert {node: _niceness(pid) for node, pid in registered.items()} == {"mx-0": base, "mx-delivery-0": base, "mx-web": min(19, base + 10)}
        # ...and, on Linux, takes a core only when the mail leaves one free (web.idle_priority),
        # every thread of it: the store's readers and the rate limit's asks too.
        policies = {node: {os.sched_getscheduler(int(thread)) for thread in os.listdir(f"/proc/{pid}/task")} for node, pid in registered.items()}
        assert policies["mx-web"] == {os.SCHED_IDLE}
        assert os.SCHED_IDLE not in policies["mx-0"] | policies["mx-delivery-0"]
    finally:
        parent.send_signal(signal.SIGKILL)  # a supervisor that dies takes its copies with it
        parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in registered.values()):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in registered.values())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waits for its reaper: it runs no more
        return stat.read().rpartition(")")[2].split()[0] != "Z"
