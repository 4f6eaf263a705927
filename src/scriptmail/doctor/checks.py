"""What the probes found, judged: each check is a function of plain values and returns findings.

Nothing here touches the disk, the network or the store (that is probes.py), so every rule is
tested with made-up values.
"""

from __future__ import annotations

import datetime
import stat
from dataclasses import dataclass

OK, WARNING, PROBLEM = "ok", "warning", "problem"
EXPIRY_MARGIN = datetime.timedelta(days=21)


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok, warning, problem
    message: str
    fix: str = ""


@dataclass(frozen=True)
class PathEntry:
    """One component of a path as stat() saw it; missing when it does not exist."""

    path: str
    uid: int = 0
    gid: int = 0
    mode: int = 0  # st_mode, type bits included
    missing: bool = False


@dataclass(frozen=True)
class Viewer:
    """Who looks: a user (uid and groups), or any other user (uid None) as a web user would be."""

    name: str
    uid: int | None = None
    gids: frozenset[int] = frozenset()


def _allowed(entry: PathEntry, viewer: Viewer, bits: int) -> bool:
    """Whether the viewer has `bits` (r=4, w=2, x=1) on the entry; root is not a web user."""
    mode = entry.mode
    if viewer.uid is not None and viewer.uid == entry.uid:
        granted = (mode >> 6) & 7
    elif viewer.uid is not None and entry.gid in viewer.gids:
        granted = (mode >> 3) & 7
    else:
        granted = mode & 7
    return granted & bits == bits


def _walk(check: str, entries: list[PathEntry], viewer: Viewer) -> Finding | None:
    """A problem at the first directory on the way the viewer cannot search, or a missing one."""
    for entry in entries[:-1]:
        if entry.missing:
            return Finding(check, PROBLEM, f"{entry.path} does not exist", "run `scriptmail install`, then start the gateway")
        if not _allowed(entry, viewer, 1):
            return Finding(
                check, PROBLEM, f"{viewer.name} cannot search {entry.path} (mode {stat.S_IMODE(entry.mode):04o})",
                f"chmod o+x {entry.path}",
            )  # fmt: skip
    return None


def check_socket(entries: list[PathEntry], viewer: Viewer, answers: bool | None, error: str = "") -> list[Finding]:
    """The sendmail socket: reachable and writable by the viewer, and the daemon behind it answering."""
    check = "socket"
    blocked = _walk(check, entries, viewer)
    if blocked:
        return [blocked]
    socket_entry = entries[-1]
    if socket_entry.missing:
        return [Finding(check, PROBLEM, f"{socket_entry.path} does not exist: the intake is not running",
                        "systemctl start scriptmail (or scriptmail-intake); the sendmail command uses the maildrop meanwhile")]  # fmt: skip
    if not stat.S_ISSOCK(socket_entry.mode):
        return [Finding(check, PROBLEM, f"{socket_entry.path} is not a socket", "remove it and restart the intake")]
    if not _allowed(socket_entry, viewer, 2):
        return [Finding(check, PROBLEM, f"{viewer.name} cannot write to {socket_entry.path}", f"chmod 0666 {socket_entry.path}")]
    if answers is False:
        return [Finding(check, PROBLEM, f"nothing answers on {socket_entry.path}: {error}", "restart the intake")]
    return [Finding(check, OK, f"{viewer.name} can reach {socket_entry.path}" + (" and the intake answers" if answers else ""))]


