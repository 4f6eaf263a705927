"""The sendmail command as system programs call it: no environment, any directory, /etc/scriptmail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import namespace
from tests.support.gateway import RunningGateway, wait_status
from tests.support.sink import Sink

SENDMAIL = str(Path(sys.executable).with_name("scriptmail-sendmail"))
MESSAGE = b"To: admin@sink.test\nSubject: from a system program\n\nDisk almost full.\n"

pytestmark = pytest.mark.skipif(namespace.available() is not None, reason=f"{namespace.available()}")


def daemon_file(gateway: RunningGateway) -> str:
    """What an installer writes to /etc/scriptmail/scriptmail.toml, with a secret the command must not need."""
    intake = gateway.settings.intake
    return (
        'database_url = "postgresql+psycopg://scriptmail:secret@db.invalid/scriptmail"\n'
        f'[intake]\nsocket = "{intake.socket}"\nmaildrop = "{intake.maildrop}"\nmax_message_size = 4096\n'
    )


def run_clean(etc: Path, argv: list[str], data: bytes, as_user: int | None = None) -> subprocess.CompletedProcess:
    """No SCRIPTMAIL_* variable, working directory /, /etc/scriptmail from `etc`: a cron job's view."""
    return subprocess.run(
        namespace.isolated({"/etc": etc}, argv, as_user=as_user),
        input=data, capture_output=True, timeout=60, cwd="/", env={"PATH": namespace.CLEAN_PATH},
    )


def test_a_call_without_environment_reaches_the_daemon_through_etc_scriptmail(gateway: RunningGateway, sink: Sink, tmp_path: Path) -> None:
    etc = namespace.system_dir(tmp_path / "etc", {"scriptmail.toml": daemon_file(gateway)})
    result = run_clean(etc, [SENDMAIL, "-t", "-i"], MESSAGE)
    assert (result.returncode, result.stderr) == (0, b"")
    (received,) = sink.wait_for(1)
    assert received.recipients == ["admin@sink.test"]
    assert {row["origin"] for row in wait_status(gateway.engine, "sent", 1)} == {"sendmail"}


def test_the_size_limit_comes_from_the_same_file(gateway: RunningGateway, tmp_path: Path) -> None:
    etc = namespace.system_dir(tmp_path / "etc", {"scriptmail.toml": daemon_file(gateway)})
    result = run_clean(etc, [SENDMAIL, "-t"], MESSAGE + b"x" * 5000)
    assert result.returncode == 65 and b"limit of 4096 bytes" in result.stderr


def test_with_the_daemon_down_the_message_waits_in_the_maildrop_the_file_names(make_gateway, sink: Sink, tmp_path: Path) -> None:
    gateway = make_gateway()
    gateway.stop()
    etc = namespace.system_dir(tmp_path / "etc", {"scriptmail.toml": daemon_file(gateway)})
    assert run_clean(etc, [SENDMAIL, "-t", "-i"], MESSAGE).returncode == 0
    assert len(list((gateway.settings.intake.maildrop / "new").iterdir())) == 1
    make_gateway()
    assert sink.wait_for(1)[0].recipients == ["admin@sink.test"]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to a web user's uid needs root")
def test_a_web_user_who_cannot_read_the_daemons_file_is_told_what_to_do_and_the_commands_file_serves(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    nobody = 65534
    etc = namespace.system_dir(tmp_path / "etc", {"scriptmail.toml": daemon_file(gateway)}, mode=0o600)
    result = run_clean(etc, [SENDMAIL, "-t"], MESSAGE, as_user=nobody)
    assert result.returncode == 78
    assert b"cannot read /etc/scriptmail/scriptmail.toml" in result.stderr and b"sendmail.toml" in result.stderr

    intake = gateway.settings.intake
    own = f'[intake]\nsocket = "{intake.socket}"\nmaildrop = "{intake.maildrop}"\n'
    namespace.system_dir(tmp_path / "etc", {"sendmail.toml": own})
    for parent in Path(intake.socket).parents:  # the test's directories are root's 0700; a server's are searchable
        if parent != Path("/"):
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    result = run_clean(etc, [SENDMAIL, "-t"], MESSAGE, as_user=nobody)
    # The daemon was reached: it names the caller's uid, which the kernel told it.
    assert result.returncode == 77 and b"uid 65534 is not assigned to any hosting" in result.stderr


def test_a_system_file_others_may_write_is_refused(gateway: RunningGateway, tmp_path: Path) -> None:
    etc = namespace.system_dir(tmp_path / "etc", {"scriptmail.toml": daemon_file(gateway)}, mode=0o666)
    result = run_clean(etc, [SENDMAIL, "-t"], MESSAGE)
    assert result.returncode == 78 and b"writable by no one else" in result.stderr
