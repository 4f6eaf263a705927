"""`scriptmail install --root` as a provider would use it to stage a server, checked file by file."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from scriptmail.config import load_settings


def _reachable(programs: Path) -> Path:
    """The programs as an installed server would have them: a checkout under /tmp or /home (hidden
    from hardened units, so refused by install) is reached through a link under /opt instead."""
    hidden = ("/tmp", "/var/tmp", "/home", "/root", "/run/user")
    if not str(programs).startswith(hidden) or os.geteuid() != 0:
        return programs
    link = Path("/opt/scriptmail-tests") / f"bin-{hashlib.sha256(str(programs).encode()).hexdigest()[:12]}"
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        link.symlink_to(programs, target_is_directory=True)
    except FileExistsError:  # another test worker made it first
        pass
    return link


BIN = _reachable(Path(sys.executable).parent)
SCRIPTMAIL = str(BIN / "scriptmail")
UNITS = ["scriptmail", "scriptmail-intake", "scriptmail-delivery", "scriptmail-scheduler", "scriptmail-bounces", "scriptmail-web"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="owners can only be set as root")


def install(root: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    command = [SCRIPTMAIL, "install", "--root", str(root), "--bin-dir", str(BIN), "--hostname", "mail.example.net", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A staging root that holds the programs where the machine will (as an image build copies them in)."""
    staged = tmp_path / "root"
    programs = staged / str(BIN).lstrip("/")
    programs.mkdir(parents=True)
    for name in ("scriptmail", "scriptmail-sendmail"):
        shutil.copy(BIN / name, programs / name)
    return staged


def owner_mode(path: Path) -> tuple[int, int, int]:
    info = os.lstat(path)
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def staged_uid(root: Path) -> int:
    (line,) = [line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("scriptmail:")]
    name, _, uid, gid, comment, home, shell = line.split(":")
    assert (uid, home, shell) == (gid, "/var/lib/scriptmail", "/usr/sbin/nologin")
    assert 100 <= int(uid) < 1000
    return int(uid)


def test_a_staged_install_lays_out_every_file_with_its_owner_and_mode(root: Path) -> None:
    install(root)
    uid = staged_uid(root)
    assert f"scriptmail:x:{uid}:" in (root / "etc/group").read_text()
    expected = {
        "etc/scriptmail": (0, 0, 0o755),
        "etc/scriptmail/scriptmail.toml": (0, uid, 0o640),
        "etc/scriptmail/sendmail.toml": (0, 0, 0o644),
        "var/lib/scriptmail": (uid, uid, 0o750),
        "var/spool/scriptmail": (0, 0, 0o755),
        "var/spool/scriptmail/maildrop": (uid, uid, 0o755),
        "var/spool/scriptmail/maildrop/tmp": (uid, uid, 0o1733),
        "var/spool/scriptmail/maildrop/new": (uid, uid, 0o1733),
        "var/spool/scriptmail/maildrop/cur": (uid, uid, 0o700),
        "var/spool/scriptmail/maildrop/bad": (uid, uid, 0o700),
        "run/scriptmail": (uid, uid, 0o755),
    } | {f"etc/systemd/system/{unit}.service": (0, 0, 0o644) for unit in UNITS}
    for path, wanted in expected.items():
        assert owner_mode(root / path) == wanted, path

    # The daemon's file is a valid configuration; the world-readable one holds only what sendmail needs.
    settings = load_settings(root / "etc/scriptmail/scriptmail.toml")
    assert settings.hostname == "mail.example.net"
    assert settings.database_url == "sqlite:////var/lib/scriptmail/scriptmail.db"
    public = tomllib.loads((root / "etc/scriptmail/sendmail.toml").read_text())
    assert public == {
        "intake": {
            "socket": "/run/scriptmail/intake.sock",
            "maildrop": "/var/spool/scriptmail/maildrop",
            "max_message_size": 10485760,
        }
    }
    assert (str(settings.intake.socket), str(settings.intake.maildrop)) == (
        public["intake"]["socket"],
        public["intake"]["maildrop"],
    )

    # sendmail, mailq and newaliases through Debian's alternatives, to the installed command.
    for link, name in (("usr/sbin/sendmail", "sendmail"), ("usr/bin/mailq", "mailq"), ("usr/bin/newaliases", "newaliases")):
        assert os.readlink(root / link) == f"/etc/alternatives/{name}"
        assert os.readlink(root / "etc/alternatives" / name) == str(BIN / "scriptmail-sendmail")
    assert "scriptmail-sendmail" in (root / "var/lib/dpkg/alternatives/sendmail").read_text()


