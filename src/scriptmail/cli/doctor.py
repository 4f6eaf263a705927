"""`scriptmail doctor`: checks a running installation and says what to fix (exit 1 on a problem)."""

from __future__ import annotations

import dataclasses
import datetime
import grp
import os
import pwd
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from scriptmail.cli.root import JsonOption, app, fail, out, print_json, settings_of
from scriptmail.config import parse_host_port
from scriptmail.doctor import checks, probes
from scriptmail.store.engine import open_engine

_STYLE = {checks.OK: "green", checks.WARNING: "yellow", checks.PROBLEM: "red"}


def _viewer(name: str | None) -> checks.Viewer:
    if name is None:
        return checks.Viewer("any web user")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        fail(f"--as-user {name}: no such user", 2)
    gids = {entry.pw_gid} | {group.gr_gid for group in grp.getgrall() if name in group.gr_mem}
    return checks.Viewer(name, entry.pw_uid, frozenset(gids))


def _as_user_probe(name: str, socket_path: Path, maildrop: Path) -> list[checks.Finding]:
    """As root, really try as that user: connect to the socket, and may it write into maildrop/new?"""
    code = (
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1]); print('socket ok')\nexcept OSError as e:\n    print('socket', e.strerror)\n"
        "print('maildrop', 'ok' if os.access(sys.argv[2], os.W_OK | os.X_OK) else 'refused')\n"
    )
    command = ["setpriv", f"--reuid={name}", f"--regid={pwd.getpwnam(name).pw_gid}", "--init-groups", "--",
               sys.executable, "-c", code, str(socket_path), str(maildrop / "new")]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as error:
        return [checks.Finding("as-user", checks.WARNING, f"cannot run a probe as {name}: {error}")]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    findings = []
    if lines.get("socket") != "ok":
        findings.append(checks.Finding("as-user", checks.PROBLEM, f"as {name}, connecting to {socket_path} fails: "
                                       f"{lines.get('socket') or result.stderr.strip()}", "see the socket check"))  # fmt: skip
    if lines.get("maildrop") != "ok":
        findings.append(
            checks.Finding(
                "as-user", checks.PROBLEM, f"as {name}, {maildrop / 'new'} cannot be written", "see the maildrop check"
            )
        )
    return findings or [checks.Finding("as-user", checks.OK, f"as {name}: the socket answers and the maildrop takes files")]


def _config_path(ctx: typer.Context) -> Path | None:
    args = ctx.meta.get("config_args") or []
    chosen = args[1] if len(args) == 2 else os.environ.get("SCRIPTMAIL_CONFIG")
    return Path(chosen) if chosen else None


@app.command("doctor")
def doctor(
    ctx: typer.Context,
    as_user: Annotated[
        str | None, typer.Option("--as-user", help="Check permissions as this user (a web user); as root, also try.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a running installation: socket and maildrop permissions, store, nameservers, TLS, HELO."""
    settings = settings_of(ctx)
    intake, delivery = settings.intake, settings.delivery
    viewer = _viewer(as_user)
    findings: list[checks.Finding] = []

    socket_entries = probes.path_entries(intake.socket)
    answers, error = probes.socket_answers(intake.socket) if not socket_entries[-1].missing else (None, "")
    findings += checks.check_socket(socket_entries, viewer, answers, error)
    drop = probes.path_entries(intake.maildrop)
    children = {name: probes.path_entries(intake.maildrop / name)[-1] for name in ("tmp", "new", "cur", "bad")}
    findings += checks.check_maildrop(drop, children, viewer)
    if as_user is not None and os.geteuid() == 0:
        findings += _as_user_probe(as_user, Path(os.path.abspath(intake.socket)), Path(os.path.abspath(intake.maildrop)))

    config = _config_path(ctx)
    if config is not None:
        public_path = config.with_name("sendmail.toml")
        try:
            public = tomllib.loads(public_path.read_text()).get("intake", {}) if public_path.is_file() else None
        except (OSError, tomllib.TOMLDecodeError):
            public = {}
        daemon = {"socket": str(intake.socket), "maildrop": str(intake.maildrop), "max_message_size": intake.max_message_size}
        findings += checks.check_sendmail_config(daemon, public, str(public_path))
        if config.is_file() and os.stat(config).st_mode & 0o004:
            findings.append(checks.Finding("config", checks.WARNING, f"{config} is world-readable and may hold the database password",
                                           f"chmod 0640 {config}"))  # fmt: skip

    sqlite_file = settings.database_url.removeprefix("sqlite:///") if settings.database_url.startswith("sqlite:///") else None
    if sqlite_file is not None and not Path(sqlite_file).is_file():  # opening it would create an empty store
        findings += checks.check_store(f"{sqlite_file} does not exist", None, "")
    else:
        engine = open_engine(settings.database_url, pool_size=1)
        try:
            revision = probes.store_revision(engine)
            findings += checks.check_store(*revision)
            if revision[0] is None and revision[1] == revision[2]:
                findings += checks.check_suppression_patterns(probes.refused_patterns(engine))
        finally:
            engine.dispose()

    servers = list(delivery.nameservers) or probes.system_nameservers()
    helo = delivery.helo_name or settings.hostname
    findings += checks.check_nameservers(probes.nameserver_answers(servers, delivery.dns_port, helo))

    now = datetime.datetime.now(datetime.timezone.utc)
    if intake.tls_cert and intake.tls_key:
        not_before, not_after, names, cert_error = probes.certificate_facts(intake.tls_cert, intake.tls_key)
        findings += checks.check_certificate(
            str(intake.tls_cert), not_before, not_after, names, settings.hostname, now, cert_error
        )
        host, port = parse_host_port(intake.listen, listening=True)
        if port:  # port 0 is a test's: nothing to connect to
            host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
            served, served_error = probes.served_certificate(host, port)
            findings += checks.check_served_certificate(
                f"{host}:{port}", probes.certificate_der(intake.tls_cert), served, served_error
            )
    else:
        findings += checks.check_certificate(None, None, None, [], settings.hostname, now)

    findings += checks.check_mta_sts(delivery.mta_sts, *probes.trusted_authorities(delivery.tls_ca_file))

    addresses, reverse, dns_error = probes.forward_and_reverse(
        probes.resolver_for(list(delivery.nameservers), delivery.dns_port), helo
    )
    findings += checks.check_helo(helo, addresses, reverse, dns_error)

    problem = checks.has_problem(findings)
    if as_json:
        print_json({"ok": not problem, "host": socket.gethostname(), "findings": [dataclasses.asdict(f) for f in findings]})
    else:
        for finding in findings:
            line = f"[{_STYLE[finding.status]}]{finding.status:<8}[/] {finding.check:<13} {finding.message}"
            if finding.fix and finding.status != checks.OK:
                line += f"  [dim]fix: {finding.fix}[/]"
            out.print(line, highlight=False)
        out.print("[red]problems found[/]" if problem else "[green]no problem found[/]")
    if problem:
        raise typer.Exit(1)
