"""Where the sendmail command looks for the daemon: environment, then /etc/scriptmail, then the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scriptmail.intake.sendmail_config import SYSTEM_DIR, ConfigError, Locations, find
from scriptmail.intake.sendmail_protocol import DEFAULT_MAX_SIZE, EX_CONFIG

ME = os.getuid()
DAEMON_FILE = """
database_url = "postgresql+psycopg://scriptmail:secret@db/scriptmail"
[intake]
listen = "0.0.0.0:587"
socket = "/run/scriptmail/intake.sock"
maildrop = "/var/spool/scriptmail/maildrop"
max_message_size = 20971520
[delivery]
relay_host = "smarthost.example"
"""


def system(tmp_path: Path, **files: str) -> Path:
    directory = tmp_path / "etc-scriptmail"
    directory.mkdir(parents=True)
    os.chmod(directory, 0o755)
    for name, text in files.items():
        (directory / f"{name}.toml").write_text(text)
        os.chmod(directory / f"{name}.toml", 0o644)
    return directory


def refused(env: dict[str, str], directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        find(env, directory, owner=ME)
    assert caught.value.code == EX_CONFIG
    return caught.value.message


def test_the_command_always_looks_in_etc_scriptmail():
    assert SYSTEM_DIR == Path("/etc/scriptmail")


def test_without_environment_or_system_file_the_checkout_defaults_serve_make_run(tmp_path):
    assert find({}, tmp_path / "absent", owner=ME) == Locations(Path("var/intake.sock"), Path("var/maildrop"), DEFAULT_MAX_SIZE)


def test_the_daemons_file_gives_socket_maildrop_and_size_and_nothing_else_matters(tmp_path):
    where = find({}, system(tmp_path, scriptmail=DAEMON_FILE), owner=ME)
    assert where == Locations(Path("/run/scriptmail/intake.sock"), Path("/var/spool/scriptmail/maildrop"), 20971520)


def test_the_commands_own_file_wins_over_the_daemons(tmp_path):
    own = '[intake]\nsocket = "/run/other.sock"\nmaildrop = "/var/spool/other"\n'
    where = find({}, system(tmp_path, scriptmail=DAEMON_FILE, sendmail=own), owner=ME)
    assert where == Locations(Path("/run/other.sock"), Path("/var/spool/other"), DEFAULT_MAX_SIZE)


def test_the_environment_wins_key_by_key(tmp_path):
    directory = system(tmp_path, scriptmail=DAEMON_FILE)
    where = find({"SCRIPTMAIL_SOCKET": "/tmp/dev.sock", "SCRIPTMAIL_INTAKE__MAX_MESSAGE_SIZE": "4096"}, directory, owner=ME)
    assert where == Locations(Path("/tmp/dev.sock"), Path("/var/spool/scriptmail/maildrop"), 4096)


def test_a_full_environment_does_not_even_read_a_broken_file(tmp_path):
    env = {"SCRIPTMAIL_SOCKET": "/s", "SCRIPTMAIL_MAILDROP": "/m", "SCRIPTMAIL_MAX_MESSAGE_SIZE": "2048"}
    assert find(env, system(tmp_path, scriptmail="not = [toml"), owner=ME).max_size == 2048


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not = [toml", "not valid TOML"),
        ("intake = 3", "intake must be a table"),
        ('[intake]\nmaildrop = "/m"\n', "intake.socket is not set"),
        ('[intake]\nsocket = "var/intake.sock"\nmaildrop = "/m"\n', "intake.socket must be an absolute path"),
        ('[intake]\nsocket = "/s"\nmaildrop = 5\n', "intake.maildrop must be an absolute path"),
        ('[intake]\nsocket = "/s"\nmaildrop = "/m"\nmax_message_size = "big"\n', "max_message_size must be an integer"),
        ('[intake]\nsocket = "/s"\nmaildrop = "/m"\nmax_message_size = 10\n', "at least 1024"),
        ('[intake]\nsocket = "/s"\nmaildrop = "/m"\nmax_message_size = true\n', "must be an integer"),
    ],
)
def test_bad_values_in_the_daemons_file_stop_the_command_with_ex_config(tmp_path, text, says):
    assert says in refused({}, system(tmp_path, scriptmail=text))


def test_the_commands_file_holds_only_its_three_keys(tmp_path):
    text = '[intake]\nsocket = "/s"\nmaildrop = "/m"\nlisten = "0.0.0.0:25"\n'
    assert "unknown key intake.listen" in refused({}, system(tmp_path, sendmail=text))
    assert "unknown key database_url" in refused({}, system(tmp_path / "b", sendmail='database_url = "x"\n[intake]\n'))


def test_a_file_others_could_write_is_refused(tmp_path):
    directory = system(tmp_path, scriptmail=DAEMON_FILE)
    os.chmod(directory / "scriptmail.toml", 0o666)
    assert "writable by no one else" in refused({}, directory)
    os.chmod(directory / "scriptmail.toml", 0o644)
    os.chmod(directory, 0o777)
    assert "writable by no one else" in refused({}, directory)


def test_a_file_of_another_owner_is_refused(tmp_path):
    directory = system(tmp_path, scriptmail=DAEMON_FILE)
    with pytest.raises(ConfigError, match="must belong to"):
        find({}, directory, owner=ME + 1)


def test_a_directory_or_fifo_in_place_of_the_file_is_refused(tmp_path):
    directory = system(tmp_path)
    (directory / "scriptmail.toml").mkdir()
    assert "not a regular file" in refused({}, directory)
    os.mkfifo(directory / "sendmail.toml")
    assert "not a regular file" in refused({}, directory)


def test_a_bad_size_in_the_environment_is_a_configuration_error(tmp_path):
    assert "invalid maximum message size" in refused({"SCRIPTMAIL_MAX_MESSAGE_SIZE": "ten"}, tmp_path)