def test_the_units_are_hardened_and_systemd_analyze_verify_is_clean(root: Path) -> None:
    install(root)
    units = [root / f"etc/systemd/system/{unit}.service" for unit in UNITS]
    result = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")

    whole = units[0].read_text()
    for directive in (
        "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
        "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "ReadWritePaths=/var/lib/scriptmail /var/spool/scriptmail/maildrop", "User=scriptmail",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH",
        f"ExecStart={BIN}/scriptmail --config /etc/scriptmail/scriptmail.toml serve --no-demo\n",
        "ExecReload=/usr/bin/kill -HUP $MAINPID",
    ):  # fmt: skip
        assert directive in whole, directive
    # A part that binds no low port and reads no caller's file gets no capability at all.
    delivery = units[2].read_text()
    assert "--parts delivery" in delivery and "Environment=SCRIPTMAIL_NODE=%H-delivery" in delivery
    assert "CapabilityBoundingSet=\n" in delivery and "AmbientCapabilities=\n" in delivery
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" in units[4].read_text()  # bounces: port 25 only
    assert "Conflicts=scriptmail.service" in delivery


def test_systemd_analyze_security_rates_every_unit_well_exposed_below_2(root: Path, tmp_path: Path) -> None:
    install(root)
    bare = tmp_path / "bare.service"  # the same service without its hardening, for comparison
    bare.write_text(f"[Service]\nExecStart={BIN}/scriptmail serve\n")
    for unit in [*(root / f"etc/systemd/system/{name}.service" for name in UNITS), bare]:
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=120
        )
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
        assert match, result.stdout + result.stderr
        exposure = float(match.group(1))
        assert (exposure >= 9) if unit == bare else (exposure < 2.0), (unit.name, exposure)


def test_systemd_analyze_verify_would_notice_a_broken_unit(root: Path, tmp_path: Path) -> None:
    install(root)
    broken = tmp_path / "broken.service"
    broken.write_text((root / "etc/systemd/system/scriptmail.service").read_text().replace(str(BIN), "/nonexistent"))
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "/nonexistent" in result.stderr


def test_a_second_run_changes_nothing_and_says_so(root: Path) -> None:
    install(root)
    before = {path: (owner_mode(path), path.read_bytes() if path.is_file() else None) for path in root.rglob("*")}
    again = install(root, "--json")
    changes = json.loads(again.stdout)
    assert {change["action"] for change in changes} == {"unchanged"}
    assert "nothing to change" in install(root).stdout
    after = {path: (owner_mode(path), path.read_bytes() if path.is_file() else None) for path in root.rglob("*")}
    assert after == before


def test_the_operators_configuration_is_kept_and_sendmail_toml_follows_it(root: Path) -> None:
    install(root)
    config = root / "etc/scriptmail/scriptmail.toml"
    edited = (
        config.read_text()
        .replace("/var/spool/scriptmail/maildrop", "/var/spool/scriptmail/drop")
        .replace("max_message_size = 10485760", "max_message_size = 20000000")
    )
    config.write_text(edited)
    os.chmod(config, 0o644)  # world-readable by mistake: it may hold the database password
    result = install(root)
    assert config.read_text() == edited
    assert owner_mode(config)[2] == 0o640
    assert "changed   file      /etc/scriptmail/scriptmail.toml" in result.stdout
    public = tomllib.loads((root / "etc/scriptmail/sendmail.toml").read_text())["intake"]
    assert (public["maildrop"], public["max_message_size"]) == ("/var/spool/scriptmail/drop", 20000000)
    assert (root / "var/spool/scriptmail/drop/new").is_dir()
    assert "/var/spool/scriptmail/drop" in (root / "etc/systemd/system/scriptmail.service").read_text()