def check_maildrop(entries: list[PathEntry], children: dict[str, PathEntry], viewer: Viewer) -> list[Finding]:
    """The maildrop: the viewer can drop into tmp/ and new/, which keep others' files safe (sticky)."""
    check = "maildrop"
    blocked = _walk(check, entries + [entries[-1]], viewer)  # the maildrop itself must be searchable too
    if blocked:
        return [blocked]
    findings: list[Finding] = []
    for name in ("tmp", "new"):
        entry = children[name]
        if entry.missing:
            findings.append(
                Finding(check, PROBLEM, f"{entry.path} does not exist", "run `scriptmail install` or start the maildrop part")
            )
        elif not _allowed(entry, viewer, 3):
            findings.append(Finding(check, PROBLEM, f"{viewer.name} cannot drop into {entry.path} (mode {stat.S_IMODE(entry.mode):04o})",
                                    f"chmod 1733 {entry.path}"))  # fmt: skip
        elif not entry.mode & stat.S_ISVTX or entry.mode & 0o004:
            findings.append(Finding(check, PROBLEM, f"{entry.path} (mode {stat.S_IMODE(entry.mode):04o}) lets users list or remove "
                                    "each other's mail", f"chmod 1733 {entry.path}"))  # fmt: skip
    for name in ("cur", "bad"):
        entry = children[name]
        if not entry.missing and entry.mode & 0o077:
            findings.append(Finding(check, WARNING, f"{entry.path} is open to others (mode {stat.S_IMODE(entry.mode):04o})",
                                    f"chmod 0700 {entry.path}"))  # fmt: skip
    return findings or [Finding(check, OK, f"{viewer.name} can drop mail into {entries[-1].path}")]


def check_store(error: str | None, current: str | None, head: str) -> list[Finding]:
    if error is not None:
        return [
            Finding("store", PROBLEM, f"the store cannot be reached: {error}", "check database_url and that the database runs")
        ]
    if current != head:
        return [Finding("store", PROBLEM, f"the store is at revision {current or 'none'}, not {head}", "scriptmail db upgrade")]
    return [Finding("store", OK, f"the store is reachable and migrated ({head})")]


def check_nameservers(answers: dict[str, str | None]) -> list[Finding]:
    """`answers`: nameserver -> None if it answered, else the error."""
    findings = []
    for server, error in answers.items():
        if error is None:
            findings.append(Finding("nameservers", OK, f"{server} answers"))
        else:
            findings.append(Finding("nameservers", PROBLEM, f"{server} does not answer: {error}",
                                    "fix delivery.nameservers (or /etc/resolv.conf) or the DNS server"))  # fmt: skip
    return findings or [Finding("nameservers", PROBLEM, "no nameserver is configured", "set delivery.nameservers")]


def check_certificate(
    path: str | None, not_before: datetime.datetime | None, not_after: datetime.datetime | None, names: list[str],
    hostname: str, now: datetime.datetime, error: str | None = None,
) -> list[Finding]:  # fmt: skip
    """The STARTTLS certificate: loadable with its key, valid now and for 21 days more, naming us."""
    check = "certificate"
    if path is None:
        return [Finding(check, WARNING, "no intake.tls_cert: intake offers a self-signed certificate, which verifying clients refuse",
                        "set intake.tls_cert and intake.tls_key to a real certificate")]  # fmt: skip
    if error is not None or not_before is None or not_after is None:
        return [Finding(check, PROBLEM, f"{path} cannot be used: {error}", "check intake.tls_cert and intake.tls_key")]
    if now < not_before:
        return [
            Finding(
                check,
                PROBLEM,
                f"{path} is not valid before {not_before:%Y-%m-%d %H:%M} UTC",
                "check the clock or the certificate",
            )
        ]
    if now >= not_after:
        return [Finding(check, PROBLEM, f"{path} expired on {not_after:%Y-%m-%d}", "renew it (it is re-read without a restart)")]
    findings = []
    left = not_after - now
    if left < EXPIRY_MARGIN:
        findings.append(Finding(check, PROBLEM, f"{path} expires in {left.days} days ({not_after:%Y-%m-%d})",
                                "renew it now; check that automatic renewal runs"))  # fmt: skip
    if not _name_matches(hostname, names):
        findings.append(Finding(check, WARNING, f"{path} does not name {hostname} (it names {', '.join(names) or 'nothing'})",
                                "get a certificate for the hostname clients connect to"))  # fmt: skip
    return findings or [Finding(check, OK, f"{path} is valid until {not_after:%Y-%m-%d} ({left.days} days)")]


def _name_matches(hostname: str, names: list[str]) -> bool:
    host = hostname.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host or (name.startswith("*.") and host.partition(".")[2] == name[2:]):
            return True
    return False


