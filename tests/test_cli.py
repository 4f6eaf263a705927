"""The `scriptmail` command as an operator uses it, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTMAIL = str(Path(sys.executable).with_name("scriptmail"))


@pytest.fixture
def run(database_url: str, tmp_path: Path):
    config = tmp_path / "scriptmail.toml"
    config.write_text(f'database_url = "{database_url}"\n')

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run([SCRIPTMAIL, "--config", str(config), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert result.returncode == expect, (result.stdout, result.stderr)
        return result

    return run


def test_hosting_lifecycle(run) -> None:
    run("db", "upgrade")
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example", "--uid", "1500", "--smtp-password", "pw")
    (hosting,) = json.loads(run("hosting", "list", "--json").stdout)
    assert hosting | {"id": 0} == {
        "id": 0, "name": "shop.example", "owner_email": "owner@shop.example", "uid": 1500,
        "plan": "default", "state": "active", "has_smtp_password": True,
    }
    run("hosting", "set", "shop.example", "--plan", "pro", "--no-uid", "--smtp-password", "")
    shown = json.loads(run("hosting", "show", "shop.example", "--json").stdout)
    assert (shown["plan"], shown["uid"], shown["has_smtp_password"], shown["recipients"]) == ("pro", None, False, {})
    assert "shop.example" in run("hosting", "list").stdout


def test_refusals_are_clear_and_non_zero(run) -> None:
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example", "--uid", "1500")
    duplicate = run("hosting", "add", "shop.example", "--owner", "owner@shop.example", expect=1)
    assert "already exists" in duplicate.stderr
    assert "already exists" in run("hosting", "add", "other.example", "--owner", "o@x.test", "--uid", "1500", expect=1).stderr
    assert "invalid e-mail" in run("hosting", "add", "x.example", "--owner", "not-an-address", expect=1).stderr
    assert "invalid hosting name" in run("hosting", "add", "Bad Name", "--owner", "o@x.test", expect=1).stderr
    assert "no hosting named" in run("hosting", "show", "ghost.example", expect=1).stderr
    assert "no hosting named" in run("hosting", "set", "ghost.example", "--plan", "x", expect=1).stderr


def test_queue_and_log_are_empty_lists_for_scripts(run) -> None:
    assert json.loads(run("queue", "--json").stdout) == []
    assert json.loads(run("log", "--json", "--status", "bounced").stdout) == []
    assert "invalid" in run("log", "--status", "lost", expect=2).stderr.lower()


def test_bad_configuration_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[delivery]\nrelay_host = "relay.test:notaport"\n')
    result = subprocess.run([SCRIPTMAIL, "--config", str(config), "queue"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "delivery.relay_host" in result.stderr


def test_unreachable_database_is_a_temporary_failure(tmp_path: Path) -> None:
    config = tmp_path / "down.toml"
    config.write_text('database_url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"\n')
    result = subprocess.run([SCRIPTMAIL, "--config", str(config), "queue"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 75
    assert "database unavailable" in result.stderr
