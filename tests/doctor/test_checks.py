"""The doctor's rules on made-up probe results: what is a problem, and what the fix says."""

from __future__ import annotations

import datetime
import stat

from scriptmail.doctor.checks import (
    OK,
    PROBLEM,
    WARNING,
    PathEntry,
    Viewer,
    check_certificate,
    check_helo,
    check_maildrop,
    check_nameservers,
    check_sendmail_config,
    check_socket,
    check_store,
)

ANYONE = Viewer("any web user")
DIR, SOCK = stat.S_IFDIR, stat.S_IFSOCK
NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def run_dir(mode: int = 0o755) -> list[PathEntry]:
    return [
        PathEntry("/", 0, 0, DIR | 0o755),
        PathEntry("/run", 0, 0, DIR | 0o755),
        PathEntry("/run/scriptmail", 999, 999, DIR | mode),
    ]


def test_a_socket_behind_a_closed_directory_is_a_problem_for_web_users_but_not_for_its_group() -> None:
    entries = run_dir(0o750) + [PathEntry("/run/scriptmail/intake.sock", 999, 999, SOCK | 0o666)]
    (finding,) = check_socket(entries, ANYONE, True)
    assert finding.status == PROBLEM and "cannot search /run/scriptmail" in finding.message
    assert finding.fix == "chmod o+x /run/scriptmail"
    assert check_socket(entries, Viewer("www-data", 33, frozenset({999})), True)[0].status == OK


def test_a_socket_that_others_cannot_write_or_where_nothing_answers_is_a_problem() -> None:
    closed = run_dir() + [PathEntry("/run/scriptmail/intake.sock", 999, 999, SOCK | 0o600)]
    assert "cannot write" in check_socket(closed, ANYONE, True)[0].message
    open_ = run_dir() + [PathEntry("/run/scriptmail/intake.sock", 999, 999, SOCK | 0o666)]
    assert check_socket(open_, ANYONE, False, "Connection refused")[0].status == PROBLEM
    assert check_socket(open_, ANYONE, True)[0].status == OK
    missing = run_dir() + [PathEntry("/run/scriptmail/intake.sock", missing=True)]
    assert "not running" in check_socket(missing, ANYONE, None)[0].message
    plain = run_dir() + [PathEntry("/run/scriptmail/intake.sock", 0, 0, stat.S_IFREG | 0o666)]
    assert "not a socket" in check_socket(plain, ANYONE, None)[0].message


def _maildrop(new_mode: int, cur_mode: int = 0o700) -> tuple[list[PathEntry], dict[str, PathEntry]]:
    entries = [PathEntry("/", 0, 0, DIR | 0o755), PathEntry("/var/spool/maildrop", 999, 999, DIR | 0o755)]
    modes = {"tmp": 0o1733, "new": new_mode, "cur": cur_mode, "bad": 0o700}
    return entries, {name: PathEntry(f"/var/spool/maildrop/{name}", 999, 999, DIR | mode) for name, mode in modes.items()}


def test_maildrop_modes() -> None:
    assert check_maildrop(*_maildrop(0o1733), ANYONE)[0].status == OK
    (closed,) = check_maildrop(*_maildrop(0o700), ANYONE)
    assert closed.status == PROBLEM and closed.fix == "chmod 1733 /var/spool/maildrop/new"
    (unsticky,) = check_maildrop(*_maildrop(0o733), ANYONE)
    assert unsticky.status == PROBLEM and "each other's mail" in unsticky.message
    (listable,) = check_maildrop(*_maildrop(0o1777), ANYONE)
    assert listable.status == PROBLEM
    (nosy,) = check_maildrop(*_maildrop(0o1733, cur_mode=0o755), ANYONE)
    assert nosy.status == WARNING


def test_store_nameservers_and_sendmail_config() -> None:
    assert check_store("connection refused", None, "0008")[0].status == PROBLEM
    assert check_store(None, "0007", "0008")[0].fix == "scriptmail db upgrade"
    assert check_store(None, "0008", "0008")[0].status == OK
    findings = check_nameservers({"127.0.0.1": None, "127.0.0.2": "no answer within 3 s"})
    assert [f.status for f in findings] == [OK, PROBLEM]
    assert check_nameservers({})[0].status == PROBLEM
    daemon = {"socket": "/run/scriptmail/intake.sock", "maildrop": "/var/spool/m", "max_message_size": 10}
    assert check_sendmail_config(daemon, dict(daemon), "/etc/scriptmail/sendmail.toml")[0].status == OK
    drifted = check_sendmail_config(daemon, {**daemon, "maildrop": "/old"}, "/etc/scriptmail/sendmail.toml")[0]
    assert drifted.status == PROBLEM and "maildrop" in drifted.message


def test_certificate_dates_and_names() -> None:
    day = datetime.timedelta(days=1)

    def check(after: datetime.timedelta, names=("mail.example.net",), before: datetime.timedelta = -30 * day):
        return check_certificate("/etc/c.pem", NOW + before, NOW + after, list(names), "mail.example.net", NOW)

    assert check(60 * day)[0].status == OK
    assert check(20 * day)[0].status == PROBLEM and "expires in 20 days" in check(20 * day)[0].message
    assert check(22 * day)[0].status == OK
    assert "expired" in check(-day)[0].message
    assert "not valid before" in check(60 * day, before=day)[0].message
    assert check(60 * day, names=("*.example.net",))[0].status == OK
    assert check(60 * day, names=("other.example",))[0].status == WARNING
    assert check_certificate("/etc/c.pem", None, None, [], "h", NOW, "key values mismatch")[0].status == PROBLEM
    assert check_certificate(None, None, None, [], "h", NOW)[0].status == WARNING


def test_helo_forward_and_reverse() -> None:
    assert check_helo("mail.example.net", ["192.0.2.1"], {"192.0.2.1": ["mail.example.net."]})[0].status == OK
    (mismatch,) = check_helo("mail.example.net", ["192.0.2.1"], {"192.0.2.1": ["host-1.isp.example."]})
    assert mismatch.status == PROBLEM and "PTR" in mismatch.fix
    assert check_helo("mail.example.net", None, {})[0].status == PROBLEM
