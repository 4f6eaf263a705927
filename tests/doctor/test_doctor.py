"""`scriptmail doctor` against a real running gateway: a good installation passes, and each thing
broken on purpose is named with its fix and makes the exit status non-zero."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scriptmail.config import load_settings
from tests.support.certificates import write_certificate
from tests.support.dns_server import DnsServer
from tests.support.gateway import RunningGateway

SCRIPTMAIL = str(Path(sys.executable).with_name("scriptmail"))
HELO = "mail.example.net"


class Installation:
    def __init__(self, base: Path, dns: DnsServer) -> None:
        self.base, self.dns = base, dns
        self.cert, self.key = base / "fullchain.pem", base / "privkey.pem"
        self.config = base / "etc" / "scriptmail.toml"
        self.nameservers = ["127.0.0.1"]
        self.database = base / "lib" / "scriptmail.db"
        self.gateway: RunningGateway | None = None
        with socket.socket() as probe:  # a fixed port, so that the doctor can connect to it
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def write_config(self) -> None:
        self.config.parent.mkdir(exist_ok=True)
        self.config.write_text(
            f'database_url = "sqlite:///{self.database}"\nhostname = "{HELO}"\nnode = "doctor"\n'
            f'[intake]\nlisten = "127.0.0.1:{self.port}"\nsocket = "{self.base}/run/intake.sock"\nmaildrop = "{self.base}/maildrop"\n'
            f'tls_cert = "{self.cert}"\ntls_key = "{self.key}"\n'
            f"[delivery]\nnameservers = {json.dumps(self.nameservers)}\ndns_port = {self.dns.port}\n"
        )
        os.chmod(self.config, 0o640)
        (self.config.parent / "sendmail.toml").write_text(
            f'[intake]\nsocket = "{self.base}/run/intake.sock"\nmaildrop = "{self.base}/maildrop"\nmax_message_size = 10485760\n'
        )

    def doctor(self, *args: str, expect: int) -> dict:
        command = [SCRIPTMAIL, "--config", str(self.config), "doctor", "--json", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
        assert result.returncode == expect, (result.stdout, result.stderr)
        return json.loads(result.stdout)


def problems(report: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in report["findings"]:
        if finding["status"] == "problem":
            found.setdefault(finding["check"], []).append(finding["message"] + " / " + finding["fix"])
    return found


@pytest.fixture
def installation() -> Iterator[Installation]:
    """A running gateway laid out as on a server, in a directory any user can search."""
    base = Path(tempfile.mkdtemp(prefix="scriptmail-doctor-", dir="/tmp"))
    os.chmod(base, 0o755)
    records = {(f"{HELO}.", "A"): ["127.0.0.5"], ("5.0.0.127.in-addr.arpa.", "PTR"): [f"{HELO}."]}
    dns = DnsServer(records).start()
    setup = Installation(base, dns)
    write_certificate(setup.cert, setup.key, HELO, days=90)
    (base / "run").mkdir(mode=0o755)
    (base / "lib").mkdir()
    setup.write_config()
    # The maildrop laid out as `scriptmail install` does; the pickup part would lay it out again at
    # its own start, at a moment of its choosing, so it is left out.
    (base / "maildrop").mkdir(mode=0o755)
    for name, mode in (("tmp", 0o1733), ("new", 0o1733), ("cur", 0o700), ("bad", 0o700)):
        (base / "maildrop" / name).mkdir()
        os.chmod(base / "maildrop" / name, mode)
    setup.gateway = RunningGateway(load_settings(setup.config), ("smtp", "sendmail")).start()
    yield setup
    setup.gateway.stop()
    dns.stop()
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_a_good_installation_has_no_problem(installation: Installation) -> None:
    report = installation.doctor(expect=0)
    assert report["ok"] is True
    statuses = {finding["check"]: finding["status"] for finding in report["findings"]}
    assert statuses == {
        "socket": "ok", "maildrop": "ok", "sendmail.toml": "ok", "store": "ok", "suppression": "ok",
        "nameservers": "ok", "certificate": "ok", "served": "ok", "helo": "ok", "mta-sts": "ok",
    }  # fmt: skip


@pytest.mark.skipif(os.geteuid() != 0, reason="trying as another user needs root")
def test_as_a_web_user_the_socket_and_maildrop_are_tried_for_real(installation: Installation) -> None:
    report = installation.doctor("--as-user", "nobody", expect=0)
    assert [f["status"] for f in report["findings"] if f["check"] == "as-user"] == ["ok"]
    os.chmod(installation.base / "run", 0o750)  # the web users can no longer reach the socket
    broken = problems(installation.doctor("--as-user", "nobody", expect=1))
    assert "nobody cannot search" in broken["socket"][0] and "chmod o+x" in broken["socket"][0]
    assert "connecting to" in broken["as-user"][0]


def test_a_broken_installation_names_each_problem_and_its_fix(installation: Installation) -> None:
    os.chmod(installation.base / "maildrop" / "new", 0o700)
    write_certificate(installation.cert, installation.key, HELO, days=10)  # renewal forgotten
    installation.nameservers = ["127.0.0.1", "127.0.0.2"]  # nothing answers on the second
    installation.write_config()
    found = problems(installation.doctor(expect=1))
    assert "cannot drop into" in found["maildrop"][0] and "chmod 1733" in found["maildrop"][0]
    assert "expires in 9 days" in found["certificate"][0] or "expires in 10 days" in found["certificate"][0]
    assert found["nameservers"] == ["127.0.0.2 does not answer: no answer within 3 s / "
                                    "fix delivery.nameservers (or /etc/resolv.conf) or the DNS server"]  # fmt: skip
    assert set(found) == {"maildrop", "certificate", "nameservers"}


def test_an_expired_certificate_and_a_wrong_reverse_name(installation: Installation) -> None:
    write_certificate(installation.cert, installation.key, HELO, days=-1, past=90)
    installation.dns.records[("5.0.0.127.in-addr.arpa.", "PTR")] = ["host-5.isp.example."]
    found = problems(installation.doctor(expect=1))
    assert "expired on" in found["certificate"][0]
    assert "points back to host-5.isp.example" in found["helo"][0]


def test_a_renewal_that_does_not_load_leaves_the_old_certificate_served_and_says_so(installation: Installation) -> None:
    other_key = installation.base / "other.key"
    write_certificate(installation.cert, other_key, HELO, days=90)  # the new certificate, its key not yet there
    found = problems(installation.doctor(expect=1))
    assert "cannot be used" in found["certificate"][0]
    assert "older certificate" in found["served"][0]
    os.replace(other_key, installation.key)
    installation.doctor(expect=0)


def test_an_unmigrated_or_missing_store_is_a_problem(installation: Installation) -> None:
    installation.database = installation.base / "lib" / "empty.db"
    sqlite3.connect(installation.database).close()
    installation.write_config()
    assert "not 0" in problems(installation.doctor(expect=1))["store"][0]
    installation.database = installation.base / "lib" / "missing.db"
    installation.write_config()
    assert "does not exist" in problems(installation.doctor(expect=1))["store"][0]
    assert not installation.database.exists()  # the doctor does not create a store


def test_a_drifted_sendmail_toml_and_a_stopped_intake(installation: Installation) -> None:
    (installation.config.parent / "sendmail.toml").write_text('[intake]\nsocket = "/old/intake.sock"\n')
    assert installation.gateway is not None
    installation.gateway.stop()
    found = problems(installation.doctor(expect=1))
    assert "differs" in found["sendmail.toml"][0] and "socket" in found["sendmail.toml"][0]
    assert "not running" in found["socket"][0] or "nothing answers" in found["socket"][0]


def test_a_user_that_does_not_exist_is_a_usage_error(installation: Installation) -> None:
    result = subprocess.run(
        [SCRIPTMAIL, "--config", str(installation.config), "doctor", "--as-user", "no-such-user-x"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "no such user" in result.stderr