def check_helo(helo: str, addresses: list[str] | None, reverse: dict[str, list[str]], error: str | None = None) -> list[Finding]:
    """The EHLO name resolves, and each of its addresses points back to it (forward-confirmed reverse DNS)."""
    check = "helo"
    if addresses is None or not addresses:
        return [Finding(check, PROBLEM, f"the HELO name {helo} has no address: {error or 'no A or AAAA record'}",
                        f"publish an A/AAAA record for {helo}, or set delivery.helo_name to a name that has one")]  # fmt: skip
    findings = []
    wanted = helo.lower().rstrip(".")
    for address in addresses:
        names = [name.lower().rstrip(".") for name in reverse.get(address, [])]
        if wanted not in names:
            findings.append(Finding(check, PROBLEM, f"{address} (of {helo}) points back to {', '.join(names) or 'no name'}",
                                    f"set the PTR record of {address} to {helo}: receivers distrust mismatched names"))  # fmt: skip
    return findings or [Finding(check, OK, f"{helo} resolves to {', '.join(addresses)}, which point back to it")]


def check_sendmail_config(daemon: dict[str, object], public: dict[str, object] | None, public_path: str) -> list[Finding]:
    """The world-readable file the sendmail command reads says what the daemon uses."""
    if public is None:
        return [Finding("sendmail.toml", WARNING, f"{public_path} is missing: the sendmail command needs the environment",
                        "run `scriptmail install`")]  # fmt: skip
    differing = [key for key, value in daemon.items() if public.get(key) != value]
    if differing:
        return [Finding("sendmail.toml", PROBLEM, f"{public_path} differs from the daemon's configuration in {', '.join(differing)}",
                        "run `scriptmail install` again to rewrite it")]  # fmt: skip
    return [Finding("sendmail.toml", OK, f"{public_path} matches the daemon's socket, maildrop and size")]


def has_problem(findings: list[Finding]) -> bool:
    return any(finding.status == PROBLEM for finding in findings)


def check_served_certificate(address: str, on_disk: bytes | None, served: bytes | None, error: str | None) -> list[Finding]:
    """Intake hands out the certificate that is on disk (a renewal was picked up)."""
    check = "served"
    if served is None:
        return [
            Finding(check, PROBLEM, f"no STARTTLS certificate from {address}: {error}", "is the intake running? see its journal")
        ]
    if on_disk is not None and served != on_disk:
        return [Finding(check, PROBLEM, f"{address} still serves an older certificate than the file",
                        "systemctl reload scriptmail; if it stays, the new files do not load: see the journal")]  # fmt: skip
    return [Finding(check, OK, f"{address} serves the configured certificate")]


def check_mta_sts(enabled: bool, authorities: int, error: str | None = None) -> list[Finding]:
    """`authorities`: the CA certificates delivery trusts for MTA-STS (the system's, tls_ca_file's)."""
    if not enabled:
        return [Finding("mta-sts", OK, "MTA-STS is off (delivery.mta_sts): every domain gets opportunistic TLS")]
    if error is not None:
        return [Finding("mta-sts", PROBLEM, f"the trusted CA certificates cannot be loaded: {error}", "fix delivery.tls_ca_file")]
    if authorities == 0:
        return [Finding("mta-sts", PROBLEM, "no CA certificate is trusted: no MTA-STS policy can be fetched, so domains "
                        "that ask for verified TLS get mail without it", "apt-get install ca-certificates")]  # fmt: skip
    return [Finding("mta-sts", OK, f"MTA-STS is on, with {authorities} trusted CA certificates")]


def check_suppression_patterns(refused: list[tuple[str, str]]) -> list[Finding]:
    """`refused`: the platform's patterns (value, reason) the width guard refuses; they are not applied."""
    if not refused:
        return [Finding("suppression", OK, "every pattern of the platform's suppression list is applied")]
    return [
        Finding("suppression", WARNING, f"the platform's suppression pattern {value!r} is not applied: {why}",
                f"scriptmail suppression remove {value!r}, then add a narrower one")
        for value, why in refused
    ]  # fmt: skip
