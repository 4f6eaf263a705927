"""Node names: a live process keeps its name; a crashed one's name can be taken back."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import Engine

from scriptmail.store import nodes
from scriptmail.store.engine import for_writing


def _register(engine: Engine, name: str, now: float, pid: int, hostname: str) -> None:
    with for_writing(engine).begin() as connection:
        nodes.register(connection, name, now, pid=pid, hostname=hostname)


def test_a_name_held_by_a_live_local_process_is_refused(engine: Engine) -> None:
    _register(engine, "mx1", 1000.0, pid=1, hostname="here")  # pid 1 is always alive
    with pytest.raises(nodes.NodeInUse, match="in use by pid 1"):
        _register(engine, "mx1", 1001.0, pid=os.getpid(), hostname="here")


def test_a_name_left_by_a_dead_local_process_is_taken_back(engine: Engine) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead_pid = finished.pid
    _register(engine, "mx1", 1000.0, pid=dead_pid, hostname="here")
    _register(engine, "mx1", 1001.0, pid=os.getpid(), hostname="here")


def test_a_remote_name_is_free_once_its_heartbeat_is_stale(engine: Engine) -> None:
    _register(engine, "mx1", 1000.0, pid=4242, hostname="elsewhere")
    with pytest.raises(nodes.NodeInUse):
        _register(engine, "mx1", 1000.0 + nodes.STALE_AFTER - 1, pid=os.getpid(), hostname="here")
    _register(engine, "mx1", 1000.0 + nodes.STALE_AFTER + 1, pid=os.getpid(), hostname="here")


def test_the_same_process_may_register_again(engine: Engine) -> None:
    _register(engine, "mx1", 1000.0, pid=os.getpid(), hostname="here")
    _register(engine, "mx1", 1001.0, pid=os.getpid(), hostname="here")