def _postfix_in(root: Path) -> bytes:
    """Another MTA's sendmail, mailq and newaliases in the staging root, as Debian's postfix lays them."""
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    data = Path("/usr/sbin/sendmail").read_bytes() if Path("/usr/sbin/sendmail").is_file() else b"\x7fELF postfix sendmail"
    (root / "usr/sbin/sendmail").write_bytes(data)
    os.chmod(root / "usr/sbin/sendmail", 0o755)
    (root / "usr/bin/mailq").symlink_to("../sbin/sendmail")
    (root / "usr/bin/newaliases").symlink_to("../sbin/sendmail")
    return data


def test_another_mtas_sendmail_is_not_clobbered_without_force(root: Path) -> None:
    original = _postfix_in(root)
    result = install(root, expect=1)
    assert "another MTA provides /usr/sbin/sendmail" in result.stderr and "--force" in result.stderr
    assert "postfix" in result.stderr
    assert (root / "usr/sbin/sendmail").read_bytes() == original
    assert os.readlink(root / "usr/bin/mailq") == "../sbin/sendmail"
    assert not (root / "etc/scriptmail").exists()  # refused before writing anything
    assert not (root / "etc/passwd").exists()


def test_force_diverts_the_other_mta_aside_and_takes_over(root: Path) -> None:
    original = _postfix_in(root)
    install(root, "--force")
    assert (root / "usr/sbin/sendmail.before-scriptmail").read_bytes() == original
    assert os.readlink(root / "usr/bin/mailq.before-scriptmail") == "../sbin/sendmail"
    diversions = (root / "var/lib/dpkg/diversions").read_text()
    assert "/usr/sbin/sendmail\n/usr/sbin/sendmail.before-scriptmail\n:\n" in diversions
    assert os.path.realpath(root / "etc/alternatives/sendmail") == os.path.realpath(BIN / "scriptmail-sendmail")
    assert os.readlink(root / "usr/sbin/sendmail") == "/etc/alternatives/sendmail"
    assert "nothing to change" in install(root).stdout  # and the next run needs no --force


def test_a_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "root"
    file.write_text("not a directory")
    result = install(file, expect=2)
    assert "not a directory" in result.stderr
    assert file.read_text() == "not a directory"


def test_a_link_out_of_the_staging_root_is_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc").symlink_to(outside)
    result = install(root, expect=1)
    assert "symbolic link" in result.stderr
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("user", ["root", "-rf", "Bad Name", "x" * 40, ""])
def test_a_bad_account_name_is_refused(root: Path, user: str) -> None:
    result = install(root, "--user", user, expect=1)
    assert "--user" in result.stderr
    assert not (root / "etc").exists()


def test_an_existing_persons_account_is_not_taken(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nscriptmail:x:1000:1000:Ana:/home/ana:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\nscriptmail:x:1000:\n")
    result = install(root, expect=1)
    assert "uid 1000" in result.stderr and "person" in result.stderr
    assert not (root / "etc/scriptmail").exists()


def test_a_malformed_passwd_file_is_refused_and_left_alone(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\ngarbage line\n")
    result = install(root, expect=1)
    assert "passwd line 2" in result.stderr
    assert (root / "etc/passwd").read_text().endswith("garbage line\n")


def test_programs_under_home_are_refused(root: Path) -> None:
    result = subprocess.run(
        [SCRIPTMAIL, "install", "--root", str(root), "--bin-dir", "/home/ana/venv/bin"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "/opt/scriptmail" in result.stderr


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("database_url = [", "not valid TOML"),
        ('[intake]\nsocket = "var/intake.sock"\n', "absolute path"),
        ('[intake]\nmax_message_size = "big"\n', "max_message_size"),
        ('database_url = "sqlite:///relative.db"\n', "absolute path"),
    ],
)
def test_a_bad_existing_configuration_is_refused_with_the_reason(root: Path, text: str, error: str) -> None:
    (root / "etc/scriptmail").mkdir(parents=True)
    (root / "etc/scriptmail/scriptmail.toml").write_text(text)
    result = install(root, expect=1)
    assert error in result.stderr
    assert (root / "etc/scriptmail/scriptmail.toml").read_text() == text


def test_a_real_install_needs_root_and_touches_nothing_otherwise() -> None:
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", SCRIPTMAIL, "install"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 1 and "run as root" in result.stderr
